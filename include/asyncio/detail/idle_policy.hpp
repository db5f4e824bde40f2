// Idle policies: what the loop does when no task is ready (docs/semantics.md#waiting,
// docs/semantics.md#low-power).
//
// As Boost.Fiber's scheduling algorithms, a policy is a small unit the scheduler asks: the grid
// it serves timers on, how often it polls pollables, how it waits, what it does after a
// wake-up, and what it sets up when the loop enters or leaves it. The scheduler offers the
// mechanisms (Scheduler::block, sleep_without_io, poll_now); the port offers its own through
// IoBackend. Normal mode is in src/core/idle_normal.cpp, low power in idle_low_power.cpp.
#pragma once

#include "asyncio/detail/busy_poll.hpp"
#include "asyncio/detail/port.hpp"

namespace asyncio::detail {

class Scheduler;

class IdlePolicy {
 public:
  /// The grid (µs) on which timer deadlines are served: a wait for a timer ends on the first
  /// boundary at or after it. `resolution` is Loop::timer_resolution(), `backend_resolution`
  /// the finest grid the backend can wake on.
  virtual Micros grid(Micros resolution, Micros backend_resolution) const = 0;
  /// How long the loop may wait while tasks wait on pollables, before polling them again.
  virtual Micros pollable_interval() const = 0;
  /// Waits until `deadline` (absolute µs; -1: none), an event, or a wake-up.
  virtual void wait(Scheduler& scheduler, Micros deadline) = 0;
  /// After wait() and the poll that follows it: `delivered` says whether I/O or a flag woke a
  /// task meanwhile.
  virtual void after_wake(Scheduler& scheduler, bool delivered) = 0;
  /// The loop switches to this policy, or away from it.
  virtual void enter(IoBackend& backend) = 0;
  virtual void leave(IoBackend& backend) = 0;

 protected:
  ~IdlePolicy() = default;
};

/// Normal mode: block until the next timer on the fine grid, after busy polling if asked.
class NormalIdle final : public IdlePolicy {
 public:
  Micros grid(Micros resolution, Micros backend_resolution) const override;
  Micros pollable_interval() const override;
  void wait(Scheduler& scheduler, Micros deadline) override;
  void after_wake(Scheduler& /*scheduler*/, bool /*delivered*/) override {}
  void enter(IoBackend& /*backend*/) override {}
  void leave(IoBackend& /*backend*/) override {}

  BusyPoller& busy_poller() { return busy_poller_; }
  const BusyPoller& busy_poller() const { return busy_poller_; }

 private:
  BusyPoller busy_poller_;
};

/// Low-power mode: timers on the 20 ms grid, and interrupt mitigation: once I/O has woken the
/// loop in a slot, what follows accumulates until the slot ends and is served at once.
class LowPowerIdle final : public IdlePolicy {
 public:
  /// The slice: the seed's 20 ms, "chosen based on measurements on RP2".
  static constexpr Micros kSliceUs = 20'000;

  Micros grid(Micros resolution, Micros backend_resolution) const override;
  Micros pollable_interval() const override { return kSliceUs; }
  void wait(Scheduler& scheduler, Micros deadline) override;
  void after_wake(Scheduler& scheduler, bool delivered) override;
  void enter(IoBackend& backend) override;
  void leave(IoBackend& backend) override;
  /// Forgets a batch in progress: the next wait blocks on I/O again.
  void reset() { batch_until_ = 0; }

 private:
  Micros batch_until_ = 0;  // no I/O wait before this grid boundary
  Micros slot_end_ = 0;     // the boundary the last batching sleep went to (0: it did not batch)
};

}  // namespace asyncio::detail
