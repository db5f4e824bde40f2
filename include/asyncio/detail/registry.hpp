// The per-thread loop registry: which scheduler runs on this thread. The thread's own loop
// (get_event_loop, new_event_loop) and its module-level modes live in src/core/registry.cpp.
#pragma once

namespace asyncio::detail {

class Scheduler;

/// The scheduler running on this thread, if any: tasks find their loop through it, even while
/// the thread's default loop is being replaced or destroyed. Inline reads: sleep_ms(0) asks at
/// every switch.
extern constinit thread_local Scheduler* running_scheduler;

/// Marks `scheduler` as running on this thread for the scope's lifetime.
class RunningScope {
 public:
  explicit RunningScope(Scheduler* scheduler) : previous_(running_scheduler) {
    running_scheduler = scheduler;
  }
  ~RunningScope() { running_scheduler = previous_; }
  RunningScope(const RunningScope&) = delete;
  RunningScope& operator=(const RunningScope&) = delete;

 private:
  Scheduler* previous_;
};

}  // namespace asyncio::detail
