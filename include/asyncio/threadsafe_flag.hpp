// ThreadSafeFlag (docs/semantics.md#threadsafeflag): set() from any thread, a signal handler or an interrupt handler.
#pragma once

#include <atomic>

#include "asyncio/loop.hpp"

namespace asyncio {

/// A self-clearing flag one task waits on. set() is lock-free and async-signal-safe: it stores
/// the flag, pushes it on the loop's lock-free "signalled" stack and, only if the loop is
/// blocked, wakes it (an eventfd write on Linux). The loop looks at that stack at every task
/// switch, so a set is seen at the next switch even while other tasks keep the loop busy.
///
/// A flag, and the loop it was waited on, may be destroyed as soon as the waiter has returned:
/// their destructors wait for set() calls still under way on other threads. Do not call set()
/// on a flag that is destroyed, or once the loop it was waited on is destroyed.
class ThreadSafeFlag final : private detail::FlagNode {
 public:
  ThreadSafeFlag() = default;
  ThreadSafeFlag(const ThreadSafeFlag&) = delete;
  ThreadSafeFlag& operator=(const ThreadSafeFlag&) = delete;
  ~ThreadSafeFlag();

  /// Sets the flag. Sets before a wait coalesce. Safe from any context.
  void set() noexcept;
  /// Clears a pending set.
  void clear() noexcept { set_.store(false); }
  /// Returns once the flag is set, and clears it. One waiter at a time: a second concurrent
  /// waiter gets RuntimeError.
  void wait();
  /// True if a set is pending (not part of MicroPython's API; for diagnostics).
  bool is_set() const noexcept { return set_.load(); }

 private:
  void on_signalled() override;

  std::atomic<bool> set_{false};
  std::atomic<int> setters_{0};  // set() calls under way
  std::atomic<Loop*> loop_{nullptr};
  detail::TaskRecord* waiter_ = nullptr;
  bool* waiter_gone_ = nullptr;  // in the waiter's frame: set when the flag dies under it
};

}  // namespace asyncio
