// Run order (docs/semantics.md#run-order): ready tasks run by (due time, arrival order); sleep_ms(0) goes behind
// every task already due; a sleep never ends early; a negative sleep counts as 0.
#include <random>

#include "test_support.hpp"

using namespace std::chrono_literals;
using test::Log;

TEST_CASE("tasks created together start in creation order") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < 5; ++i) {
      tasks.push_back(asyncio::create_task([&log, i] { log.push_back(test::label("T", i)); }));
    }
    for (auto& task : tasks) task.wait();
  });
  CHECK(log == Log{"T0", "T1", "T2", "T3", "T4"});
}

TEST_CASE("tasks yielding with sleep_ms(0) take turns in FIFO order") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < 3; ++i) {
      tasks.push_back(asyncio::create_task([&log, i] {
        for (int round = 0; round < 3; ++round) {
          log.push_back(test::label("", i, round));
          asyncio::sleep_ms(0);
        }
      }));
    }
    for (auto& task : tasks) task.wait();
  });
  CHECK(log == Log{"0.0", "1.0", "2.0", "0.1", "1.1", "2.1", "0.2", "1.2", "2.2"});
}

TEST_CASE("sleep_ms(0) moves the caller behind every task already due") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto a = asyncio::create_task([&] {
      log.push_back("A1");
      asyncio::sleep_ms(0);
      log.push_back("A2");
    });
    auto b = asyncio::create_task([&] { log.push_back("B"); });
    asyncio::sleep_ms(0);
    log.push_back("main");
    a.wait();
    b.wait();
  });
  // A and B were due before main yielded; A's second step was queued after main's.
  CHECK(log == Log{"A1", "B", "main", "A2"});
}

TEST_CASE("a negative sleep behaves as sleep_ms(0)") {
  auto run_with = [](auto sleep_negative) {
    test::fresh_loop();
    Log log;
    asyncio::run([&] {
      auto a = asyncio::create_task([&] { log.push_back("A"); });
      auto b = asyncio::create_task([&] { log.push_back("B"); });
      const auto start = test::now();
      sleep_negative();
      log.push_back("main");
      CHECK(test::now() == start);  // a yield takes no time
      a.wait();
      b.wait();
    });
    return log;
  };
  const Log expected{"A", "B", "main"};
  CHECK(run_with([] { asyncio::sleep_ms(-5); }) == expected);
  CHECK(run_with([] { asyncio::sleep_us(-1); }) == expected);
  CHECK(run_with([] { asyncio::sleep(-1.0); }) == expected);
  CHECK(run_with([] { asyncio::sleep(-3ms); }) == expected);
}

TEST_CASE("sleeps end in order of their due times, whatever the creation order") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < 4; ++i) {
      tasks.push_back(asyncio::create_task([&log, i] {
        asyncio::sleep_ms((4 - i) * 15);
        CHECK(test::now() == (4 - i) * 15ms);
        log.push_back(test::label("T", i));
      }));
    }
    for (auto& task : tasks) task.wait();
  });
  CHECK(log == Log{"T3", "T2", "T1", "T0"});
}

TEST_CASE("tasks sleeping the same duration from the same point wake in arrival order") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < 20; ++i) {
      tasks.push_back(asyncio::create_task([&log, i] {
        asyncio::sleep_ms(10);
        CHECK(test::now() == 10ms);
        log.push_back(std::to_string(i));
      }));
    }
    for (auto& task : tasks) task.wait();
  });
  Log expected;
  for (int i = 0; i < 20; ++i) expected.push_back(std::to_string(i));
  CHECK(log == expected);
}

