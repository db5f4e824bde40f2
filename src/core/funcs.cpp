// sleep, gather, wait_for, wait_pollable (docs/semantics.md#functions, docs/semantics.md#pollables; MicroPython's funcs.py).
#include "asyncio/funcs.hpp"

#include <vector>

#include "asyncio/detail/wait_queue.hpp"
#include "asyncio/pollable.hpp"

namespace asyncio {

using detail::TaskRecord;
using detail::WakeReason;

namespace {
inline detail::Scheduler& loop_with_task(const char* what) { return *detail::running_task(what)->scheduler; }
}  // namespace

namespace detail {
void sleep_positive_us(std::int64_t us) {
  Scheduler& loop = loop_with_task("sleep");
  // Read the clock now: a sleep is never shorter than asked (docs/semantics.md#run-order).
  loop.suspend(deadline_after(loop.refresh_time(), us));
}
}  // namespace detail

void sleep(double seconds) { sleep_us(detail::seconds_to_micros(seconds, "sleep")); }

unsigned wait_pollable(Pollable& device, unsigned events) {
  return loop_with_task("wait_pollable").wait_pollable(device, events);
}

namespace detail {
namespace {

/// Shared by a gather call and the done-callbacks it registers on its tasks.
struct GatherState {
  TaskRecord* gatherer = nullptr;
  std::size_t remaining = 0;
  TaskRecord* failed = nullptr;  // first task that raised (without return_exceptions)
  bool return_exceptions = false;
  bool woken = false;
};

struct GatherNode : DoneCallback {
  GatherState* state = nullptr;
};

void on_gathered_done(DoneCallback* self, TaskRecord* finished) {
  GatherState& state = *static_cast<GatherNode*>(self)->state;
  if (state.woken) return;
  if (!state.return_exceptions && finished->error) {
    state.failed = finished;
  } else if (--state.remaining > 0) {
    return;
  }
  state.woken = true;
  state.gatherer->scheduler->wake(state.gatherer, WakeReason::kEvent);
}

}  // namespace

void gather_records(TaskRecord* const* tasks, std::size_t count, bool return_exceptions) {
  detail::Scheduler& loop = loop_with_task("gather");
  GatherState state;
  state.gatherer = loop.current();
  state.return_exceptions = return_exceptions;
  std::vector<GatherNode> nodes(count);
  for (std::size_t i = 0; i < count; ++i) {
    TaskRecord* task = tasks[i];
    if (!task) throw RuntimeError("gather: empty task handle");
    if (task == state.gatherer) throw RuntimeError("gather: a task cannot gather itself");
    task->retrieved = true;  // its outcome is the gatherer's (docs/semantics.md#exceptions)
    if (task->state == TaskState::kDone) {
      if (!return_exceptions && task->error && !state.failed) state.failed = task;
      continue;
    }
    nodes[i].fn = &on_gathered_done;
    nodes[i].state = &state;
    task->done_callbacks.push_back(&nodes[i]);
    ++state.remaining;
  }
  auto unregister = [&] {
    for (auto& node : nodes) node.unlink();
  };
  if (!state.failed && state.remaining > 0) {
    try {
      detail::note_wait(loop.current(), "gather");
      loop.suspend();
    } catch (...) {
      // As MicroPython: cancelling the gather cancels the tasks still running.
      unregister();
      for (std::size_t i = 0; i < count; ++i) loop.cancel(tasks[i]);
      throw;
    }
  }
  unregister();
  if (state.failed) std::rethrow_exception(state.failed->error);
}

void wait_for_record(TaskRecord* task, Micros timeout) {
  detail::Scheduler& loop = loop_with_task("wait_for");
  // Without forwarding: as MicroPython's wait_for (a runner task and a sleep), cancelling the
  // caller raises CancelledError in the caller at once, and the task is cancelled after.
  WakeReason reason;
  try {
    reason = await_task(task, timeout < 0 ? -1 : detail::deadline_after(loop.refresh_time(), timeout), false);
  } catch (const CancelledError&) {
    loop.cancel(task);  // wait_for itself was cancelled: take the task down with it
    throw;
  }
  // MicroPython's caller learns of the task's end from its runner task, which runs one turn
  // after the task ends: the extra yields keep a translated program's order of events.
  if (reason != WakeReason::kTimeout || task->state == TaskState::kDone) {
    if (timeout >= 0) loop.yield_now();
    return;
  }
  loop.cancel(task);
  await_task(task, -1, false);  // let it unwind; throws only if we are cancelled meanwhile
  loop.yield_now();
  throw TimeoutError();
}

}  // namespace detail
}  // namespace asyncio
