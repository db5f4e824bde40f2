// A virtual clock for the asyncio_alt demos' order cases: each 5 ms "block" of CPU advances
// it by exactly 5 ms and takes no real time, so a latency read on it counts the blocks that
// ran before the measured task, which is the order of events, whatever the machine's speed.
#pragma once

#include <asyncio/testing.hpp>
#include <chrono>
#include <cstdint>

namespace virtual_clock {

inline std::int64_t now = 0;  // µs; tasks run on one thread

// On a loop on virtual time (suite core) the loop's own clock plays this part, so that timers
// see the blocks too.
inline std::int64_t now_us() {
  if (asyncio::testing::active()) return asyncio::testing::now().count();
  return now;
}
inline void block_cpu_ms(int ms) {
  if (asyncio::testing::active()) return asyncio::testing::advance(std::chrono::milliseconds(ms));
  now += std::int64_t{ms} * 1000;
}

}  // namespace virtual_clock
