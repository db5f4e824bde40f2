// Tasks: create_task(), handles, await(), current_task() (docs/semantics.md#tasks).
//
// A task is an ordinary callable run on its own fiber; it reads as sequential C++. Its handle
// is a reference-counted pointer to the scheduler's record, usable on the loop's thread only.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "asyncio/errors.hpp"
#include "asyncio/loop.hpp"

namespace asyncio {

namespace detail {

template <class T>
struct TaskResult : TaskRecord {
  std::optional<T> value;
};
template <>
struct TaskResult<void> : TaskRecord {};

template <class T, class Fn>
struct TaskImpl final : TaskResult<T> {
  explicit TaskImpl(Fn&& function) : fn(std::move(function)) {}
  void invoke() override {
    if constexpr (std::is_void_v<T>) {
      fn();
    } else {
      this->value.emplace(fn());
    }
  }
  Fn fn;
};

/// Suspends the current task until `task` is done or `deadline` passes (absolute µs, -1 =
/// none). Returns kTimeout on timeout. Throws CancelledError if the caller is cancelled and
/// RuntimeError when a task awaits itself. With `forward_cancel` (a plain `await`), cancelling
/// the caller cancels `task` instead, as MicroPython's Task.cancel does.
WakeReason await_task(TaskRecord* task, Micros deadline, bool forward_cancel = true);
/// Rethrows the stored exception of a finished task; RuntimeError if it is not finished.
void check_result(const TaskRecord* task);
/// Loop.run_until_complete's loop: runs `loop` until `task` is done; returns normally (the
/// caller reads the result). RuntimeError if the loop is running, the task is another loop's
/// or it can never finish.
void run_until_done(Loop& loop, TaskRecord* task);
/// asyncio.run()'s loop: runs until `main` is done, routing console interrupts to the loop;
/// raises KeyboardInterrupt once every task has unwound if one came.
void run_main(TaskRecord* main);

}  // namespace detail

/// Options for create_task: a name (default "task-N") and a stack size (0 = port default).
struct TaskOptions {
  /// The task's name; empty: "task-N".
  std::string name;
  /// The fiber's stack in bytes; 0: the port's default.
  std::size_t stack_size = 0;
};

/// An untyped task handle: what current_task() returns and what every Task<T> is.
class TaskBase {
 public:
  /// An empty handle: false in a test, RuntimeError from every other call.
  TaskBase() = default;
  /// A handle to the library's record of a task, taking a reference (create_task() makes
  /// them; a program has no records of its own).
  explicit TaskBase(detail::TaskRecord* record) : record_(record) {
    if (record_) detail::add_reference(record_);
  }
  /// Another handle to the same task.
  TaskBase(const TaskBase& other) : TaskBase(other.record_) {}
  /// Takes `other`'s task, leaving `other` empty.
  TaskBase(TaskBase&& other) noexcept : record_(std::exchange(other.record_, nullptr)) {}
  /// Makes this a handle to `other`'s task, releasing the task it named.
  TaskBase& operator=(TaskBase other) noexcept {
    std::swap(record_, other.record_);
    return *this;
  }
  ~TaskBase() {
    if (record_) detail::drop_reference(record_);
  }

  /// False for an empty handle.
  explicit operator bool() const { return record_ != nullptr; }
  /// True if both handles name the same task (or both are empty).
  bool operator==(const TaskBase& other) const { return record_ == other.record_; }

  /// True once the task has returned, raised or been cancelled.
  bool done() const { return record().state == detail::TaskState::kDone; }
  /// Requests cancellation: CancelledError surfaces at the task's suspension point. False if
  /// the task is already done. RuntimeError("can't cancel self") from the task itself, as in
  /// MicroPython (docs/semantics.md#cancellation).
  bool cancel() const;
  /// True if the task ended by CancelledError.
  bool cancelled() const { return done() && record().cancelled; }
  /// The task's name (TaskOptions::name, or "task-N").
  const std::string& name() const { return record().name; }
  /// Renames the task (as seen by all_tasks() and in error reports).
  void set_name(std::string name) const { record().name = std::move(name); }
  /// The exception that ended the task (nullptr if none); RuntimeError if not done.
  std::exception_ptr exception() const;
  /// Waits for the task, discarding its value; rethrows its exception.
  void wait() const {
    detail::await_task(record_, -1);
    detail::check_result(record_);
  }

  /// The library's record of the task, or nullptr; for the library's own functions.
  detail::TaskRecord* record_pointer() const { return record_; }

 protected:
  /// The record; RuntimeError for an empty handle.
  detail::TaskRecord& record() const {
    if (!record_) throw RuntimeError("empty task handle");
    return *record_;
  }
  /// The task named, holding one reference; nullptr when empty.
  detail::TaskRecord* record_ = nullptr;
};

/// A handle to a task whose function returns T: what create_task() returns, awaited with
/// asyncio::await(). Copies name the same task. Loop thread only.
template <class T>
class Task : public TaskBase {
 public:
  /// An empty handle.
  Task() = default;
  /// A handle to a record create_task() made.
  explicit Task(detail::TaskResult<T>* record) : TaskBase(record) {}

  /// The value of a finished task, or its exception rethrown; RuntimeError if not done.
  T result() const {
    detail::check_result(record_);
    if constexpr (!std::is_void_v<T>) return *static_cast<detail::TaskResult<T>*>(record_)->value;
  }
};

/// Creates a task running `function(args...)` on the current thread's loop (docs/semantics.md#tasks).
template <class F, class... Args>
  requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
auto create_task(const TaskOptions& options, F&& function, Args&&... args) {
  using Result = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;
  auto bound = [fn = std::forward<F>(function),
                tuple = std::make_tuple(std::forward<Args>(args)...)]() mutable -> Result {
    return std::apply(fn, std::move(tuple));
  };
  auto* record = new detail::TaskImpl<Result, decltype(bound)>(std::move(bound));
  record->name = options.name;
  record->stack.size = options.stack_size;
  Task<Result> handle(record);
  detail::scheduler_of(get_event_loop()).spawn(record);
  return handle;
}

template <class F, class... Args>
  requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
auto create_task(F&& function, Args&&... args) {
  return create_task(TaskOptions{}, std::forward<F>(function), std::forward<Args>(args)...);
}

/// Python's `await task`: suspends until the task is done; returns its value or rethrows.
template <class T>
T await(const Task<T>& task) {
  detail::await_task(task.record_pointer(), -1);
  return task.result();
}

/// The running task. RuntimeError outside a task.
TaskBase current_task();

/// asyncio.run(main): runs `function(args...)` as the main task on the current thread's loop
/// until it finishes; returns its value or rethrows its exception.
template <class F, class... Args>
auto run(F&& function, Args&&... args) {
  // As CPython: "asyncio.run() cannot be called from a running event loop"; refuse before
  // creating a task that would otherwise run later as an ordinary one.
  if (get_event_loop().is_running()) throw RuntimeError("run: the loop is already running");
  auto task = create_task(TaskOptions{"main", 0}, std::forward<F>(function),
                          std::forward<Args>(args)...);
  detail::run_main(task.record_pointer());
  return task.result();
}

/// Loop.run_until_complete(task).
template <class T>
T run_until_complete(const Task<T>& task) {
  if (!task) throw RuntimeError("run_until_complete: empty task handle");
  detail::TaskRecord* record = task.record_pointer();
  detail::run_until_done(record->scheduler->loop(), record);
  return task.result();
}

}  // namespace asyncio
