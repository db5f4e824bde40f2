// gather (docs/semantics.md#functions), following MicroPython's tests/extmod/asyncio_gather.py case by case.
#include "test_support.hpp"

using test::Log;

namespace {

int factorial(Log& log, const std::string& name, int number) {
  int f = 1;
  for (int i = 2; i <= number; ++i) {
    log.push_back(name + test::label(":", i));
    asyncio::sleep(0.01);
    f *= i;
  }
  return f;
}

int sleeping_task(Log& log, int id, int ms = 100) {
  log.push_back(test::label("start ", id));
  asyncio::sleep_ms(ms);
  log.push_back(test::label("end ", id));
  return id;
}

int raising_task(int id, int ms = 100) {
  asyncio::sleep_ms(ms);
  throw asyncio::ValueError(std::to_string(id));
}

void looping_task(int& loops) {
  for (;;) {
    asyncio::sleep_ms(10);
    ++loops;
  }
}

}  // namespace

TEST_CASE("gather returns the values in argument order") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    // Created one by one: the evaluation order of function arguments is unspecified.
    auto a = asyncio::create_task(factorial, std::ref(log), "A", 2);
    auto b = asyncio::create_task(factorial, std::ref(log), "B", 3);
    auto c = asyncio::create_task(factorial, std::ref(log), "C", 4);
    CHECK(asyncio::gather(a, b, c) == std::tuple<int, int, int>{2, 6, 24});
  });
  // The three computations interleaved: each step sleeps 10 ms.
  CHECK(log == Log{"A:2", "B:2", "C:2", "B:3", "C:3", "C:4"});
}

TEST_CASE("gather of a vector returns a vector of values") {
  test::fresh_loop();
  asyncio::run([] {
    std::vector<asyncio::Task<int>> tasks;
    for (int i = 0; i < 5; ++i) {
      tasks.push_back(asyncio::create_task([i] {
        asyncio::sleep_ms(10 - 2 * i);
        return i * i;
      }));
    }
    CHECK(asyncio::gather(tasks) == std::vector<int>{0, 1, 4, 9, 16});
  });
}

TEST_CASE("gather of nothing returns at once") {
  test::fresh_loop();
  asyncio::run([] {
    CHECK(asyncio::gather(std::vector<asyncio::Task<int>>{}).empty());
    CHECK(asyncio::gather(asyncio::return_exceptions, std::vector<asyncio::Task<int>>{}).empty());
    [[maybe_unused]] auto none = asyncio::gather();
    CHECK(std::tuple_size_v<decltype(none)> == 0);
  });
}

TEST_CASE("gather of void tasks gives monostate values") {
  test::fresh_loop();
  int ran = 0;
  asyncio::run([&] {
    auto values = asyncio::gather(asyncio::create_task([&] { ++ran; }), asyncio::create_task([&] {
                                    asyncio::sleep_ms(1);
                                    ++ran;
                                  }));
    CHECK(std::tuple_size_v<decltype(values)> == 2);
  });
  CHECK(ran == 2);
}

TEST_CASE("return_exceptions: a cancelled task gives CancelledError, the other its value") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto first = asyncio::create_task(sleeping_task, std::ref(log), 1, 100);
    auto second = asyncio::create_task(sleeping_task, std::ref(log), 2, 100);
    first.cancel();
    auto [a, b] = asyncio::gather(asyncio::return_exceptions, first, second);
    CHECK_FALSE(a.ok());
    CHECK(test::holds<asyncio::CancelledError>(a.exception()));
    CHECK_THROWS_AS(a.value(), asyncio::CancelledError);
    REQUIRE(b.ok());
    CHECK(b.value() == 2);
  });
  CHECK(log == Log{"start 2", "end 2"});
}

TEST_CASE("return_exceptions: a failing task gives its exception, the other its value") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto good = asyncio::create_task(sleeping_task, std::ref(log), 1, 100);
    auto bad = asyncio::create_task(raising_task, 2, 100);
    auto [a, b] = asyncio::gather(asyncio::return_exceptions, good, bad);
    REQUIRE(a.ok());
    CHECK(a.value() == 1);
    CHECK_FALSE(b.ok());
    CHECK_THROWS_WITH_AS(b.value(), "2", asyncio::ValueError);
    // gather waited for both: nothing still runs.
    CHECK(good.done());
    CHECK(bad.done());
  });
}

TEST_CASE("return_exceptions over a vector keeps the order of the tasks") {
  test::fresh_loop();
  asyncio::run([] {
    std::vector<asyncio::Task<int>> tasks;
    for (int i = 0; i < 4; ++i) {
      tasks.push_back(asyncio::create_task([i]() -> int {
        asyncio::sleep_ms(8 - 2 * i);
        if (i % 2) throw asyncio::ValueError(std::to_string(i));
        return i;
      }));
    }
    auto outcomes = asyncio::gather(asyncio::return_exceptions, tasks);
    REQUIRE(outcomes.size() == 4);
    CHECK(outcomes[0].value() == 0);
    CHECK(test::holds<asyncio::ValueError>(outcomes[1].exception()));
    CHECK(outcomes[2].value() == 2);
    CHECK(test::holds<asyncio::ValueError>(outcomes[3].exception()));
  });
}

