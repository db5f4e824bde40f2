// timer_test on hw: the seed's fast-I/O demo (examples/timer_test.cpp on Linux).
//
// A MillisecTimer on the hardware TIMER is a Pollable ("streaming device driver"): the
// scheduler polls it at every task switch. Ten tasks each block the CPU for 5 ms and then
// yield. Round-robin: the timer's task waits behind every blocker already queued (a nominal
// 100 ms measures ~150 ms). Fast I/O: it runs at the next switch (100 ms plus the rest of the
// 5 ms block under way).
#include <asyncio/asyncio.hpp>
#include <vector>

#include "demo.hpp"
#include "hal.hpp"

namespace {

constexpr int kBlockerCount = 10;
constexpr int kBlockMs = 5;
constexpr int kTimerMs = 100;
constexpr int kIterations = 10;

/// A one-shot timer the scheduler polls (SPEC S9): readable once its deadline has passed.
class MillisecTimer final : public asyncio::Pollable {
 public:
  void start(int ms) { end_ = hal::now() + hal::Micros{ms} * 1000; }
  unsigned poll(unsigned events) override {
    return (events & asyncio::POLL_RD) && hal::now() >= end_ ? asyncio::POLL_RD : 0;
  }

 private:
  hal::Micros end_ = 0;
};

void block() {
  while (true) {
    demo::block_cpu_ms(kBlockMs);
    asyncio::sleep_ms(0);
  }
}

void pause(MillisecTimer& timer, const char* mode, demo::Report& report) {
  for (int i = 0; i < kIterations; ++i) {
    const hal::Micros start = hal::now();
    timer.start(kTimerMs);
    asyncio::wait_pollable(timer, asyncio::POLL_RD);
    report.iteration(mode, i, hal::now() - start);
  }
  report.summary(mode);
}

void timer_test() {
  demo::Report report("timer_test");
  MillisecTimer timer;
  std::vector<asyncio::Task<void>> blockers;
  for (int n = 0; n < kBlockerCount; ++n) {
    blockers.push_back(asyncio::create_task(asyncio::TaskOptions{"blocker", 0}, block));
  }
  pause(timer, demo::kRoundRobin, report);
  asyncio::roundrobin(false);
  pause(timer, demo::kFastIo, report);
  for (auto& blocker : blockers) blocker.cancel();
  asyncio::gather(asyncio::return_exceptions, blockers);
}

}  // namespace

int main() {
  asyncio::run(timer_test);
  hw::print_line("PASS");
  return 0;
}
