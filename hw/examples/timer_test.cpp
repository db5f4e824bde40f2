// timer_test on hw: the seed's fast-I/O demo, compiled from the same source as on Linux
// (examples/seed/timer_test.hpp). The MillisecTimer reads the hardware TIMER through demo.hpp.
#include "demo.hpp"
#include "seed/timer_test.hpp"

namespace {
constexpr int kIterations = 10;
}

int main() {
  asyncio::run([] {
    demo::Report report("timer_test");
    seed::timer_test(kIterations, report);
  });
  hw::print_line("PASS");
  return 0;
}
