// timer_test: the seed's demo of fast I/O scheduling (asyncio_alt/demos/timer_test.py).
//
// A MillisecTimer is written as a "streaming device driver": the scheduler polls it at every
// task switch, like MicroPython's ioctl(MP_STREAM_POLL). Ten tasks each block the CPU for 5 ms
// and then yield. With round-robin scheduling the timer's task waits behind every blocker
// already queued (a nominal 100 ms measures ~150 ms); with fast I/O it runs at the next switch
// (~100 ms plus the rest of the 5 ms block under way).

#include <asyncio/asyncio.hpp>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <vector>

#include "demo_util.hpp"

namespace {

constexpr const char* kUsage = "timer_test [--iterations N] [--json] [--backend epoll|uring|auto]";
constexpr int kBlockerCount = 10;
constexpr int kBlockMs = 5;
constexpr int kTimerMs = 100;

/// A one-shot timer the scheduler polls (SPEC S9): readable once its deadline has passed.
class MillisecTimer final : public asyncio::Pollable {
 public:
  /// Arms the timer `ms` from now (the seed's `timer(ms)`).
  void start(int ms) { end_ns_ = demo::now_ns() + std::int64_t{ms} * 1'000'000; }

  unsigned poll(unsigned events) override {
    if ((events & asyncio::POLL_RD) != 0 && demo::now_ns() >= end_ns_) return asyncio::POLL_RD;
    return 0;
  }

 private:
  std::int64_t end_ns_ = 0;
};

/// Hogs the scheduler the way MicroPython code calling time.sleep_ms(5) does.
void block() {
  while (true) {
    demo::block_cpu_ms(kBlockMs);
    asyncio::sleep_ms(0);
  }
}

void pause(MillisecTimer& timer, const char* mode, int iterations, demo::Report& report) {
  for (int i = 0; i < iterations; ++i) {
    const std::int64_t start = demo::now_ns();
    timer.start(kTimerMs);
    asyncio::wait_pollable(timer, asyncio::POLL_RD);
    report.iteration(mode, i, demo::ns_to_ms(demo::now_ns() - start));
  }
  report.summary(mode);
}

void timer_test(int iterations, demo::Report& report) {
  MillisecTimer timer;
  std::vector<asyncio::Task<void>> blockers;
  for (int n = 0; n < kBlockerCount; ++n) blockers.push_back(asyncio::create_task(block));

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

}  // namespace

int main(int argc, char** argv) {
  const demo::Options options = demo::parse_options(
      argc, argv, kUsage, [](std::string_view, const std::string&) { return false; });
  try {
    asyncio::Loop& loop =
        asyncio::new_event_loop(asyncio::Loop::Options{.backend = options.backend});
    demo::Report report("timer_test", options.json, {{"backend", loop.backend_name()}});
    if (!options.json) std::printf("timer_test on the %s backend\n", loop.backend_name());
    asyncio::run([&] { timer_test(options.iterations, report); });
  } catch (const std::exception& error) {
    std::fprintf(stderr, "timer_test: %s\n", error.what());
    return 1;
  }
  return 0;
}
