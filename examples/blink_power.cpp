// blink_power: the seed's blink, toggling an LED every second, in either power mode (docs/semantics.md#low-power).
//
// There is no GPIO on this machine, so each toggle is a log line (libgpiod is not used). In
// low-power mode the toggle is served on the loop's 20 ms grid: up to 20 ms late, but the
// process still wakes once per toggle. Run it under tools/power_proxy to see what it costs:
//   power_proxy -- blink_power --low-power --seconds 10
//
//   blink_power [--low-power] [--seconds N] [--json]
// With --json, one object per toggle and a summary go to stdout instead of the log lines.

#include <asyncio/linux.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "demo_util.hpp"

namespace {

constexpr const char* kUsage = "usage: blink_power [--low-power] [--seconds N] [--json]\n";
constexpr std::int64_t kPeriodNs = 1'000'000'000;  // the seed's blink: 1 s

struct Flags {
  bool low_power = false;
  bool json = false;
  int seconds = 10;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "blink_power: %s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

Flags parse_flags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--low-power") {
      flags.low_power = true;
    } else if (flag == "--json") {
      flags.json = true;
    } else if (flag == "--seconds" && i + 1 < argc) {
      char* end = nullptr;
      long value = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || value < 1 || value > 86'400) usage_error("--seconds needs 1..86400");
      flags.seconds = static_cast<int>(value);
    } else if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      usage_error("unknown flag " + flag);
    }
  }
  return flags;
}

/// Toggles `seconds` times on an absolute schedule, so lateness never accumulates.
void blink(const Flags& flags) {
  bool led = false;
  double worst_ms = 0;
  const std::int64_t start = demo::now_ns();
  for (int toggle = 1; toggle <= flags.seconds; ++toggle) {
    const std::int64_t due = start + toggle * kPeriodNs;
    asyncio::sleep_us((due - demo::now_ns() + 999) / 1000);
    led = !led;
    const double late_ms = demo::ns_to_ms(demo::now_ns() - due);
    worst_ms = late_ms > worst_ms ? late_ms : worst_ms;
    if (flags.json) {
      std::printf("%s\n", demo::JsonLine{}
                              .add("example", "blink_power")
                              .add("toggle", toggle)
                              .add("led", led)
                              .add("late_ms", late_ms)
                              .str()
                              .c_str());
    } else {
      std::printf("LED %s (toggle %d, %.2f ms late)\n", led ? "on" : "off", toggle, late_ms);
    }
    std::fflush(stdout);
  }
  // What the loop did meanwhile: low-power mode shows up as fewer, batched, sleeps.
  const asyncio::LoopStats& stats = asyncio::get_event_loop().stats();
  if (flags.json) {
    std::printf("%s\n", demo::JsonLine{}
                            .add("example", "blink_power")
                            .add("mode", flags.low_power ? "low_power" : "normal")
                            .add("toggles", flags.seconds)
                            .add("max_late_ms", worst_ms)
                            .add("task_switches", stats.task_switches)
                            .add("task_wakeups", stats.task_wakeups)
                            .add("blocking_waits", stats.blocking_waits)
                            .add("time_blocked_ms", static_cast<double>(stats.time_blocked_us) / 1000.0)
                            .add("io_polls", stats.io_polls)
                            .add("empty_io_polls", stats.empty_io_polls)
                            .add("low_power_batches", stats.low_power_batches)
                            .str()
                            .c_str());
  } else {
    std::printf("loop: %llu switches, %llu wake-ups, %llu blocking waits (%.1f ms blocked), "
                "%llu I/O polls (%llu empty), %llu low-power batches\n",
                static_cast<unsigned long long>(stats.task_switches),
                static_cast<unsigned long long>(stats.task_wakeups),
                static_cast<unsigned long long>(stats.blocking_waits),
                static_cast<double>(stats.time_blocked_us) / 1000.0,
                static_cast<unsigned long long>(stats.io_polls),
                static_cast<unsigned long long>(stats.empty_io_polls),
                static_cast<unsigned long long>(stats.low_power_batches));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = parse_flags(argc, argv);
  try {
    asyncio::power_mode(flags.low_power);
    asyncio::run(blink, flags);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "blink_power: %s\n", error.what());
    return 1;
  }
  return 0;
}
