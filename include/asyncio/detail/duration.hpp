// Turning caller-chosen durations into the loop's microseconds without overflow: a duration
// too long to represent saturates at kForever, a deadline no timer ever reaches, so that
// "sleep forever" sleeps forever instead of wrapping round into the past.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>

#include "asyncio/detail/port.hpp"

namespace asyncio::detail {

/// ~73,000 years: far enough that no deadline computed from it (plus a clock reading, a grid
/// slot) can overflow 64 bits.
inline constexpr Micros kForever = std::numeric_limits<Micros>::max() / 4;

/// Throws ValueError("<what>: the duration is NaN"); out of line.
[[noreturn, gnu::cold]] void throw_nan_duration(const char* what);

/// `now + delay`, saturated at kForever.
constexpr Micros deadline_after(Micros now, Micros delay) {
  return delay >= kForever - now ? kForever : now + delay;
}

/// `count * factor` (a positive factor), saturated at ±kForever.
constexpr Micros scale_saturated(std::int64_t count, std::int64_t factor) {
  if (count > kForever / factor) return kForever;
  if (count < -kForever / factor) return -kForever;
  return count * factor;
}

/// Seconds (a double) to whole microseconds, rounded up; +inf saturates. NaN: ValueError
/// naming `what`.
inline Micros seconds_to_micros(double seconds, const char* what) {
  if (std::isnan(seconds)) throw_nan_duration(what);
  const double us = std::ceil(seconds * 1e6);
  if (us >= static_cast<double>(kForever)) return kForever;
  if (us <= -static_cast<double>(kForever)) return -kForever;
  return static_cast<Micros>(us);
}

/// A std::chrono duration to whole microseconds, rounded up, saturated at ±kForever (chrono's
/// own ceil overflows on hours::max()). NaN: ValueError naming `what`.
template <class Rep, class Period>
Micros to_micros(std::chrono::duration<Rep, Period> duration, const char* what) {
  const double us = std::chrono::duration<double, std::micro>(duration).count();
  if constexpr (std::is_floating_point_v<Rep>) {
    if (std::isnan(us)) throw_nan_duration(what);
  }
  // Out of range of the loop's clock: saturate before chrono's integer arithmetic overflows.
  if (us >= static_cast<double>(kForever)) return kForever;
  if (us <= -static_cast<double>(kForever)) return -kForever;
  if constexpr (std::is_floating_point_v<Rep>) {
    return static_cast<Micros>(std::ceil(us));
  } else {
    return std::chrono::ceil<std::chrono::microseconds>(duration).count();
  }
}

}  // namespace asyncio::detail