TEST_CASE("the first exception is raised at once while the other task keeps running") {
  test::fresh_loop();
  asyncio::run([] {
    int loops = 0;
    auto looping = asyncio::create_task(looping_task, std::ref(loops));
    auto raising = asyncio::create_task(raising_task, 2, 30);
    const auto start = test::Clock::now();
    CHECK_THROWS_WITH_AS(asyncio::gather(looping, raising), "2", asyncio::ValueError);
    CHECK(test::ms_since(start) == 30.0);  // when the raising task failed
    CHECK_FALSE(looping.done());
    CHECK(raising.done());
    // gather does not cancel the others on failure (MicroPython, CPython).
    const int loops_then = loops;
    asyncio::sleep_ms(50);
    // Rounds at 40, 50, 60 and 70 ms; the one due at 80 ms was queued after main's wake-up.
    CHECK(loops == loops_then + 4);
    looping.cancel();
    CHECK_THROWS_AS(looping.wait(), asyncio::CancelledError);
  });
}

TEST_CASE("when both tasks raise, gather raises the first one") {
  test::fresh_loop();
  asyncio::run([] {
    auto first = asyncio::create_task(raising_task, 1, 0);
    auto second = asyncio::create_task(raising_task, 2, 0);
    CHECK_THROWS_WITH_AS(asyncio::gather(first, second), "1", asyncio::ValueError);
    asyncio::sleep_ms(1);
    CHECK(first.done());
    CHECK(second.done());
    CHECK_THROWS_WITH_AS(second.wait(), "2", asyncio::ValueError);
  });
}

TEST_CASE("cancelling a task that is in gather cancels the gathered tasks") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Task<int> one, two;
    auto gatherer = asyncio::create_task([&] {
      log.push_back("gather_task");
      one = asyncio::create_task(sleeping_task, std::ref(log), 1, 100);
      two = asyncio::create_task(sleeping_task, std::ref(log), 2, 100);
      asyncio::gather(one, two);
      log.push_back("gather_task2");
    });
    asyncio::sleep_ms(50);
    CHECK(gatherer.cancel());
    asyncio::sleep_ms(200);
    CHECK(gatherer.cancelled());
    CHECK(one.cancelled());
    CHECK(two.cancelled());
  });
  CHECK(log == Log{"gather_task", "start 1", "start 2"});
}

TEST_CASE("cancelling a gather just as its tasks start or end leaves everything consistent") {
  // MicroPython's edge cases: the gatherer is cancelled after 1, 2 or 3 sleep(0)s, while its
  // zero-sleep tasks are being created, running or finishing.
  for (int yields = 1; yields <= 3; ++yields) {
    CAPTURE(yields);
    test::fresh_loop();
    Log log;
    asyncio::run([&] {
      asyncio::Task<int> one, two;
      auto gatherer = asyncio::create_task([&] {
        one = asyncio::create_task(sleeping_task, std::ref(log), 1, 0);
        two = asyncio::create_task(sleeping_task, std::ref(log), 2, 0);
        asyncio::gather(one, two);
        log.push_back("gathered");
      });
      for (int i = 0; i < yields; ++i) asyncio::sleep_ms(0);
      const bool cancelled = gatherer.cancel();
      asyncio::sleep_ms(50);
      REQUIRE(gatherer.done());
      CHECK(gatherer.cancelled() == cancelled);
      CHECK(one.done());
      CHECK(two.done());
      // A child either ran to completion or was cancelled; never left half-way.
      for (const auto* child : {&one, &two}) {
        CHECK((child->cancelled() || child->result() == (child == &one ? 1 : 2)));
      }
      CHECK((test::index_of(log, "gathered") >= 0) == !cancelled);
    });
  }
}

TEST_CASE("several tasks can gather at the same time") {
  test::fresh_loop();
  asyncio::run([] {
    auto make = [](int value, int ms) {
      return asyncio::create_task([value, ms] {
        asyncio::sleep_ms(ms);
        return value;
      });
    };
    auto left = asyncio::create_task([&] {
      auto [a, b] = asyncio::gather(make(1, 5), make(2, 1));
      return a + b;
    });
    auto right = asyncio::create_task([&] {
      auto [a, b] = asyncio::gather(make(10, 1), make(20, 5));
      return a + b;
    });
    auto [l, r] = asyncio::gather(left, right);
    CHECK(l == 3);
    CHECK(r == 30);
  });
}

TEST_CASE("gather of callables creates their tasks left to right, as Python's gather(a(), b())") {
  test::fresh_loop();
  test::Log log;
  auto step = [&log](std::string name) {
    return [&log, name] {
      log.push_back(name + " starts");
      asyncio::sleep_ms(0);
      log.push_back(name + " ends");
      return name.size();
    };
  };
  asyncio::run([&] {
    const auto [a, bb, ccc] = asyncio::gather(step("a"), step("bb"), step("ccc"));
    CHECK(a == 1);
    CHECK(bb == 2);
    CHECK(ccc == 3);
  });
  CHECK(log == test::Log{"a starts", "bb starts", "ccc starts", "a ends", "bb ends", "ccc ends"});
}

TEST_CASE("gather(return_exceptions, callables...) gives each callable's outcome") {
  test::fresh_loop();
  asyncio::run([] {
    const auto [fine, failed] = asyncio::gather(
        asyncio::return_exceptions, [] { return 1; },
        []() -> int { throw asyncio::ValueError("no"); });
    CHECK(fine.value() == 1);
    CHECK_FALSE(failed.ok());
  });
}
