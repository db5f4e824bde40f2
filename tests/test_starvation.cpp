// The fast-I/O starvation bound (docs/semantics.md#fast-io). An I/O-woken task is queued as if due `bound` ago
// (1000 ms in the seed), so a normal task that has been due for longer than the bound runs
// before it: a stream of I/O work delays other tasks by about the bound, never forever.
//
// The storm: two tasks ping-pong through two ThreadSafeFlags (or two pipes), each doing 1 ms
// of synchronous work per hand-over, so that an I/O-woken task is always ready. A normal
// task sleeps 10 ms and records how late it woke.
//
// The flag storms run on virtual time (suite core), where each 1 ms of work moves the clock by
// exactly 1 ms: the figures are exact. The pipe storm needs the OS and runs on both backends
// with bounds a loaded machine cannot cross.
#include "test_support.hpp"

using namespace std::chrono_literals;

namespace {

constexpr auto kWorkPerWake = 1ms;
constexpr double kStormLimitMs = 5000;

struct StormResult {
  double lateness_ms = 0;  // how long after its due time the normal task ran
  long storm_wakes = 0;    // I/O wake-ups served while the normal task waited
};

struct FlagPair {
  asyncio::ThreadSafeFlag ping, pong;
  void wait_ping() { ping.wait(); }
  void wait_pong() { pong.wait(); }
  void set_ping() { ping.set(); }
  void set_pong() { pong.set(); }
};

struct PipePair {
  test::Pipe ping, pong;
  void wait_ping() { wait_on(ping); }
  void wait_pong() { wait_on(pong); }
  void set_ping() { ping.write_byte(); }
  void set_pong() { pong.write_byte(); }
  static void wait_on(test::Pipe& pipe) {
    asyncio::wait_readable(pipe.read_fd);
    pipe.drain();
  }
};

constexpr asyncio::Micros kDefaultBound = -1;

/// Runs the storm on a fresh loop in the given mode and bound (kDefaultBound: leave the loop's
/// default); returns what the normal task saw.
template <class Pair>
StormResult run_storm(bool fast_io, asyncio::Micros bound) {
  test::fresh_loop();
  asyncio::roundrobin(!fast_io);
  if (bound != kDefaultBound) asyncio::get_event_loop().set_io_priority_bound(bound);
  Pair pair;
  StormResult result;
  bool normal_done = false;
  asyncio::run([&] {
    // The normal task starts first so that its sleep begins before the storm does.
    auto normal = asyncio::create_task([&] {
      const auto start = test::Clock::now();
      asyncio::sleep_ms(10);
      result.lateness_ms = test::ms_since(start) - 10.0;
      normal_done = true;
    });
    // A storm that starved the normal task for good would hang the test: it gives up after
    // kStormLimitMs, and the normal task's lateness then shows the failure.
    const auto storm_start = test::Clock::now();
    auto storm_goes_on = [&] { return test::ms_since(storm_start) < kStormLimitMs; };
    auto ping_side = asyncio::create_task([&] {
      while (storm_goes_on()) {
        pair.wait_ping();
        test::spin_for(kWorkPerWake);
        if (!normal_done) ++result.storm_wakes;
        pair.set_pong();
      }
    });
    auto pong_side = asyncio::create_task([&] {
      while (storm_goes_on()) {
        pair.wait_pong();
        test::spin_for(kWorkPerWake);
        if (!normal_done) ++result.storm_wakes;
        pair.set_ping();
      }
    });
    asyncio::sleep_ms(0);  // the normal task sleeps; both sides of the storm wait
    pair.set_ping();
    normal.wait();
    ping_side.cancel();
    pong_side.cancel();
    asyncio::gather(asyncio::return_exceptions, ping_side, pong_side);
  });
  return result;
}

}  // namespace

TEST_CASE("the I/O priority bound defaults to the seed's 1000 ms and is configurable") {
  auto& loop = test::fresh_loop();
  CHECK(loop.io_priority_bound() == 1'000'000);
  loop.set_io_priority_bound(50'000);
  CHECK(loop.io_priority_bound() == 50'000);
  CHECK(test::fresh_loop().io_priority_bound() == 1'000'000);
}

TEST_CASE("fast I/O: a ThreadSafeFlag storm delays a normal task by the bound, not forever") {
  const auto result = run_storm<FlagPair>(true, 50'000);
  // Due at 10 ms, the normal task runs once it has been due for longer than the bound: at 60 ms,
  // after 60 storm wake-ups of 1 ms each.
  CHECK(result.lateness_ms == 50.0);
  CHECK(result.storm_wakes == 60);
}

TEST_CASE("fast I/O: a pipe storm delays a normal task by the bound, not forever" * doctest::test_suite("os")) {
  const auto result = run_storm<PipePair>(true, 50'000);
  INFO("lateness " << result.lateness_ms << " ms, storm wakes " << result.storm_wakes);
  CHECK(result.lateness_ms >= 40.0);
  CHECK(result.lateness_ms < kStormLimitMs / 2);  // a storm that starved it would reach the limit
  CHECK(result.storm_wakes >= 5);  // a storm did run (few wakes if the machine is loaded)
}

TEST_CASE("fast I/O: the default bound lets a storm delay a normal task by about 1000 ms") {
  const auto result = run_storm<FlagPair>(true, kDefaultBound);
  CHECK(result.lateness_ms == 1000.0);
  CHECK(result.storm_wakes == 1010);
}

TEST_CASE("round-robin: an I/O storm does not delay a normal task by the bound") {
  // Same storm with a 300 ms bound: in round-robin the normal task runs within a few work steps.
  const auto result = run_storm<FlagPair>(false, 300'000);
  CHECK(result.lateness_ms == 0.0);  // it runs at the switch at which its timer fell due
  CHECK(result.storm_wakes == 10);
}

TEST_CASE("fast I/O: a zero bound makes I/O-woken tasks queue like any task due now") {
  // With bound 0 an I/O-woken task is keyed "due now", behind every task already due.
  const auto result = run_storm<FlagPair>(true, 0);
  CHECK(result.lateness_ms == 0.0);
  CHECK(result.storm_wakes == 10);
}
