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
/// Destroy a flag only when no set() can still be running on another thread, and do not call
/// set() once the loop it was waited on is destroyed.
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
  std::atomic<Loop*> loop_{nullptr};
  detail::TaskRecord* waiter_ = nullptr;
  bool* waiter_gone_ = nullptr;  // in the waiter's frame: set when the flag dies under it
};

}  // namespace asyncio
