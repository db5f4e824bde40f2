// Event and Lock (docs/semantics.md#event-and-lock; MicroPython's event.py and lock.py). Loop thread only.
#pragma once

#include "asyncio/detail/wait_queue.hpp"

namespace asyncio {

class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  bool is_set() const { return flag_; }
  /// Sets the flag and wakes every waiting task.
  void set();
  void clear() { flag_ = false; }
  /// Returns at once if set; otherwise waits until set() is called.
  void wait();

 private:
  bool flag_ = false;
  detail::WaitQueue waiters_;
};

/// A mutual-exclusion lock with FIFO hand-over: release() passes the lock to the oldest waiter.
/// Meets the standard Lockable requirements, so std::lock_guard / std::unique_lock work.
class Lock {
 public:
  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  bool locked() const { return locked_; }
  void acquire();
  /// RuntimeError if the lock is not held.
  void release();

  void lock() { acquire(); }
  void unlock() { release(); }
  bool try_lock() {
    if (locked_) return false;
    locked_ = true;
    return true;
  }

 private:
  bool locked_ = false;
  detail::WaitQueue waiters_;
};

}  // namespace asyncio
