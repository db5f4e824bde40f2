// Semaphore, BoundedSemaphore, Condition, Barrier: CPython's asyncio synchronisation
// primitives beyond MicroPython's Event and Lock. Loop thread only.
#pragma once

#include <cstddef>

#include "asyncio/detail/wait_queue.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/event.hpp"

namespace asyncio {

/// A counter of free units with FIFO hand-over: release() passes its unit straight to the
/// oldest waiter, so a task that arrives later cannot take it first. Lockable, so
/// std::lock_guard works.
class Semaphore {
 public:
  /// ValueError if `value` is negative.
  explicit Semaphore(int value = 1);
  virtual ~Semaphore() = default;
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// True if acquire() would wait.
  bool locked() const { return value_ == 0; }
  /// Units free now (units handed to woken waiters are not).
  int value() const { return value_; }
  /// Takes a unit, waiting in FIFO order while there is none.
  void acquire();
  /// Returns a unit: to the oldest waiter, or to the counter.
  void release();

  /// acquire(), for std::lock_guard and std::unique_lock (Lockable).
  void lock() { acquire(); }
  /// release().
  void unlock() { release(); }
  /// Takes a unit if one is free; never waits.
  bool try_lock();

 protected:
  /// Checked by release() before it returns a unit to the counter.
  virtual void check_release() const {}
  /// Units free now.
  int value_;

 private:
  detail::WaitQueue waiters_;
};

/// A Semaphore whose release() raises ValueError if it would raise the count above the
/// initial value.
class BoundedSemaphore : public Semaphore {
 public:
  /// `value` units, and never more.
  explicit BoundedSemaphore(int value = 1) : Semaphore(value), bound_(value) {}

 private:
  void check_release() const override;
  int bound_;
};

/// A condition variable bound to a Lock: its own, or one passed in (which must outlive it).
/// Lockable, so std::unique_lock works.
class Condition {
 public:
  Condition() : lock_(own_lock_) {}
  /// Uses `lock`, which must outlive the Condition.
  explicit Condition(Lock& lock) : lock_(lock) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  /// The lock's state and operations, as Lock's.
  bool locked() const { return lock_.locked(); }
  /// Lock::acquire() on the bound lock.
  void acquire() { lock_.acquire(); }
  /// Lock::release() on the bound lock.
  void release() { lock_.release(); }
  /// acquire(), for std::unique_lock.
  void lock() { lock_.acquire(); }
  /// release(), for std::unique_lock.
  void unlock() { lock_.release(); }
  /// Lock::try_lock() on the bound lock.
  bool try_lock() { return lock_.try_lock(); }

  /// Releases the lock, waits for notify(), re-acquires the lock and returns. The lock is
  /// held again when wait() returns or throws, even when the task is cancelled (the
  /// CancelledError is raised once the lock is back). RuntimeError if the lock is not held.
  void wait();
  /// Waits until `predicate()` is true; returns its last value. Same lock rules as wait().
  template <class Predicate>
  auto wait_for(Predicate predicate) {
    auto result = predicate();
    while (!result) {
      wait();
      result = predicate();
    }
    return result;
  }
  /// Wakes up to `n` waiters, oldest first. RuntimeError if the lock is not held.
  void notify(std::size_t n = 1);
  /// Wakes every waiter. RuntimeError if the lock is not held.
  void notify_all();

 private:
  void wake(std::size_t n);
  Lock own_lock_;
  Lock& lock_;
  detail::WaitQueue waiters_;
};

/// A barrier for a fixed number of tasks (CPython's asyncio.Barrier): each wait() blocks until
/// `parties` tasks are waiting, then all of them return; the barrier is then ready for the
/// next round. A task cancelled while waiting leaves the round (it no longer counts).
class Barrier {
 public:
  /// ValueError if `parties` < 1.
  explicit Barrier(int parties);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  /// Waits for the round to fill; returns the caller's arrival index, 0 .. parties-1 (the last
  /// to arrive gets parties-1 and does not wait). BrokenBarrierError if the barrier is broken
  /// or breaks (abort(), reset()) while the caller waits.
  int wait();
  /// Breaks the barrier: waiting and future wait() calls raise BrokenBarrierError.
  void abort();
  /// Back to the empty, unbroken state; the tasks waiting now get BrokenBarrierError.
  void reset();

  /// Tasks that must wait() to release a round.
  int parties() const { return parties_; }
  /// Tasks waiting in the current round.
  int n_waiting() const { return count_; }
  /// True after abort(), until reset().
  bool broken() const { return broken_; }

 private:
  /// Wakes every waiter, telling each whether the round broke.
  void release_all(bool broken);
  int parties_;
  int count_ = 0;
  bool broken_ = false;
  detail::WaitQueue waiters_;
};

}  // namespace asyncio