TEST_CASE("sleep wakes exactly on time, in every unit") {
  test::fresh_loop();
  asyncio::run([] {
    auto start = test::Clock::now();
    asyncio::sleep_ms(20);
    CHECK(test::ms_since(start) == 20.0);

    start = test::Clock::now();
    asyncio::sleep_us(20'000);
    CHECK(test::ms_since(start) == 20.0);

    start = test::Clock::now();
    asyncio::sleep(0.02);
    CHECK(test::ms_since(start) == 20.0);

    start = test::Clock::now();
    asyncio::sleep(20ms);
    CHECK(test::ms_since(start) == 20.0);

    start = test::Clock::now();
    asyncio::sleep(std::chrono::duration<double>(0.02));
    CHECK(test::ms_since(start) == 20.0);
  });
}

TEST_CASE("sleep never wakes early even after the task blocked the loop") {
  // The loop may cache its clock between switches. A task that computed work for a while and
  // then sleeps must still be due at (real now + t), not (stale now + t).
  test::fresh_loop();
  asyncio::run([] {
    for (int i = 0; i < 5; ++i) {
      test::spin_for(5ms);
      const auto start = test::Clock::now();
      asyncio::sleep_ms(10);
      CHECK(test::ms_since(start) == 10.0);
      CHECK(test::now() == (i + 1) * 15ms);
    }
  });
}

TEST_CASE("many concurrent sleepers each sleep exactly what they asked for") {
  test::fresh_loop();
  std::vector<double> errors_ms;  // slept minus asked, for each sleep that was not exact
  asyncio::run([&] {
    std::mt19937 random(42);
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < 50; ++i) {
      const int ms = std::uniform_int_distribution<int>(1, 30)(random);
      tasks.push_back(asyncio::create_task([&errors_ms, ms] {
        for (int round = 0; round < 3; ++round) {
          const auto start = test::Clock::now();
          asyncio::sleep_ms(ms);
          const double slept = test::ms_since(start);
          if (slept != ms) errors_ms.push_back(slept - ms);
        }
      }));
    }
    for (auto& task : tasks) task.wait();
  });
  INFO("errors (ms): " << [&] {
    std::ostringstream text;
    for (double error : errors_ms) text << error << ' ';
    return text.str();
  }());
  CHECK(errors_ms.empty());
}

TEST_CASE("a sleep does not end before a longer computation lets the loop switch") {
  // A sleeper becomes due while another task blocks; it runs at the next switch, not before.
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto sleeper = asyncio::create_task([&] {
      asyncio::sleep_ms(5);
      CHECK(test::now() == 20ms);  // due at 5 ms, it runs at the first switch: late
      log.push_back("sleeper");
    });
    asyncio::sleep_ms(0);  // let the sleeper start its sleep
    log.push_back("blocking");
    test::spin_for(20ms);
    log.push_back("blocked");
    sleeper.wait();
  });
  CHECK(log == Log{"blocking", "blocked", "sleeper"});
}

TEST_CASE("a timer that expired while a task blocked runs before that task's sleep_ms(0)") {
  // The sleeper has been due since t+5 ms; main's sleep_ms(0) at t+20 ms queues main at t+20 ms,
  // behind it (docs/semantics.md#run-order: "behind every task already due").
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto sleeper = asyncio::create_task([&] {
      asyncio::sleep_ms(5);
      log.push_back("sleeper");
    });
    asyncio::sleep_ms(0);
    test::spin_for(20ms);
    asyncio::sleep_ms(0);
    log.push_back("main");
    sleeper.wait();
  });
  CHECK(log == Log{"sleeper", "main"});
}

TEST_CASE("a timer that expired while a task blocked runs before a task created afterwards") {
  // Same rule for a new task: it is due when it is created (t+20 ms), after the sleeper (t+5 ms),
  // as in MicroPython where create_task pushes the task keyed by the current time.
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto sleeper = asyncio::create_task([&] {
      asyncio::sleep_ms(5);
      log.push_back("sleeper");
    });
    asyncio::sleep_ms(0);
    test::spin_for(20ms);
    auto late = asyncio::create_task([&] { log.push_back("created late"); });
    asyncio::sleep_ms(0);
    log.push_back("main");
    sleeper.wait();
    late.wait();
  });
  CHECK(log == Log{"sleeper", "created late", "main"});
}

TEST_CASE("a task that sleeps longer lets shorter sleepers and yielding tasks interleave") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto slow = asyncio::create_task([&] {
      asyncio::sleep_ms(40);
      log.push_back("slow");
    });
    auto fast = asyncio::create_task([&] {
      asyncio::sleep_ms(10);
      log.push_back("fast");
    });
    auto yielder = asyncio::create_task([&] {
      asyncio::sleep_ms(0);
      log.push_back("yielder");
    });
    slow.wait();
    fast.wait();
    yielder.wait();
  });
  CHECK(log == Log{"yielder", "fast", "slow"});
}
