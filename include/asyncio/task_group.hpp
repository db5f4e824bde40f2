// task_group(): CPython 3.11's asyncio.TaskGroup as a scope function. A C++ destructor cannot
// wait or throw safely, so the `async with` block becomes a body that receives the group:
//
//   asyncio::task_group([&](asyncio::TaskGroup& group) {
//     group.create_task(fetch, 1);
//     group.create_task(fetch, 2);
//   });  // returns once both are done, or rethrows the first failure
#pragma once

#include <exception>
#include <list>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncio/task.hpp"

namespace asyncio {

/// Structured concurrency (CPython's asyncio.TaskGroup): its tasks end before the group does;
/// the first failure cancels the rest and is raised when the group ends.
class TaskGroup {
 public:
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  /// asyncio::create_task, and the group waits for the task. RuntimeError once the group has
  /// finished, or while it shuts down after a failure (no task is created then).
  template <class F, class... Args>
  auto create_task(const TaskOptions& options, F&& function, Args&&... args) {
    check_open();
    auto task =
        asyncio::create_task(options, std::forward<F>(function), std::forward<Args>(args)...);
    adopt(task);
    return task;
  }
  /// create_task() with default TaskOptions.
  template <class F, class... Args>
    requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
  auto create_task(F&& function, Args&&... args) {
    return create_task(TaskOptions{}, std::forward<F>(function), std::forward<Args>(args)...);
  }

 private:
  template <class F>
  friend std::invoke_result_t<F&, TaskGroup&> task_group(F&& body);

  /// One task of the group; its done-callback reports to the group.
  struct Member : detail::DoneCallback {
    TaskBase task;
    TaskGroup* group = nullptr;
  };

  TaskGroup();
  void check_open() const;
  void adopt(const TaskBase& task);
  static void on_member_done(detail::DoneCallback* self, detail::TaskRecord* finished);
  /// Cancels every member still running (a failure, or the body or the caller ended early).
  void abort();
  /// A member failed while the body runs: cancel the calling task too (CPython does).
  void cancel_body();
  /// Waits for every member, then rethrows what ends the group: the body's exception, else the
  /// first member's failure, else a cancellation of the caller. Other failures go to the
  /// loop's exception handler.
  void finish(std::exception_ptr body_error);

  detail::TaskRecord* parent_;
  std::list<Member> members_;  // a list: done-callback nodes must not move
  std::size_t running_ = 0;
  std::vector<std::exception_ptr> failures_;  // members' exceptions other than CancelledError
  bool body_done_ = false;
  bool body_cancelled_ = false;  // cancel_body() ran
  bool parent_waiting_ = false;
  bool aborting_ = false;
  bool closed_ = false;
};

/// Runs `body(group)` in the current task, then waits for every task created in the group.
/// If a task fails (with anything but CancelledError), the group cancels the others, waits for
/// them and rethrows that first failure; later failures go to the loop's exception handler
/// (CPython raises an ExceptionGroup of all of them). If the body throws, the group's tasks are
/// cancelled and waited for, then the body's exception is rethrown. A cancel() of the caller
/// while it waits cancels the group's tasks too. As in CPython, a failure while the body still
/// runs also cancels the body (the calling task) at its suspension point; that CancelledError
/// does not leave the group, the failure does. Returns the body's value.
template <class F>
std::invoke_result_t<F&, TaskGroup&> task_group(F&& body) {
  using Result = std::invoke_result_t<F&, TaskGroup&>;
  TaskGroup group;
  std::exception_ptr body_error;
  if constexpr (std::is_void_v<Result>) {
    try {
      body(group);
    } catch (...) {
      body_error = std::current_exception();
    }
    group.finish(body_error);
  } else {
    std::optional<Result> value;
    try {
      value.emplace(body(group));
    } catch (...) {
      body_error = std::current_exception();
    }
    group.finish(body_error);
    return std::move(*value);
  }
}

}  // namespace asyncio
