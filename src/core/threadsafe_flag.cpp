// ThreadSafeFlag (docs/semantics.md#threadsafeflag). set() is async-signal-safe: atomics and Scheduler::signal_flag only.
#include "asyncio/threadsafe_flag.hpp"

#include "asyncio/detail/wait_queue.hpp"
#include "asyncio/errors.hpp"

namespace asyncio {

ThreadSafeFlag::~ThreadSafeFlag() {
  while (setters_.load() != 0) {
    // A set() on another thread is between its store and its last touch of this flag.
  }
  if (detail::TaskRecord* waiter = waiter_) {
    // The waiter's frame outlives us: tell it, and wake it with an error.
    waiter_ = nullptr;
    *waiter_gone_ = true;
    detail::Scheduler& loop = *waiter->scheduler;
    loop.remove_external_waiter();
    loop.wake(waiter, detail::WakeReason::kEvent);
  }
  // A set() the loop has not seen yet (it stopped running, say) leaves the flag on the loop's
  // signalled stack: take it off, or the loop would later touch a dead object.
  if (queued.load()) {
    if (Loop* loop = loop_.load()) detail::scheduler_of(*loop).forget_flag(this);
  }
}

void ThreadSafeFlag::set() noexcept {
  // Once set_ is stored, the waiter may return, and the flag and its loop be destroyed, before
  // this call ends: each destructor waits for the calls that began before it.
  const detail::ExternalAccess access;
  setters_.fetch_add(1);
  // Store the flag before reading the loop: wait() stores the loop before reading the flag,
  // so with sequentially consistent order one of the two always sees the other.
  set_.store(true);
  if (Loop* loop = loop_.load()) detail::scheduler_of(*loop).signal_flag(this);
  setters_.fetch_sub(1);
}

void ThreadSafeFlag::wait() {
  Loop& loop = get_event_loop();
  detail::Scheduler& scheduler = detail::scheduler_of(loop);
  detail::TaskRecord* me = scheduler.current();
  if (!me) throw RuntimeError("ThreadSafeFlag.wait: called outside a task");
  if (waiter_) {
    throw RuntimeError("ThreadSafeFlag.wait: task '" + waiter_->name +
                       "' is already waiting; one waiter at a time");
  }
  Loop* bound = nullptr;
  if (!loop_.compare_exchange_strong(bound, &loop) && bound != &loop) {
    throw RuntimeError("ThreadSafeFlag.wait: flag belongs to another loop");
  }
  if (set_.exchange(false)) return;
  bool gone = false;
  waiter_ = me;
  waiter_gone_ = &gone;
  detail::note_wait(me, "ThreadSafeFlag.wait", this);
  scheduler.add_external_waiter();
  try {
    scheduler.suspend();
  } catch (...) {
    if (gone) throw;  // nothing left to keep a set for
    if (waiter_ == me) {
      waiter_ = nullptr;
      scheduler.remove_external_waiter();
    } else {
      // on_signalled() consumed a set for us, then we were cancelled before running: keep the
      // set for the next waiter, so that it is never lost (docs/semantics.md#threadsafeflag).
      set_.store(true);
    }
    throw;
  }
  if (gone) [[unlikely]] {
    detail::throw_waitable_destroyed("ThreadSafeFlag.wait");
  }
}

void ThreadSafeFlag::on_signalled() {
  if (!waiter_ || !set_.exchange(false)) return;
  detail::TaskRecord* waiter = waiter_;
  waiter_ = nullptr;
  detail::Scheduler& loop = *waiter->scheduler;
  loop.remove_external_waiter();
  loop.wake_io(waiter, detail::kPollRead);
}

}  // namespace asyncio
