// What the hw demos share: the hardware clock, the 5 ms CPU block and the JSON report, printed
// exactly as the Linux demos print it (examples/demo_util.hpp) so that tools read both alike.
//
// The Linux demos cannot be compiled here as they are: they read CLOCK_MONOTONIC, parse argv and
// print with stdio (and tsf_test uses threads and signals). The scheduling code is the same.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "console.hpp"
#include "hal.hpp"

namespace demo {

inline constexpr const char* kRoundRobin = "roundrobin";
inline constexpr const char* kFastIo = "fast_io";

/// The hardware timer in microseconds: what the portable seed demos (examples/seed/) read.
inline std::int64_t now_us() { return static_cast<std::int64_t>(hal::now()); }

/// Keeps the CPU busy for `ms`, as MicroPython's time.sleep_ms() does: it blocks the whole
/// scheduler, which is the load the demos are about.
inline void block_cpu_ms(int ms) {
  const hal::Micros end = hal::now() + hal::Micros{ms} * 1000;
  while (hal::now() < end) {
  }
}

/// One JSON object per measurement and a summary per mode (median, max, min in ms).
class Report {
 public:
  Report(const char* demo, std::string_view extra_key = {}, std::string_view extra_value = {})
      : demo_(demo), extra_key_(extra_key), extra_value_(extra_value) {}

  void iteration(const char* mode, int index, hal::Micros us) {
    samples_.push_back(us);
    hw::JsonLine line;
    line.str("demo", demo_).str("mode", mode).integer("iteration", index).fixed("ms", us, 3);
    extra(line);
  }

  /// The portable seed demos' names for the same calls; the seed's prose is not printed,
  /// the console carries JSON lines only.
  void iteration_us(const char* mode, int index, std::int64_t us) {
    iteration(mode, index, static_cast<hal::Micros>(us));
  }
  void say(const char*) const {}

  void summary(const char* mode) {
    std::sort(samples_.begin(), samples_.end());
    const std::size_t n = samples_.size(), middle = n / 2;
    const hal::Micros median =
        n == 0 ? 0 : n % 2 ? samples_[middle] : (samples_[middle - 1] + samples_[middle]) / 2;
    hw::JsonLine line;
    line.str("demo", demo_).str("mode", mode).boolean("summary", true);
    line.fixed("median_ms", median, 3)
        .fixed("max_ms", n ? samples_.back() : 0, 3)
        .fixed("min_ms", n ? samples_.front() : 0, 3);
    extra(line);
    samples_.clear();
  }

 private:
  void extra(hw::JsonLine& line) const {
    if (!extra_key_.empty()) line.str(extra_key_, extra_value_);
    line.str("board", hal::board_name());
  }

  const char* demo_;
  std::string_view extra_key_, extra_value_;
  std::vector<hal::Micros> samples_;
};

}  // namespace demo
