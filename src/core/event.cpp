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
}  // namespace detail

void Event::set() {
  flag_ = true;
  waiters_.wake_all();
}

void Event::wait() {
  if (flag_) return;
  waiters_.wait("Event.wait");
}

void Lock::acquire() {
  if (!locked_) {
    locked_ = true;
    return;
  }
  // Woken, then cancelled before running: release() had handed us the lock; pass it on, or
  // it leaks.
  waiters_.wait("Lock.acquire", [this] { release(); });
  // release() handed the lock over without unlocking it (FIFO hand-over).
}

void Lock::release() {
  if (!locked_) throw RuntimeError("Lock.release: lock is not acquired");
  if (!waiters_.wake_one()) locked_ = false;
}

}  // namespace asyncio
