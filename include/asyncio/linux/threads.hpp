// Crossing threads (Linux port; docs/semantics.md#threads-signals-fork): call_soon_threadsafe,
// to_thread, ThreadPoolExecutor and Loop::run_in_executor. Not on the boards.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncio/errors.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/task.hpp"
#include "asyncio/threadsafe_flag.hpp"

namespace asyncio {

/// A bounded pool of threads for blocking calls (CPython's ThreadPoolExecutor): threads are
/// started on demand, up to max_workers; further jobs queue. The destructor runs the queued
/// jobs and joins the threads.
class ThreadPoolExecutor {
 public:
  /// ValueError when max_workers is 0.
  explicit ThreadPoolExecutor(std::size_t max_workers = default_max_workers());
  ~ThreadPoolExecutor();
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

  /// Queues `job` for a worker thread. Any thread. RuntimeError after shutdown().
  void submit(std::function<void()> job);
  /// Refuses new jobs. The queued ones still run; with `wait`, this returns once they have
  /// and the threads are joined.
  void shutdown(bool wait = true);
  /// The most threads the pool runs at once.
  std::size_t max_workers() const { return max_workers_; }
  /// CPython's default: min(32, CPUs + 4).
  static std::size_t default_max_workers();

 private:
  void work();

  const std::size_t max_workers_;
  std::mutex mutex_;
  std::condition_variable job_queued_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  bool stopping_ = false;
};

/// The pool to_thread() and run_in_executor(nullptr, ...) use, made on first use.
ThreadPoolExecutor& default_executor();

namespace detail {

/// What a blocking call on a worker hands back to the task awaiting it. The waiter's flag is
/// reached under the mutex only, and the waiter clears it when it stops waiting (returns or
/// is cancelled), so a late worker never touches a flag that is gone: its result is dropped.
template <class R>
struct ThreadCall {
  std::mutex mutex;
  ThreadSafeFlag* done = nullptr;
  std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> value;
  std::exception_ptr error;
};

template <class R>
struct StopWaiting {
  ~StopWaiting() {
    std::lock_guard lock(call.mutex);
    call.done = nullptr;
  }
  ThreadCall<R>& call;
};

template <class F>
auto run_blocking(ThreadPoolExecutor& executor, F fn) -> std::invoke_result_t<F&> {
  using R = std::invoke_result_t<F&>;
  Loop& loop = get_event_loop();
  if (!scheduler_of(loop).current()) throw RuntimeError("to_thread: called outside a task");
  auto call = std::make_shared<ThreadCall<R>>();
  ThreadSafeFlag done;
  call->done = &done;
  StopWaiting<R> stop{*call};
  executor.submit([call, fn = std::move(fn)]() mutable {
    try {
      if constexpr (std::is_void_v<R>) {
        fn();
        call->value.emplace(true);
      } else {
        call->value.emplace(fn());
      }
    } catch (...) {
      call->error = std::current_exception();
    }
    std::lock_guard lock(call->mutex);
    if (call->done) call->done->set();
  });
  done.wait();  // CancelledError: the thread runs on, its result is dropped
  // Taken out of the call, which the worker may be the last to drop: the exception is then
  // freed on this thread, where it is read (ThreadSanitizer cannot see the C++ runtime's own
  // reference count on it, and reported the worker's free as a race).
  if (std::exception_ptr error = std::exchange(call->error, nullptr)) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<R>) return std::move(*call->value);
}

}  // namespace detail

/// CPython's loop.call_soon_threadsafe: starts `fn()` as a task on `loop` at its next switch
/// (in the order each thread posted). Safe from any thread, not from a signal handler (it
/// allocates; a handler sets a ThreadSafeFlag instead). The loop must outlive the call.
/// An exception from `fn` goes to the loop's exception handler, as a task's would.
template <class F>
  requires std::invocable<std::decay_t<F>&>
void call_soon_threadsafe(Loop& loop, F&& fn) {
  struct Call final : detail::RemoteCall {
    explicit Call(F&& function) : fn(std::forward<F>(function)) {}
    void start(detail::RemoteCallQueue& queue) override {
      create_task([&queue, call = std::move(fn)]() mutable {
        struct Finished {
          ~Finished() { queue.call_finished(); }
          detail::RemoteCallQueue& queue;
        } finished{queue};
        call();
      });
    }
    std::decay_t<F> fn;
  };
  detail::remote_calls_of(loop).post(new Call(std::forward<F>(fn)));
}

/// CPython's asyncio.to_thread: runs `fn(args...)` on the default pool and suspends the
/// calling task until it returns its value or rethrows. Cancelling the task does not stop the
/// thread: the call runs to its end and its result is dropped.
template <class F, class... Args>
  requires std::invocable<std::decay_t<F>&, std::decay_t<Args>&...>
auto to_thread(F&& fn, Args&&... args) {
  return detail::run_blocking(
      default_executor(), [fn = std::forward<F>(fn), ... args = std::forward<Args>(args)]() mutable {
        return std::invoke(fn, args...);
      });
}

template <class F>
auto Loop::run_in_executor(ThreadPoolExecutor* executor, F fn) {
  scheduler_.check_thread("run_in_executor");
  return detail::run_blocking(executor ? *executor : default_executor(), std::move(fn));
}

}  // namespace asyncio
