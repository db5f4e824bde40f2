// The Linux port's clock and log sink (include/asyncio/detail/port.hpp).
#include <spdlog/spdlog.h>
#include <time.h>

#include <cstdlib>

#include "asyncio/detail/port.hpp"

namespace asyncio::detail::port {

Micros now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Micros>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

void log_error(const char* message) noexcept {
  try {
    spdlog::error("{}", message);
  } catch (...) {
  }
}

void log_info(const char* message) noexcept {
  try {
    spdlog::info("{}", message);
  } catch (...) {
  }
}

void fatal(const char* message) noexcept {
  try {
    spdlog::critical("{}", message);
    spdlog::default_logger()->flush();
  } catch (...) {
  }
  std::abort();
}

// Low-power mode on Linux: batched 20 ms waits (Loop::wait_for_events) and a raised timer
// slack (LinuxBackend::set_low_power).
bool low_power_supported() noexcept { return true; }

}  // namespace asyncio::detail::port
