// Pollable devices (docs/semantics.md#pollables): a user type answering a non-blocking poll(events), polled with
// the rest of the I/O at every task switch. A task woken by a pollable is I/O-woken (the seed's
// timer_test relies on it for its fast-I/O latency).
#include <sys/resource.h>

#include <optional>
#include <stdexcept>

#include "test_support.hpp"

using namespace std::chrono_literals;
using test::Log;

namespace {

/// The seed's MillisecTimer: readable once its deadline has passed.
class MillisecTimer final : public asyncio::Pollable {
 public:
  void start(int ms) { deadline_ = test::Clock::now() + std::chrono::milliseconds(ms); }
  unsigned poll(unsigned events) override {
    ++polls;
    if ((events & asyncio::POLL_RD) && test::Clock::now() >= deadline_) {
      if (!ready_seen) ready_seen = test::Clock::now();
      return asyncio::POLL_RD;
    }
    return 0;
  }
  long polls = 0;
  std::optional<test::Clock::time_point> ready_seen;  // when poll() first reported readiness

 private:
  test::Clock::time_point deadline_ = test::Clock::time_point::max();
};

/// Ready when a task says so; counts polls and remembers what was asked.
class Switch final : public asyncio::Pollable {
 public:
  unsigned poll(unsigned events) override {
    ++polls;
    last_events = events;
    if (fail_after_polls && polls >= *fail_after_polls) throw std::runtime_error("device failed");
    return on ? (events & ready_events) : 0;
  }
  bool on = false;
  unsigned ready_events = asyncio::POLL_RD;
  long polls = 0;
  unsigned last_events = 0;
  std::optional<long> fail_after_polls;
};

}  // namespace

TEST_CASE("a task waiting only on a pollable timer is woken when it expires") {
  test::fresh_loop();
  MillisecTimer timer;
  asyncio::run([&] {
    const auto start = test::Clock::now();
    timer.start(30);
    CHECK(asyncio::wait_pollable(timer, asyncio::POLL_RD) == asyncio::POLL_RD);
    CHECK(test::ms_since(start) == 30.0);
  });
}

TEST_CASE("a pollable is polled at every task switch") {
  test::fresh_loop();
  Switch device;
  constexpr int kSwitches = 300;
  asyncio::run([&] {
    auto waiter = asyncio::create_task([&] { asyncio::wait_pollable(device, asyncio::POLL_RD); });
    asyncio::sleep_ms(0);
    const long polls_before = device.polls;
    std::vector<asyncio::Task<void>> busy;
    for (int i = 0; i < 3; ++i) {
      busy.push_back(asyncio::create_task([] {
        for (int round = 0; round < kSwitches / 3; ++round) asyncio::sleep_ms(0);
      }));
    }
    for (auto& task : busy) task.wait();
    CHECK(device.polls - polls_before >= kSwitches);
    device.on = true;
    waiter.wait();
  });
}

TEST_CASE("poll receives the requested events and the waiter gets the ready ones") {
  test::fresh_loop();
  Switch device;
  device.on = true;
  device.ready_events = asyncio::POLL_WR;
  asyncio::run([&] {
    CHECK(asyncio::wait_pollable(device, asyncio::POLL_WR) == asyncio::POLL_WR);
    CHECK(device.last_events == asyncio::POLL_WR);
  });
}

