// The IoBackend of every hw board: how the loop waits (docs/semantics.md#waiting, docs/semantics.md#low-power).
//
// There are no file descriptors on a microcontroller: devices (UART, timers) are Pollables
// (docs/semantics.md#pollables), which the core polls itself at every switch, and interrupt handlers reach the
// loop through ThreadSafeFlag::set(), which calls wake(). The core's idle policy decides how
// long to wait (in low power, at most a 20 ms slice while pollable devices wait); the port only
// decides how to pass that time, told by set_low_power():
//
//   normal mode     poll continuously until the deadline, as MicroPython does: the CPU never
//                   sleeps, the lowest latency (and ~18 mA on a Pico).
//   low-power mode  light sleep (hal::light_sleep: WFI with the clocks gated) until the
//                   deadline; the alarm, or any interrupt (a flag set by its handler), ends it.
#include <atomic>
#include <cstdint>
#include <memory>

#include "asyncio/detail/port.hpp"
#include "cortex_m.hpp"
#include "hal.hpp"
#include "hw.hpp"

namespace {

using asyncio::Micros;

hw::SleepStats stats;
Micros stats_since = 0;

class McuBackend final : public asyncio::detail::IoBackend {
 public:
  McuBackend() = default;

  const char* name() const override { return hal::board_name(); }

  // Nothing to do: devices are Pollables, which the core polls, and interrupt handlers signal
  // through ThreadSafeFlags, which the core drains.
  void poll_if_ready() override {}

  void wait(Micros deadline) override {
    if (low_power_) {
      sleep_until(deadline);
    } else {
      spin_until(deadline);
    }
    wake_requested_.store(false, std::memory_order_relaxed);
  }

  // From an interrupt handler (ThreadSafeFlag::set): a plain store; the interrupt itself has
  // already ended any WFI, and the flag stops the loops below from going back to sleep.
  void wake() noexcept override { wake_requested_.store(true, std::memory_order_relaxed); }

  Micros timer_resolution() const override { return hal::wake_resolution(); }

  void set_low_power(bool on) override { low_power_ = on; }

 private:
  void spin_until(Micros deadline) const {
    while (!wake_requested_.load(std::memory_order_relaxed)) {
      if (deadline >= 0 && hal::now() >= deadline) return;
    }
  }

  // Interrupts stay masked between the last look at the wake flag and the WFI: an interrupt
  // arriving in between stays pending, and WFI returns at once (ARMv6-M ARM B1.5.19).
  void sleep_until(Micros deadline) {
    const std::uint32_t saved = cortex_m::mask_interrupts();
    while (!wake_requested_.load(std::memory_order_relaxed)) {
      const Micros before = hal::now();
      if (deadline >= 0 && (before >= deadline || !hal::schedule_wake(deadline))) break;
      hal::light_sleep();
      stats.asleep_us += hal::now() - before;
      ++stats.sleeps;
      cortex_m::run_pending_handlers();
    }
    hal::cancel_wake();
    cortex_m::restore_interrupts(saved);
  }

  std::atomic<bool> wake_requested_{false};
  bool low_power_ = false;
};

}  // namespace

namespace hw {

SleepStats sleep_stats() {
  SleepStats copy = stats;
  copy.elapsed_us = hal::now() - stats_since;
  return copy;
}

void reset_sleep_stats() {
  stats = {};
  stats_since = hal::now();
}

}  // namespace hw

namespace asyncio::detail::port {

std::unique_ptr<IoBackend> make_backend(Loop& /*loop*/, const char* /*requested*/) {
  // One backend per board; a requested name (a Linux notion) is ignored.
  return std::make_unique<McuBackend>();
}

bool low_power_supported() noexcept { return true; }

}  // namespace asyncio::detail::port
