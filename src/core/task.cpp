// Task handles, awaiting a task, current_task() (docs/semantics.md#tasks).
#include <exception>

#include "asyncio/task.hpp"

namespace asyncio {
namespace detail {

void add_reference(TaskRecord* task) noexcept { ++task->references; }

void drop_reference(TaskRecord* task) noexcept {
  if (--task->references == 0) delete task;
}

namespace {
/// Wakes the awaiting task when the awaited one finishes; lives in the awaiter's frame.
struct AwaitNode : DoneCallback {
  TaskRecord* waiter = nullptr;
};

void wake_awaiter(DoneCallback* self, TaskRecord* /*finished*/) {
  TaskRecord* waiter = static_cast<AwaitNode*>(self)->waiter;
  waiter->scheduler->wake(waiter, WakeReason::kEvent);
}
}  // namespace

WakeReason await_task(TaskRecord* task, Micros deadline, bool forward_cancel) {
  if (!task) throw RuntimeError("await: empty task handle");
  // From the first await on, the outcome is the awaiter's: as in MicroPython, the exception
  // handler never hears of it, even if this awaiter gives up (docs/semantics.md#exceptions).
  task->retrieved = true;
  if (task->state == TaskState::kDone) return WakeReason::kEvent;
  detail::Scheduler& loop = *task->scheduler;
  TaskRecord* me = loop.current();
  if (!me) throw RuntimeError("await: called outside a task; use asyncio::run() or run_until_complete()");
  if (me == task) throw RuntimeError("await: a task cannot await itself ('" + me->name + "')");
  AwaitNode node;
  node.fn = &wake_awaiter;
  node.waiter = me;
  task->done_callbacks.push_back(&node);
  if (forward_cancel) me->awaiting = task;
  auto stop_waiting = [&] {
    me->awaiting = nullptr;
    node.unlink();
  };
  WakeReason reason;
  std::exception_ptr expired;
  for (;;) {
    try {
      note_wait(me, "await", task);
      reason = loop.suspend(deadline);
      break;
    } catch (const DeadlineExpired&) {
      // A task that finished in the step in which the deadline passed has dropped its wake-up
      // (we were already queued): suspending again would never return. The deadline passed
      // before we saw the result, so the scope's expiry stands (as in CPython).
      if (!forward_cancel || expired || task->state == TaskState::kDone) {
        stop_waiting();
        throw;
      }
      // A timeout() scope expired in the awaiter: as with cancel(), the awaited task is
      // cancelled and awaited; if it ends cancelled, the awaiter raises the scope's expiry.
      expired = std::current_exception();
      loop.cancel(task);
    } catch (...) {
      stop_waiting();
      throw;
    }
  }
  stop_waiting();
  if (expired && task->cancelled) std::rethrow_exception(expired);
  return reason;
}

void check_result(const TaskRecord* task) {
  if (!task) throw RuntimeError("result: empty task handle");
  if (task->state != TaskState::kDone) {
    throw RuntimeError("result: task '" + task->name + "' is not done");
  }
  task->retrieved = true;
  if (task->error) std::rethrow_exception(task->error);
}

void run_main(TaskRecord* main) {
  Loop& loop = main->scheduler->loop();
  port::route_interrupts(loop, true);
  try {
    run_until_done(loop, main);
  } catch (...) {
    port::route_interrupts(loop, false);
    take_interrupt(loop);
    throw;
  }
  port::route_interrupts(loop, false);
  if (take_interrupt(loop)) {
    // As CPython's asyncio.run: the main task was cancelled; the others go too, so that no
    // task is left half-run, then the interrupt reaches the caller
    // (docs/semantics.md#exceptions).
    loop.close();
    main->retrieved = true;
    throw KeyboardInterrupt{};
  }
}

}  // namespace detail

std::exception_ptr TaskBase::exception() const {
  if (!done()) throw RuntimeError("exception: task '" + name() + "' is not done");
  record_->retrieved = true;
  return record_->error;
}

bool TaskBase::cancel() const {
  detail::TaskRecord& task = record();
  if (task.state == detail::TaskState::kDone) return false;
  if (&task == task.scheduler->current()) throw RuntimeError("can't cancel self");
  return task.scheduler->cancel(record_);
}

TaskBase current_task() {
  detail::TaskRecord* task = detail::scheduler_of(get_event_loop()).current();
  if (!task) throw RuntimeError("no running event loop");
  return TaskBase(task);
}

}  // namespace asyncio