TEST_CASE("fast I/O: a task woken by a pollable runs before the other pending tasks") {
  for (const bool fast_io : {true, false}) {
    CAPTURE(fast_io);
    test::fresh_loop();
    asyncio::roundrobin(!fast_io);
    Switch device;
    Log log;
    asyncio::run([&] {
      auto waiter = asyncio::create_task([&] {
        asyncio::wait_pollable(device, asyncio::POLL_RD);
        log.push_back("W");
      });
      asyncio::sleep_ms(0);
      std::vector<asyncio::Task<void>> pending;
      for (int i = 0; i < 4; ++i) {
        pending.push_back(asyncio::create_task([&log, &device, i] {
          for (int round = 0; round < 2; ++round) {
            log.push_back(test::label("P", i, round));
            if (i == 0 && round == 0) device.on = true;
            asyncio::sleep_ms(0);
          }
        }));
      }
      for (auto& task : pending) task.wait();
      waiter.wait();
    });
    if (fast_io) {
      CHECK(log == Log{"P0.0", "W", "P1.0", "P2.0", "P3.0", "P0.1", "P1.1", "P2.1", "P3.1"});
    } else {
      INFO("log: " << doctest::toString(log));
      CHECK(test::index_of(log, "W") > test::index_of(log, "P3.0"));
      CHECK(test::index_of(log, "W") < test::index_of(log, "P1.1"));
    }
  }
}

TEST_CASE("timer_test: with fast I/O no blocking step starts between readiness and the waiter") {
  // The seed's timer_test: ten tasks each block 5 ms then sleep_ms(0); one task waits on a
  // 100 ms MillisecTimer. Count the blocking steps that started after the timer first polled
  // ready and before its waiter ran: none in fast-I/O mode; in round-robin, every other task
  // goes first (the source of the seed's 155 ms).
  for (const bool fast_io : {true, false}) {
    CAPTURE(fast_io);
    test::fresh_loop();
    asyncio::roundrobin(!fast_io);
    MillisecTimer timer;
    std::vector<test::Clock::time_point> step_starts;
    test::Clock::time_point waiter_ran;
    double measured_ms = 0;
    asyncio::run([&] {
      bool stop = false;
      std::vector<asyncio::Task<void>> blockers;
      for (int i = 0; i < 10; ++i) {
        blockers.push_back(asyncio::create_task([&] {
          while (!stop) {
            step_starts.push_back(test::Clock::now());
            test::spin_for(5ms);
            asyncio::sleep_ms(0);
          }
        }));
      }
      asyncio::sleep_ms(0);
      const auto start = test::Clock::now();
      timer.start(100);
      asyncio::wait_pollable(timer, asyncio::POLL_RD);
      waiter_ran = test::Clock::now();
      measured_ms = test::ms_since(start);
      stop = true;
      for (auto& task : blockers) task.wait();
    });
    REQUIRE(timer.ready_seen);
    long steps_in_between = 0;
    for (const auto& t : step_starts) {
      if (t >= *timer.ready_seen && t < waiter_ran) ++steps_in_between;
    }
    INFO("measured " << measured_ms << " ms, steps in between " << steps_in_between);
    // The timer is ready at 100 ms, at the end of a 5 ms step.
    if (fast_io) {
      CHECK(measured_ms == 100.0);
      CHECK(steps_in_between == 0);
    } else {
      CHECK(measured_ms == 150.0);  // the ten blockers' steps first
      CHECK(steps_in_between == 10);
    }
  }
}

TEST_CASE("an exception thrown by poll reaches the waiter and the loop goes on") {
  test::fresh_loop();
  Switch device;
  device.fail_after_polls = 3;
  int ticks = 0;
  asyncio::run([&] {
    auto ticker = asyncio::create_task([&] {
      for (int i = 0; i < 10; ++i) {
        ++ticks;
        asyncio::sleep_ms(1);
      }
    });
    auto waiter = asyncio::create_task([&] { asyncio::wait_pollable(device, asyncio::POLL_RD); });
    CHECK_THROWS_WITH_AS(waiter.wait(), "device failed", std::runtime_error);
    const long polls_after_failure = device.polls;
    ticker.wait();
    // The failed wait was withdrawn: the device is not polled any more.
    CHECK(device.polls == polls_after_failure);
  });
  CHECK(ticks == 10);
}

