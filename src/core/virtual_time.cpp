// Virtual time (asyncio/testing.hpp): the clock stands still while tasks run and jumps to the
// next deadline when the loop would block, so a program runs in the same order of events as on
// a real port, without waiting (docs/semantics.md#waiting).
#include "asyncio/detail/virtual_backend.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "asyncio/detail/duration.hpp"
#include "asyncio/detail/task_record.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/testing.hpp"

namespace asyncio {
namespace detail {

std::unique_ptr<IoBackend> make_virtual_backend(Loop& loop) {
  return std::make_unique<VirtualBackend>(loop);
}

void VirtualBackend::wait(Micros deadline) {
  if (wake_idle_waiter()) return;
  // A deadline no timer reaches (a task sleeping forever) is no deadline.
  if (deadline >= kForever) deadline = -1;
  // As a real wait: it ends at the deadline or when something calls wake() (a flag set by a
  // scripted event); an event that only makes a device ready is seen at the next poll.
  while (!woken_.exchange(false)) {
    if (deadline >= 0 && now_ >= deadline) return;
    Micros target = deadline;
    if (!events_.empty() && (target < 0 || events_.begin()->first < target)) {
      target = events_.begin()->first;
    }
    if (target < 0) {
      // On a real port the loop would block until another thread or a signal sets a flag;
      // on virtual time nothing else can come, so waiting would hang the program.
      port::log_error(
          "asyncio: virtual time: every task waits on a ThreadSafeFlag, a device or I/O, and "
          "no timer or scripted event is left to bring it; stopping the loop");
      loop_.stop();
      return;
    }
    now_ = std::max(now_, target);
    run_due_events();
  }
}

void VirtualBackend::sleep_without_io(Micros deadline, bool /*timer_due*/) {
  if (wake_idle_waiter()) return;
  deadline = std::min(deadline, kForever);
  while (!events_.empty() && events_.begin()->first <= deadline) {
    now_ = std::max(now_, events_.begin()->first);
    run_due_events();
  }
  now_ = std::max(now_, deadline);
  woken_.store(false);  // the sleep is not to be woken; what was set is picked up by the poll
}

void VirtualBackend::advance(Micros us) {
  if (us < 0) throw ValueError("advance: the duration must be >= 0");
  now_ = deadline_after(now_, us);
}

void VirtualBackend::at(Micros at, std::function<void()> event) {
  scheduler_of(loop_).check_thread("asyncio::testing::at");
  if (!event) throw ValueError("at: the event is an empty function");
  events_.emplace(at, std::move(event));
  waiters_ = static_cast<int>(events_.size());
}

void VirtualBackend::run_due_events() {
  // One at a time: an event may add others.
  while (!events_.empty() && events_.begin()->first <= now_) {
    auto node = events_.extract(events_.begin());
    waiters_ = static_cast<int>(events_.size());
    try {
      node.mapped()();
    } catch (...) {
      loop_.call_exception_handler(
          {"asyncio::testing: a scripted event raised", std::current_exception(), ""});
    }
  }
}

bool VirtualBackend::wake_idle_waiter() {
  if (!idle_waiter_) return false;
  scheduler_of(loop_).wake(std::exchange(idle_waiter_, nullptr), WakeReason::kEvent);
  return true;
}

void VirtualBackend::wait_idle() {
  Scheduler& scheduler = scheduler_of(loop_);
  TaskRecord* me = scheduler.current();
  if (!me) throw RuntimeError("wait_idle: called outside a task");
  if (idle_waiter_) throw RuntimeError("wait_idle: another task is already waiting for idleness");
  idle_waiter_ = me;
  // Counted as waiting on something outside the loop: the loop must not call this a deadlock.
  scheduler.add_external_waiter();
  try {
    scheduler.suspend();
  } catch (...) {
    if (idle_waiter_ == me) idle_waiter_ = nullptr;
    scheduler.remove_external_waiter();
    throw;
  }
  scheduler.remove_external_waiter();
}

}  // namespace detail

namespace testing::detail {

asyncio::detail::VirtualBackend& backend(const char* what) {
  asyncio::detail::IoBackend& loop_backend =
      asyncio::detail::scheduler_of(get_event_loop()).backend();
  if (!loop_backend.virtual_clock()) {
    throw RuntimeError(std::string("asyncio::testing::") + what +
                       ": the loop does not run on virtual time (use asyncio::testing::run, or "
                       "a loop made with Loop::Options{\"virtual\"})");
  }
  return static_cast<asyncio::detail::VirtualBackend&>(loop_backend);
}

void restore_thread_loop() noexcept {
  try {
    new_event_loop();
  } catch (const std::exception& error) {
    asyncio::detail::port::log_error(
        (std::string("asyncio::testing::run: could not make a new loop afterwards: ") + error.what())
            .c_str());
  }
}

}  // namespace testing::detail

namespace testing {

bool active() {
  return asyncio::detail::scheduler_of(get_event_loop()).backend().virtual_clock() != nullptr;
}

void wait_idle() { detail::backend("wait_idle").wait_idle(); }

std::size_t pending_events() { return detail::backend("pending_events").pending_events(); }

}  // namespace testing
}  // namespace asyncio
