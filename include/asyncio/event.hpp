// Event and Lock (docs/semantics.md#event-and-lock; MicroPython's event.py and lock.py). Loop thread only.
#pragma once

#include "asyncio/detail/wait_queue.hpp"

namespace asyncio {

/// A flag tasks wait on (MicroPython's asyncio.Event): set() wakes every waiter.
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// True between set() and clear().
  bool is_set() const { return flag_; }
  /// Sets the flag and wakes every waiting task.
  void set();
  /// Resets the flag; later wait() calls wait again.
  void clear() { flag_ = false; }
  /// Returns at once if set; otherwise waits until set() is called. Returns true, as
  /// MicroPython's Event.wait() does.
  bool wait();

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

  /// True while a task holds the lock. As in MicroPython, false during a hand-over: from
  /// release() until the woken waiter runs and takes it (docs/semantics.md#event-and-lock).
  bool locked() const { return state_ == State::kLocked; }
  /// Takes the lock, waiting in FIFO order; returns true, as MicroPython's Lock.acquire().
  bool acquire();
  /// RuntimeError("Lock not acquired") if the lock is not held.
  void release();

  /// acquire(), for std::lock_guard and std::unique_lock (BasicLockable).
  void lock() { acquire(); }
  /// release(), for std::lock_guard and std::unique_lock.
  void unlock() { release(); }
  /// Takes the lock if it is free and not being handed to a waiter.
  bool try_lock() {
    if (state_ != State::kUnlocked) return false;
    state_ = State::kLocked;
    return true;
  }

 private:
  // kHandedOver: released to a woken waiter that has not run yet; nobody else may take it.
  enum class State : unsigned char { kUnlocked, kLocked, kHandedOver };
  State state_ = State::kUnlocked;
  detail::WaitQueue waiters_;
};

}  // namespace asyncio
