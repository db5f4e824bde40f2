// timeout() scopes (CPython 3.11's asyncio.timeout): a deadline for a block of code run in the
// current task, without a new task (unlike wait_for).
//
// The deadline lives in the task's record; the scheduler's suspend() sleeps no later than it and, when it
// passes, raises detail::DeadlineExpired (a CancelledError) at the suspension point, so the body
// unwinds exactly as for cancel(). The scope that armed the deadline turns it into TimeoutError.
// Code that catches CancelledError inside the body must rethrow it with `throw;` (not a new
// CancelledError), or the scope sees a plain cancellation and lets it through. A body that
// never suspends is not interrupted (as in CPython).
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "asyncio/detail/duration.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/loop.hpp"

namespace asyncio {

namespace detail {
/// Arms a deadline on the current task for the scope's lifetime. Nested scopes keep the
/// earliest deadline armed; the one whose deadline passed recognises its DeadlineExpired.
class TimeoutScope {
 public:
  /// RuntimeError outside a task.
  explicit TimeoutScope(Micros timeout);
  ~TimeoutScope() {
    if (!expiry_passing_) task_->scope_deadline = outer_deadline_;
  }
  TimeoutScope(const TimeoutScope&) = delete;
  TimeoutScope& operator=(const TimeoutScope&) = delete;

  /// True if `expiry` is this scope's (on a tie the innermost scope claims it).
  bool owns(const DeadlineExpired& expiry) const { return expiry.deadline == deadline_; }
  /// An outer scope's expiry unwinds through this one: leave the task disarmed until that
  /// scope has seen it (cleanup on the way may wait).
  void let_expiry_pass() { expiry_passing_ = true; }

 private:
  TaskRecord* task_;
  Micros deadline_;
  Micros outer_deadline_;  // what the task had armed before this scope
  bool expiry_passing_ = false;
};
}  // namespace detail

/// Runs `body()` in the current task and returns its value. If it is still running after `us`
/// microseconds, it is cancelled at its suspension point (a task it awaits is cancelled with
/// it, as by cancel()) and TimeoutError is raised instead. A cancel() from outside still
/// raises CancelledError. Negative: no limit. Nested scopes: the one whose deadline passed
/// raises TimeoutError; the others see it as any exception.
template <class F>
std::invoke_result_t<F&> timeout_us(std::int64_t us, F&& body) {
  if (us < 0) return body();
  detail::TimeoutScope scope(us);
  try {
    return body();
  } catch (const detail::DeadlineExpired& expiry) {
    if (!scope.owns(expiry)) {
      scope.let_expiry_pass();
      throw;
    }
  }
  throw TimeoutError("timeout: the scope's deadline passed");
}

template <class F>
std::invoke_result_t<F&> timeout_ms(std::int64_t ms, F&& body) {
  return timeout_us(ms < 0 ? -1 : detail::scale_saturated(ms, 1000), std::forward<F>(body));
}

template <class Rep, class Period, class F>
std::invoke_result_t<F&> timeout(std::chrono::duration<Rep, Period> delay, F&& body) {
  const Micros us = detail::to_micros(delay, "timeout");
  return timeout_us(us < 0 ? -1 : us, std::forward<F>(body));
}

}  // namespace asyncio
