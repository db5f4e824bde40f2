// sleep, gather, wait_for (docs/semantics.md#functions; MicroPython's core.py sleep and funcs.py).
#pragma once

#include <chrono>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "asyncio/detail/duration.hpp"
#include "asyncio/detail/registry.hpp"
#include "asyncio/detail/scheduler.hpp"
#include "asyncio/task.hpp"

namespace asyncio {

/// Suspends the current task for `ms` milliseconds; 0 (or less) moves it behind every task
/// already due (docs/semantics.md#run-order). A duration too long for the clock (INT64_MAX)
/// sleeps forever.
void sleep_ms(std::int64_t ms);
/// Same with a microsecond resolution (the port may round up).
void sleep_us(std::int64_t us);

namespace detail {
/// sleep_ms(0) and sleep_us(0): inline, so that the switch happens in the caller's frame
/// (see asyncio/detail/scheduler.hpp).
inline void yield_running_task() {
  Scheduler* scheduler = running_scheduler;
  if (!scheduler) [[unlikely]] throw_outside_task("sleep");
  scheduler->yield_now();
}
void sleep_positive_us(std::int64_t us);
}  // namespace detail

inline void sleep_us(std::int64_t us) {
  if (us <= 0) return detail::yield_running_task();
  detail::sleep_positive_us(us);
}
inline void sleep_ms(std::int64_t ms) {
  if (ms <= 0) return detail::yield_running_task();
  detail::sleep_positive_us(detail::scale_saturated(ms, 1000));
}
/// Python's asyncio.sleep(seconds). +infinity sleeps forever; NaN raises ValueError.
void sleep(double seconds);
template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> duration) {
  sleep_us(detail::to_micros(duration, "sleep"));
}

/// Tag selecting gather(..., return_exceptions=True).
struct return_exceptions_t {};
inline constexpr return_exceptions_t return_exceptions{};

/// A gathered task's value or exception (gather with return_exceptions).
template <class T>
class Outcome {
 public:
  /// T, or std::monostate for a Task<void>.
  using Value = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  /// Takes the result or the exception of `task`, which must be done.
  explicit Outcome(const Task<T>& task) {
    if (auto error = task.exception()) {
      state_ = error;
    } else if constexpr (std::is_void_v<T>) {
      state_ = std::monostate{};
    } else {
      state_ = task.result();
    }
  }
  /// True if the task returned, false if it raised.
  bool ok() const { return state_.index() == 0; }
  /// The value; rethrows the exception if the task failed.
  const Value& value() const {
    if (!ok()) std::rethrow_exception(std::get<1>(state_));
    return std::get<0>(state_);
  }
  /// The task's exception; null if it returned.
  std::exception_ptr exception() const { return ok() ? nullptr : std::get<1>(state_); }

 private:
  std::variant<Value, std::exception_ptr> state_;
};

namespace detail {
/// Waits until every task is done, or (without return_exceptions) until one fails, then
/// rethrows that failure. If the caller is cancelled, cancels the unfinished tasks (as
/// MicroPython's gather) and rethrows CancelledError.
void gather_records(TaskRecord* const* tasks, std::size_t count, bool return_exceptions);
/// wait_for's core: await with a timeout; on timeout, cancel and wait for the task to finish,
/// then throw TimeoutError. If the caller is cancelled, cancel the task too.
void wait_for_record(TaskRecord* task, Micros timeout);

template <class T>
using GatherValue = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
GatherValue<T> gathered_value(const Task<T>& task) {
  if constexpr (std::is_void_v<T>) {
    task.result();
    return {};
  } else {
    return task.result();
  }
}
}  // namespace detail

/// Runs until every task is done; returns their values in order (void → std::monostate).
/// The first exception raised by a task is rethrown as soon as it happens.
template <class... T>
std::tuple<detail::GatherValue<T>...> gather(const Task<T>&... tasks) {
  detail::TaskRecord* records[] = {tasks.record_pointer()..., nullptr};
  detail::gather_records(records, sizeof...(T), false);
  return {detail::gathered_value(tasks)...};
}

template <class... T>
std::tuple<Outcome<T>...> gather(return_exceptions_t, const Task<T>&... tasks) {
  detail::TaskRecord* records[] = {tasks.record_pointer()..., nullptr};
  detail::gather_records(records, sizeof...(T), true);
  return std::tuple<Outcome<T>...>{Outcome<T>(tasks)...};
}

