// timeout() scopes: arming and restoring the task's deadline (the expiry is raised by
// Scheduler::suspend() and Scheduler::yield_now()).
#include "asyncio/timeout.hpp"

#include <string>

#include "asyncio/detail/wait_queue.hpp"
#include "asyncio/errors.hpp"

namespace asyncio::detail {

void throw_nan_duration(const char* what) {
  throw ValueError(std::string(what) + ": the duration is NaN");
}

TimeoutScope::TimeoutScope(Micros timeout) : task_(running_task("timeout")) {
  deadline_ = deadline_after(task_->scheduler->refresh_time(), timeout);
  outer_deadline_ = task_->scope_deadline;
  // An outer scope that ends no later keeps its deadline armed; on a tie, owns() lets the
  // innermost scope, which sees the expiry first, claim it.
  const bool outer_first = outer_deadline_ >= 0 && outer_deadline_ <= deadline_;
  task_->scope_deadline = outer_first ? outer_deadline_ : deadline_;
}

}  // namespace asyncio::detail
