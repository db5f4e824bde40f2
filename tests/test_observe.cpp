// Seeing what the loop does (docs/using.md#observing-the-loop): statistics, task
// introspection, the stall detector, and crossing threads.
#include <atomic>
#include <thread>

#include "test_support.hpp"

TEST_CASE("stats count switches, wake-ups, polls and blocking waits") {
  asyncio::Loop& loop = test::fresh_loop();
  const asyncio::LoopStats before = loop.stats();
  CHECK(before.task_switches == 0);
  asyncio::run([] {
    auto other = asyncio::create_task([] {
      for (int i = 0; i < 10; ++i) asyncio::sleep_ms(0);
    });
    for (int i = 0; i < 10; ++i) asyncio::sleep_ms(0);
    asyncio::sleep_ms(20);  // nothing else to run: the loop blocks
    other.result();
  });
  const asyncio::LoopStats& stats = loop.stats();
  CHECK(stats.task_switches >= 20);
  CHECK(stats.task_wakeups >= 1);  // the 20 ms sleep's timer
  CHECK(stats.blocking_waits >= 1);
  CHECK(stats.time_blocked_us >= 15'000);
  CHECK(stats.io_polls >= stats.task_switches / 2);
  CHECK(stats.empty_io_polls >= 1);
  CHECK(stats.empty_io_polls <= stats.io_polls);
  CHECK(stats.low_power_batches == 0);
}

TEST_CASE("stats: a flag set from another thread is a wake-up and a non-empty poll") {
  asyncio::Loop& loop = test::fresh_loop();
  asyncio::run([] {
    asyncio::ThreadSafeFlag flag;
    std::thread setter([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      flag.set();
    });
    flag.wait();
    setter.join();
  });
  const asyncio::LoopStats& stats = loop.stats();
  CHECK(stats.task_wakeups >= 1);
  CHECK(stats.blocking_waits >= 1);
  CHECK(stats.empty_io_polls < stats.io_polls);
}

TEST_CASE("stats: low-power mode batches I/O wake-ups to slot boundaries") {
  asyncio::Loop& loop = test::fresh_loop();
  asyncio::run([] {
    asyncio::power_mode(true);
    asyncio::ThreadSafeFlag flag;
    std::atomic<bool> done{false};
    std::thread setter([&] {
      while (!done.load()) {
        flag.set();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
    for (int i = 0; i < 10; ++i) flag.wait();
    done.store(true);
    setter.join();
  });
  CHECK(loop.stats().low_power_batches >= 1);
}
