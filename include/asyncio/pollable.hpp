// Pollable devices (docs/semantics.md#pollables): MicroPython's "streaming device driver" in C++.
#pragma once

#include <cstdint>

#include "asyncio/detail/port.hpp"

namespace asyncio {

/// Readiness bits, as MicroPython's MP_STREAM_POLL_RD/WR/ERR/HUP.
inline constexpr unsigned POLL_RD = detail::kPollRead;
inline constexpr unsigned POLL_WR = detail::kPollWrite;
inline constexpr unsigned POLL_ERR = detail::kPollError;
inline constexpr unsigned POLL_HUP = detail::kPollHangup;

/// A device the scheduler polls with the rest of the I/O at every task switch: MicroPython's
/// ioctl(MP_STREAM_POLL). poll() must not block; it returns the subset of `events` that is
/// ready (0 if none). While tasks wait on pollables and the loop has nothing else to run, it
/// polls them every Loop::kPollableIntervalUs.
class Pollable {
 public:
  /// Which of `events` are ready now (0 if none); must not block.
  virtual unsigned poll(unsigned events) = 0;

 protected:
  ~Pollable() = default;
};

/// Suspends the current task until `device.poll(events)` reports something; returns it.
/// An exception thrown by poll() is rethrown here.
unsigned wait_pollable(Pollable& device, unsigned events);

}  // namespace asyncio
