// The thread pool behind to_thread and run_in_executor (Linux port).
#include "asyncio/linux/threads.hpp"

#include <algorithm>

#include "asyncio/detail/port.hpp"

namespace asyncio {

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers) : max_workers_(max_workers) {
  if (max_workers == 0) throw ValueError("ThreadPoolExecutor: max_workers must be at least 1");
}

ThreadPoolExecutor::~ThreadPoolExecutor() { shutdown(true); }

std::size_t ThreadPoolExecutor::default_max_workers() {
  return std::min<std::size_t>(32, std::thread::hardware_concurrency() + 4);
}

void ThreadPoolExecutor::submit(std::function<void()> job) {
  std::unique_lock lock(mutex_);
  if (stopping_) throw RuntimeError("ThreadPoolExecutor.submit: the executor is shut down");
  jobs_.push_back(std::move(job));
  // A new thread only when none is idle: a burst of short calls reuses the same few.
  if (idle_ == 0 && threads_.size() < max_workers_) {
    threads_.emplace_back([this] { work(); });
  } else {
    lock.unlock();
    job_queued_.notify_one();
  }
}

void ThreadPoolExecutor::shutdown(bool wait) {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (wait) threads.swap(threads_);
  }
  job_queued_.notify_all();
  // Without `wait` the threads finish the queue on their own; the destructor joins them.
  for (std::thread& thread : threads) thread.join();
}

void ThreadPoolExecutor::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    job_queued_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    --idle_;
    if (jobs_.empty()) return;  // stopping, and nothing left to run
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    try {
      job();
    } catch (...) {
      detail::port::log_error("asyncio: a ThreadPoolExecutor job raised an exception");
    }
    lock.lock();
  }
}

ThreadPoolExecutor& default_executor() {
  static ThreadPoolExecutor executor;
  return executor;
}

}  // namespace asyncio
