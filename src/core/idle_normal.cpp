// Normal mode's idle policy (docs/semantics.md#waiting): block until the next timer on a fine
// grid, after busy polling when Loop::set_busy_poll asks for it.
#include <algorithm>

#include "asyncio/detail/idle_policy.hpp"
#include "asyncio/detail/scheduler.hpp"

namespace asyncio::detail {

Micros NormalIdle::grid(Micros resolution, Micros backend_resolution) const {
  // Only batches timers due within microseconds of each other, and is never finer than the
  // backend can wake (a board's 1 ms tick).
  return std::max({resolution, backend_resolution, Micros{1}});
}

Micros NormalIdle::pollable_interval() const { return Scheduler::kPollableIntervalUs; }

void NormalIdle::wait(Scheduler& scheduler, Micros deadline) { scheduler.block(deadline, &busy_poller_); }

}  // namespace asyncio::detail
