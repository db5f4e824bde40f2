// wait_for / wait_for_ms (docs/semantics.md#functions), following MicroPython's tests/extmod/asyncio_wait_for.py:
// on timeout the task is cancelled, waited for, and TimeoutError is raised.
#include "test_support.hpp"

using namespace std::chrono_literals;
using test::Log;

namespace {

int doubling_task(Log& log, int id, int ms) {
  log.push_back(test::label("task start ", id));
  asyncio::sleep_ms(ms);
  log.push_back(test::label("task end ", id));
  return id * 2;
}

/// Ignores one cancellation, then finishes normally.
void catching_task(Log& log) {
  log.push_back("task_catch start");
  try {
    asyncio::sleep_ms(200);
  } catch (const asyncio::CancelledError&) {
    log.push_back("ignore cancel");
  }
  log.push_back("task_catch done");
}

}  // namespace

TEST_CASE("wait_for returns the value of a task that finishes in time") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto task = asyncio::create_task(doubling_task, std::ref(log), 1, 10);
    CHECK(asyncio::wait_for_ms(task, 10'000) == 2);
    CHECK(task.done());
    CHECK_FALSE(task.cancelled());
  });
  CHECK(log == Log{"task start 1", "task end 1"});
}

TEST_CASE("wait_for returns as soon as the task is done, not at the timeout") {
  test::fresh_loop();
  asyncio::run([] {
    const auto start = test::Clock::now();
    auto task = asyncio::create_task([] {
      asyncio::sleep_ms(10);
      return 5;
    });
    CHECK(asyncio::wait_for(task, 5.0) == 5);
    CHECK(test::ms_since(start) == 10.0);
  });
}

TEST_CASE("on timeout wait_for cancels the task and raises TimeoutError") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto task = asyncio::create_task(doubling_task, std::ref(log), 2, 10'000);
    const auto start = test::Clock::now();
    CHECK_THROWS_AS(asyncio::wait_for_ms(task, 10), asyncio::TimeoutError);
    const double waited = test::ms_since(start);
    CHECK(waited == 10.0);
    // The task was cancelled and waited for before TimeoutError was raised.
    CHECK(task.done());
    CHECK(task.cancelled());
  });
  CHECK(log == Log{"task start 2"});
}

TEST_CASE("TimeoutError is a std::exception, unlike CancelledError") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([] { asyncio::sleep_ms(10'000); });
    bool caught = false;
    try {
      asyncio::wait_for_ms(task, 5);
    } catch (const std::exception&) {
      caught = true;
    }
    CHECK(caught);
  });
}

TEST_CASE("on timeout wait_for waits for a task that ignores the cancellation") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto task = asyncio::create_task(catching_task, std::ref(log));
    try {
      asyncio::wait_for_ms(task, 100);
      log.push_back("no timeout");
    } catch (const asyncio::TimeoutError&) {
      log.push_back("TimeoutError");
    }
    CHECK(task.done());
    CHECK_FALSE(task.cancelled());
  });
  CHECK(log == Log{"task_catch start", "ignore cancel", "task_catch done", "TimeoutError"});
}

TEST_CASE("wait_for raises the task's exception") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([]() -> int { throw asyncio::ValueError("raised"); });
    CHECK_THROWS_WITH_AS(asyncio::wait_for_ms(task, 1000), "raised", asyncio::ValueError);
  });
}

TEST_CASE("wait_for raises the exception of a task that fails after a while") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([]() -> int {
      asyncio::sleep_ms(10);
      throw asyncio::ValueError("later");
    });
    CHECK_THROWS_WITH_AS(asyncio::wait_for(task, 1s), "later", asyncio::ValueError);
  });
}

TEST_CASE("a negative timeout waits without limit") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto task = asyncio::create_task(doubling_task, std::ref(log), 3, 100);
    CHECK(asyncio::wait_for_ms(task, -1) == 6);
    auto second = asyncio::create_task(doubling_task, std::ref(log), 4, 20);
    CHECK(asyncio::wait_for(second, -1.0) == 8);
  });
  CHECK(log == Log{"task start 3", "task end 3", "task start 4", "task end 4"});
}

TEST_CASE("wait_for raises CancelledError when another task cancels the awaited task") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto task = asyncio::create_task(doubling_task, std::ref(log), 4, 10'000);
    auto canceller = asyncio::create_task([&] {
      asyncio::sleep_ms(10);
      task.cancel();
    });
    CHECK_THROWS_AS(asyncio::wait_for_ms(task, 1000), asyncio::CancelledError);
    canceller.wait();
    CHECK(task.cancelled());
  });
}

