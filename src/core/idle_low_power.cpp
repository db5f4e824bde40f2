// Low-power mode's idle policy (docs/semantics.md#low-power): timers on the 20 ms grid, and
// interrupt mitigation while I/O keeps arriving.
#include "asyncio/detail/idle_policy.hpp"
#include "asyncio/detail/scheduler.hpp"

namespace asyncio::detail {

namespace {
// 1 ms: 5 % of the slot, enough for the OS to coalesce our wake-ups with others, and also what
// an event arriving just after a wake-up may wait beyond the slot (a smaller slack did not lower
// bench/power's latencies: the machine's wake-up jitter dominates).
constexpr Micros kTimerSlackUs = 1000;
}  // namespace

Micros LowPowerIdle::grid(Micros /*resolution*/, Micros /*backend_resolution*/) const {
  // Every task due in a slot runs on one wake-up.
  return kSliceUs;
}

void LowPowerIdle::wait(Scheduler& scheduler, Micros deadline) {
  slot_end_ = 0;
  if (scheduler.time() < batch_until_) {
    // I/O or a flag woke us in this slot: let what follows accumulate until the slot ends (or
    // a timer falls due), then take it all at once.
    const bool timer_due = deadline >= 0 && deadline <= batch_until_;
    slot_end_ = timer_due ? deadline : batch_until_;
    scheduler.sleep_without_io(slot_end_, timer_due);
    scheduler.poll_now();
  } else {
    scheduler.block(deadline);
  }
  scheduler.poll_sources();  // flags are delivered here, not by the backend
}

void LowPowerIdle::after_wake(Scheduler& scheduler, bool delivered) {
  const Micros now = scheduler.refresh_clock();
  // While I/O keeps arriving, wait on it only at slot boundaries; a quiet slot ends that, so
  // an idle loop goes back to blocking with no wake-ups at all. A batching sleep that ended a
  // little before its boundary has still closed that slot: the next batch runs to the one after.
  const Micros at = now > slot_end_ ? now : slot_end_;
  batch_until_ = delivered ? (at / kSliceUs + 1) * kSliceUs : 0;
}

void LowPowerIdle::enter(IoBackend& backend) {
  batch_until_ = 0;
  backend.set_timer_slack(kTimerSlackUs);
  backend.set_low_power(true);
}

void LowPowerIdle::leave(IoBackend& backend) {
  batch_until_ = 0;
  backend.set_timer_slack(0);
  backend.set_low_power(false);
}

}  // namespace asyncio::detail
