// What the hw port offers firmware beyond the asyncio API: stack sizing, sleep statistics and
// the board's devices. Include <asyncio/asyncio.hpp> for the scheduler itself.
#pragma once

#include <cstddef>
#include <cstdint>

#include "asyncio/detail/port.hpp"
#include "hal.hpp"

namespace hw {

/// Stack of a task created without TaskOptions::stack_size. 4 KiB covers a C++ exception
/// unwinding through a few frames (the EHABI unwinder and personality routine use ~1.5 KiB; see
/// the stack figures hw/examples/core_test prints) and leaves room for 50 tasks in the
/// RP2040's 264 KiB. Override per task: create_task(asyncio::TaskOptions{"name", 2048}, f).
inline constexpr std::size_t kDefaultStackSize = 4096;
/// Smaller requests are rounded up to this: the context frame, one interrupt frame and a few
/// calls.
inline constexpr std::size_t kMinimumStackSize = 512;

/// Bytes of `stack` ever used (high-water mark, from the paint applied at allocation).
std::size_t stack_used(const asyncio::detail::Stack& stack);

/// Name of the running task, or nullptr on the loop's own thread (used by fault messages).
const char* current_task_name();

/// Where the time went since reset_sleep_stats(): the share spent in light sleep is what the
/// blink_power example reports as wfi_share.
struct SleepStats {
  hal::Micros elapsed_us = 0;
  hal::Micros asleep_us = 0;
  std::uint32_t sleeps = 0;  // light_sleep() calls, i.e. wake-ups
};
SleepStats sleep_stats();
void reset_sleep_stats();


}  // namespace hw
