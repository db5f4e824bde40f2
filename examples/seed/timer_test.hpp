// The seed's timer_test (asyncio_alt/demos/timer_test.py): the part that is the same on every
// platform, compiled from this one file by examples/timer_test.cpp (Linux) and
// hw/examples/timer_test.cpp (RP2040, RP2350, an505).
//
// A MillisecTimer is written as a "streaming device driver": the scheduler polls it at every
// task switch, like MicroPython's ioctl(MP_STREAM_POLL). Ten tasks each block the CPU for 5 ms
// and then yield. With round-robin scheduling the timer's task waits behind every blocker
// already queued (a nominal 100 ms measures ~150 ms); with fast I/O it runs at the next switch
// (~100 ms plus the rest of the 5 ms block under way).
//
// The including file first defines namespace demo with the platform's pieces:
//   std::int64_t now_us();               a monotonic clock in microseconds
//   void block_cpu_ms(int ms);           a busy-wait, as MicroPython's time.sleep_ms()
//   kRoundRobin, kFastIo                 the mode names of the JSON report
//   Report: say(text), iteration_us(mode, index, us), summary(mode)
#pragma once

#include <asyncio/asyncio.hpp>
#include <cstdint>
#include <vector>

namespace seed {

inline constexpr int kBlockerCount = 10;
inline constexpr int kBlockMs = 5;
inline constexpr int kTimerMs = 100;

/// A one-shot timer the scheduler polls (docs/semantics.md#pollables): readable once its deadline has passed.
class MillisecTimer final : public asyncio::Pollable {
 public:
  /// Arms the timer `ms` from now (the seed's `timer(ms)`).
  void start(int ms) { end_us_ = demo::now_us() + std::int64_t{ms} * 1000; }

  unsigned poll(unsigned events) override {
    if ((events & asyncio::POLL_RD) != 0 && demo::now_us() >= end_us_) return asyncio::POLL_RD;
    return 0;
  }

 private:
  std::int64_t end_us_ = 0;
};

/// Hogs the scheduler the way MicroPython code calling time.sleep_ms(5) does.
inline void block() {
  while (true) {
    demo::block_cpu_ms(kBlockMs);
    asyncio::sleep_ms(0);
  }
}

template <class Report>
void pause(MillisecTimer& timer, const char* mode, int iterations, Report& report) {
  for (int i = 0; i < iterations; ++i) {
    const std::int64_t start = demo::now_us();
    timer.start(kTimerMs);
    asyncio::wait_pollable(timer, asyncio::POLL_RD);
    report.iteration_us(mode, i, demo::now_us() - start);
  }
  report.summary(mode);
}

template <class Report>
void timer_test(int iterations, Report& report) {
  MillisecTimer timer;
  std::vector<asyncio::Task<void>> blockers;
  for (int n = 0; n < kBlockerCount; ++n) {
    blockers.push_back(asyncio::create_task(asyncio::TaskOptions{"blocker", 0}, block));
  }
  report.say(
      "This tests the accuracy of a MillisecTimer instance in the presence of\n"
      "multiple running tasks: first under normal roundrobin scheduling.\n"
      "Ideal time is 100ms.");
  pause(timer, demo::kRoundRobin, iterations, report);

  report.say("Now using I/O priority scheduling (roundrobin(false)).");
  asyncio::roundrobin(false);
  pause(timer, demo::kFastIo, iterations, report);

  for (auto& blocker : blockers) blocker.cancel();
  asyncio::gather(asyncio::return_exceptions, blockers);
}

}  // namespace seed
