// Event and Lock (docs/semantics.md#event-and-lock; MicroPython's event.py, lock.py), on detail::WaitQueue.
#include "asyncio/event.hpp"

#include <string>

#include "asyncio/errors.hpp"
#include "asyncio/loop.hpp"

namespace asyncio {

namespace detail {
void throw_outside_task(const char* what) {
  throw RuntimeError(std::string(what) + ": called outside a task");
}

void throw_waitable_destroyed(const char* what) {
  throw RuntimeError(std::string(what) + ": the object was destroyed while this task waited on it");
}
}  // namespace detail

void Event::set() {
  flag_ = true;
  waiters_.wake_all();
}

bool Event::wait() {
  if (!flag_) waiters_.wait("Event.wait");
  return true;
}

bool Lock::acquire() {
  if (state_ == State::kUnlocked) {
    state_ = State::kLocked;
    return true;
  }
  // Woken, then cancelled before running: release() had handed us the lock; pass it on, or
  // it leaks.
  waiters_.wait("Lock.acquire", [this] {
    state_ = State::kLocked;
    release();
  });
  state_ = State::kLocked;  // the hand-over completes when the waiter runs
  return true;
}

void Lock::release() {
  if (state_ != State::kLocked) throw RuntimeError("Lock not acquired");
  state_ = waiters_.wake_one() ? State::kHandedOver : State::kUnlocked;
}

}  // namespace asyncio
