// blink_power: the seed's low-power demo. A task toggles the Pico's LED (GPIO 25) once a second;
// nothing else runs. In normal mode the loop polls continuously between toggles; with
// power_mode(true) it light-sleeps until the next due time.
//
// An emulator has no ammeter, so the firmware reports the share of time spent in light sleep
// (wfi_share) and a modelled board current: 18 mA awake (the seed's RP2040 measurement in
// normal mode) x awake share + 1.3 mA asleep (the Pico datasheet's SLEEP figure) x asleep share.
// The seed measured 1.28 mA vs 18 mA on a real RP2040.
#include <asyncio/asyncio.hpp>

#include "console.hpp"
#include "hal.hpp"
#include "hw.hpp"

namespace {

constexpr unsigned kLedPin = 25;
constexpr std::int64_t kActiveMicroamps = 18'000;
constexpr std::int64_t kSleepMicroamps = 1'300;

void blink(int toggles) {
  bool on = false;
  for (int i = 0; i < toggles; ++i) {
    asyncio::sleep_ms(1000);
    on = !on;
    hal::gpio_put(kLedPin, on);
  }
}

void run_mode(bool low_power, int toggles) {
  asyncio::power_mode(low_power);
  hw::reset_sleep_stats();
  asyncio::run(blink, toggles);
  const hw::SleepStats stats = hw::sleep_stats();
  // Parts per million, in integers: no floating point needed on an M0+.
  const std::int64_t asleep_ppm = stats.asleep_us * 1'000'000 / stats.elapsed_us;
  const std::int64_t microamps =
      (kActiveMicroamps * (1'000'000 - asleep_ppm) + kSleepMicroamps * asleep_ppm) / 1'000'000;
  hw::JsonLine()
      .str("demo", "blink_power")
      .str("mode", low_power ? "low_power" : "normal")
      .fixed("wfi_share", asleep_ppm / 10, 5)
      .fixed("modelled_ma", microamps, 3)
      .integer("wakeups", stats.sleeps)
      .fixed("seconds", stats.elapsed_us, 6)
      .str("board", hal::board_name());
}

}  // namespace

int main() {
  hal::gpio_set_output(kLedPin);
  // Normal mode spins; 2 s keep the emulator run short. Low-power mode costs nothing to emulate.
  run_mode(false, 2);
  run_mode(true, 10);
  hw::print_line("PASS");
  return 0;
}