TEST_CASE("cancelling a task in wait_for cancels the awaited task") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Task<int> inner;
    auto outer = asyncio::create_task([&] {
      inner = asyncio::create_task(doubling_task, std::ref(log), 4, 1000);
      try {
        return asyncio::wait_for_ms(inner, 2000);
      } catch (const asyncio::CancelledError&) {
        log.push_back("task_wait_for_cancel cancelled");
        throw;
      }
    });
    asyncio::sleep_ms(10);
    outer.cancel();
    asyncio::sleep_ms(10);
    CHECK(outer.cancelled());
    CHECK(inner.cancelled());
  });
  CHECK(log == Log{"task start 4", "task_wait_for_cancel cancelled"});
}

TEST_CASE("cancelling a wait_for whose task ignores the cancellation") {
  // MicroPython: the waiter's CancelledError is raised at once; the task goes on and finishes.
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Task<void> inner;
    auto outer = asyncio::create_task([&] {
      inner = asyncio::create_task(catching_task, std::ref(log));
      try {
        asyncio::wait_for_ms(inner, 2000);
      } catch (const asyncio::CancelledError&) {
        log.push_back("task_wait_for_cancel_ignore cancelled");
        throw;
      }
    });
    asyncio::sleep_ms(10);
    outer.cancel();
    CHECK_THROWS_AS(outer.wait(), asyncio::CancelledError);
    asyncio::sleep_ms(10);
    CHECK(inner.done());
    CHECK_FALSE(inner.cancelled());
  });
  CHECK(test::index_of(log, "task_wait_for_cancel_ignore cancelled") >= 0);
  CHECK(test::index_of(log, "ignore cancel") >= 0);
  CHECK(test::index_of(log, "task_catch done") >= 0);
}

TEST_CASE("cancelling a wait_for just as its task finishes still raises CancelledError") {
  // MicroPython's last case: the wait_for task is cancelled 1, 2, 3… switches after it started
  // waiting on a zero-sleep task. While it is suspended, even when the awaited task has just
  // finished and woken it, the cancellation must surface; once it has returned, cancel() is
  // false. How many switches that takes is the implementation's, so count them instead.
  bool cancelled_after_inner_finished = false;
  for (int yields = 1;; ++yields) {
    CAPTURE(yields);
    REQUIRE(yields < 20);
    test::fresh_loop();
    Log log;
    bool outer_returned = false;
    asyncio::run([&] {
      asyncio::Task<int> inner;
      auto outer = asyncio::create_task([&] {
        inner = asyncio::create_task(doubling_task, std::ref(log), 4 + yields, 0);
        return asyncio::wait_for_ms(inner, 2000);
      });
      for (int i = 0; i < yields; ++i) asyncio::sleep_ms(0);
      if (outer.done()) {
        CHECK_FALSE(outer.cancel());
        CHECK(asyncio::await(outer) == 2 * (4 + yields));
        outer_returned = true;
        return;
      }
      if (inner && inner.done()) cancelled_after_inner_finished = true;
      CHECK(outer.cancel());
      CHECK_THROWS_AS(asyncio::await(outer), asyncio::CancelledError);
    });
    if (outer_returned) break;
  }
  // The interesting race was exercised: the awaited task was done, its waiter not yet resumed.
  CHECK(cancelled_after_inner_finished);
}

TEST_CASE("wait_for accepts a callable, a duration and seconds") {
  test::fresh_loop();
  asyncio::run([] {
    CHECK(asyncio::wait_for_ms(
              [] {
                asyncio::sleep_ms(1);
                return 11;
              },
              1000) == 11);
    CHECK_THROWS_AS(asyncio::wait_for_ms([] { asyncio::sleep_ms(10'000); }, 5),
                    asyncio::TimeoutError);
    auto task = asyncio::create_task([] {
      asyncio::sleep_ms(1);
      return 12;
    });
    CHECK(asyncio::wait_for(task, 500ms) == 12);
    auto slow = asyncio::create_task([] { asyncio::sleep_ms(10'000); });
    CHECK_THROWS_AS(asyncio::wait_for(slow, 0.005), asyncio::TimeoutError);
    CHECK(slow.cancelled());
  });
}

TEST_CASE("a zero timeout times out a task that needs to wait") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([] {
      asyncio::sleep_ms(50);
      return 1;
    });
    CHECK_THROWS_AS(asyncio::wait_for_ms(task, 0), asyncio::TimeoutError);
    CHECK(task.cancelled());
  });
}

TEST_CASE("wait_for on an already finished task returns its value") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([] { return 21; });
    asyncio::sleep_ms(1);
    REQUIRE(task.done());
    CHECK(asyncio::wait_for_ms(task, 100) == 21);
  });
}

TEST_CASE("wait_for takes a callable with seconds or a std::chrono timeout") {
  test::fresh_loop();
  asyncio::run([] {
    CHECK(asyncio::wait_for([] { return 3; }, 1.0) == 3);
    CHECK(asyncio::wait_for([] { return 4; }, std::chrono::seconds(1)) == 4);
    CHECK_THROWS_AS(asyncio::wait_for([] { asyncio::sleep_ms(10'000); }, 0.001),
                    asyncio::TimeoutError);
  });
}
