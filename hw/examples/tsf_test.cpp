// tsf_test on hw: ThreadSafeFlag latency with a truly asynchronous source.
//
// The TIMER's second alarm interrupts every 100 ms; its handler timestamps and sets a
// ThreadSafeFlag (examples/tsf_test.cpp does the same from a thread or a signal handler on
// Linux). One task waits on the flag and measures set()-to-resumption while ten tasks each block
// the CPU for 5 ms and then yield. Round-robin queues the woken waiter behind every blocker (up
// to ~50 ms); fast I/O runs it at the next switch (at most one 5 ms block).
#include <asyncio/asyncio.hpp>
#include <atomic>
#include <vector>

#include "demo.hpp"
#include "hal.hpp"

namespace {

constexpr int kBlockerCount = 10;
constexpr int kBlockMs = 5;
constexpr hal::Micros kPeriodUs = 100'000;
constexpr int kIterations = 10;

asyncio::ThreadSafeFlag flag;
std::atomic<hal::Micros> set_time{0};
hal::Micros next_alarm = 0;

// Interrupt context: only set() and plain stores.
void on_alarm() {
  set_time.store(hal::now(), std::memory_order_relaxed);
  flag.set();
  next_alarm += kPeriodUs;
  hal::set_user_alarm(next_alarm, on_alarm);
}

void block() {
  while (true) {
    demo::block_cpu_ms(kBlockMs);
    asyncio::sleep_ms(0);
  }
}

void measure(const char* mode, demo::Report& report) {
  flag.clear();  // a set that straddles the mode switch is not measured
  for (int i = 0; i < kIterations; ++i) {
    flag.wait();
    report.iteration(mode, i, hal::now() - set_time.load(std::memory_order_relaxed));
  }
  report.summary(mode);
}

void tsf_test() {
  demo::Report report("tsf_test", "source", "interrupt");
  std::vector<asyncio::Task<void>> blockers;
  for (int n = 0; n < kBlockerCount; ++n) {
    blockers.push_back(asyncio::create_task(asyncio::TaskOptions{"blocker", 0}, block));
  }
  next_alarm = hal::now() + kPeriodUs;
  hal::set_user_alarm(next_alarm, on_alarm);
  measure(demo::kRoundRobin, report);
  asyncio::roundrobin(false);
  measure(demo::kFastIo, report);
  hal::set_user_alarm(0, nullptr);
  for (auto& blocker : blockers) blocker.cancel();
  asyncio::gather(asyncio::return_exceptions, blockers);
}

}  // namespace

int main() {
  asyncio::run(tsf_test);
  hw::print_line("PASS");
  return 0;
}
