// The asyncio_alt demo timer_test (examples/seed/timer_test.hpp, compiled unchanged) as an
// order case: a pollable timer of 100 ms among ten tasks that each block for 5 ms and yield.
// On the virtual clock the timer's measured time counts the blocks that ran before its task:
// round-robin queues the woken task behind all ten blockers (100 + 50 ms), fast I/O runs it at
// the next switch (100 ms).
#include <cstdio>
#include <string>

#include "virtual_clock.hpp"

namespace demo {

using virtual_clock::block_cpu_ms;
using virtual_clock::now_us;
inline constexpr const char* kRoundRobin = "roundrobin";
inline constexpr const char* kFastIo = "fast_io";

}  // namespace demo

#include "../../examples/seed/timer_test.hpp"

namespace {

struct Report {
  void say(const char* text) { std::printf("%s\n", text); }
  void iteration_us(const char* mode, int index, std::int64_t us) {
    std::printf("%s %d: %lld ms\n", mode, index, static_cast<long long>(us / 1000));
  }
  void summary(const char*) {}
};

}  // namespace

int main() {
  Report report;
  asyncio::run([&] { seed::timer_test(3, report); });
  return 0;
}
