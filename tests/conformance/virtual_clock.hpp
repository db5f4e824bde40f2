// A virtual clock for the asyncio_alt demos' order cases: each 5 ms "block" of CPU advances
// it by exactly 5 ms and takes no real time, so a latency read on it counts the blocks that
// ran before the measured task, which is the order of events, whatever the machine's speed.
#pragma once

#include <cstdint>

namespace virtual_clock {

inline std::int64_t now = 0;  // µs; tasks run on one thread

inline std::int64_t now_us() {
  return now;
}
inline void block_cpu_ms(int ms) {
  now += std::int64_t{ms} * 1000;
}

}  // namespace virtual_clock