TEST_CASE("cancelling a task waiting on a pollable stops polling the device") {
  test::fresh_loop();
  Switch device;
  asyncio::run([&] {
    auto waiter = asyncio::create_task([&] { asyncio::wait_pollable(device, asyncio::POLL_RD); });
    asyncio::sleep_ms(2);
    CHECK(device.polls > 0);
    CHECK(waiter.cancel());
    CHECK_THROWS_AS(waiter.wait(), asyncio::CancelledError);
    const long polls_after_cancel = device.polls;
    for (int i = 0; i < 20; ++i) asyncio::sleep_ms(0);
    asyncio::sleep_ms(5);
    CHECK(device.polls == polls_after_cancel);
  });
}

TEST_CASE("several tasks wait on several pollables and each wakes on its own") {
  test::fresh_loop();
  MillisecTimer timers[3];
  Log log;
  asyncio::run([&] {
    std::vector<asyncio::Task<void>> waiters;
    for (int i = 0; i < 3; ++i) {
      timers[i].start(300 - 100 * i);  // 100 ms apart: a slow (sanitized) loop keeps the order
      waiters.push_back(asyncio::create_task([&log, &timers, i] {
        asyncio::wait_pollable(timers[i], asyncio::POLL_RD);
        log.push_back(test::label("T", i));
      }));
    }
    for (auto& waiter : waiters) waiter.wait();
  });
  CHECK(log == Log{"T2", "T1", "T0"});
}

TEST_CASE("a pollable waiter coexists with timers and file descriptors" * doctest::test_suite("os")) {
  test::fresh_loop();
  MillisecTimer timer;
  test::Pipe pipe;
  Log log;
  asyncio::run([&] {
    auto device_waiter = asyncio::create_task([&] {
      asyncio::wait_pollable(timer, asyncio::POLL_RD);
      log.push_back("device");
    });
    auto pipe_waiter = asyncio::create_task([&] {
      asyncio::wait_readable(pipe.read_fd);
      log.push_back("pipe");
    });
    // Each event is caused by the one before, so a slow machine cannot reorder them; the
    // device fires while a descriptor wait and a timer (the sleep below) are pending.
    auto sleeper = asyncio::create_task([&] {
      asyncio::sleep_ms(5);
      log.push_back("sleep");
      timer.start(20);
      auto long_sleep = asyncio::create_task([] { asyncio::sleep_ms(60'000); });
      device_waiter.wait();
      pipe.write_byte();
      pipe_waiter.wait();
      long_sleep.cancel();
    });
    asyncio::gather(device_waiter, pipe_waiter, sleeper);
  });
  CHECK(log == Log{"sleep", "device", "pipe"});
}

TEST_CASE("a task waiting only on a pollable, with no timer pending, does not spin the loop" * doctest::test_suite("os")) {
  // Regression: the wait deadline came from a stale clock reading, so the loop polled in a
  // tight loop; a 200 ms wait burnt ~125 ms of CPU. Polling every 1 ms costs a few ms.
  test::fresh_loop();
  MillisecTimer timer;
  rusage before{}, after{};
  getrusage(RUSAGE_THREAD, &before);
  asyncio::run([&] {
    timer.start(200);
    asyncio::wait_pollable(timer, asyncio::POLL_RD);
  });
  getrusage(RUSAGE_THREAD, &after);
  const auto cpu_us = [](const rusage& usage) {
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1'000'000L + usage.ru_utime.tv_usec +
           usage.ru_stime.tv_usec;
  };
  const long used_us = cpu_us(after) - cpu_us(before);
  CAPTURE(used_us);
  CAPTURE(timer.polls);
  CHECK(timer.polls < 2'000);  // about one poll per Loop::kPollableIntervalUs, not millions
  // Generous: ~10 ms measured with the loop's set-up, the spin used ~125 ms. Sanitizers
  // multiply CPU time, so there only the poll count decides.
  if (!ASYNCIO_TEST_SANITIZED) CHECK(used_us < 60'000);
}