/// A callable gather() and wait_for() run as a new task: anything invocable with no arguments
/// that is not already a task.
template <class F>
concept TaskFunction = std::invocable<std::decay_t<F>> && !std::is_base_of_v<TaskBase, std::decay_t<F>>;

/// Python's `await gather(a(), b())`: runs each callable as a task, created left to right (a
/// braced list fixes the order, where the arguments of gather(create_task(a), create_task(b))
/// are evaluated in an unspecified order), then gathers them.
template <TaskFunction... F>
  requires(sizeof...(F) > 0)
auto gather(F&&... functions) {
  const std::tuple tasks{create_task(std::forward<F>(functions))...};
  return std::apply([](const auto&... task) { return gather(task...); }, tasks);
}

template <TaskFunction... F>
  requires(sizeof...(F) > 0)
auto gather(return_exceptions_t, F&&... functions) {
  const std::tuple tasks{create_task(std::forward<F>(functions))...};
  return std::apply([](const auto&... task) { return gather(return_exceptions, task...); }, tasks);
}

template <class T>
std::vector<detail::GatherValue<T>> gather(const std::vector<Task<T>>& tasks) {
  std::vector<detail::TaskRecord*> records;
  for (const auto& task : tasks) records.push_back(task.record_pointer());
  detail::gather_records(records.data(), records.size(), false);
  std::vector<detail::GatherValue<T>> values;
  for (const auto& task : tasks) values.push_back(detail::gathered_value(task));
  return values;
}

template <class T>
std::vector<Outcome<T>> gather(return_exceptions_t, const std::vector<Task<T>>& tasks) {
  std::vector<detail::TaskRecord*> records;
  for (const auto& task : tasks) records.push_back(task.record_pointer());
  detail::gather_records(records.data(), records.size(), true);
  std::vector<Outcome<T>> outcomes;
  for (const auto& task : tasks) outcomes.emplace_back(task);
  return outcomes;
}

/// Waits for `task` at most `ms` milliseconds. On timeout the task is cancelled, waited for,
/// and TimeoutError is thrown. A negative timeout means no limit.
template <class T>
T wait_for_ms(const Task<T>& task, std::int64_t ms) {
  detail::wait_for_record(task.record_pointer(), ms < 0 ? -1 : detail::scale_saturated(ms, 1000));
  return task.result();
}

template <class T>
T wait_for(const Task<T>& task, double seconds) {
  const Micros us = detail::seconds_to_micros(seconds, "wait_for");
  detail::wait_for_record(task.record_pointer(), us < 0 ? -1 : us);
  return task.result();
}

template <class T, class Rep, class Period>
T wait_for(const Task<T>& task, std::chrono::duration<Rep, Period> timeout) {
  const Micros us = detail::to_micros(timeout, "wait_for");
  detail::wait_for_record(task.record_pointer(), us < 0 ? -1 : us);
  return task.result();
}

/// CPython's `await shield(task)`: waits for `task` and returns its value or rethrows its
/// exception, but cancelling the caller (or a timeout() scope expiring in it) raises
/// CancelledError (or TimeoutError) in the caller only: `task` runs on. Its outcome then goes
/// to whoever awaits it later; an exception nobody retrieves goes to the loop's exception
/// handler (CPython marks it retrieved silently).
template <class T>
T shield(const Task<T>& task) {
  detail::await_task(task.record_pointer(), -1, false);
  return task.result();
}

/// shield on a callable: runs it as a new task first (Python's shield(coro)).
template <class F>
  requires std::invocable<std::decay_t<F>>
auto shield(F&& function) {
  return shield(create_task(std::forward<F>(function)));
}

/// wait_for on a callable: runs it as a new task first (Python's wait_for(coro, t)).
template <TaskFunction F>
auto wait_for_ms(F&& function, std::int64_t ms) {
  return wait_for_ms(create_task(std::forward<F>(function)), ms);
}

template <TaskFunction F>
auto wait_for(F&& function, double seconds) {
  return wait_for(create_task(std::forward<F>(function)), seconds);
}

template <TaskFunction F, class Rep, class Period>
auto wait_for(F&& function, std::chrono::duration<Rep, Period> timeout) {
  return wait_for(create_task(std::forward<F>(function)), timeout);
}

}  // namespace asyncio
