// The event loop API (docs/semantics.md#functions): run, run_until_complete, run_forever/stop, close,
// get_event_loop/new_event_loop, current_task, and the errors of misuse (docs/semantics.md#errors).
#include <chrono>
#include <cstring>
#include <thread>

#include "test_support.hpp"

using test::Log;

TEST_CASE("run returns the main task's value") {
  test::fresh_loop();
  CHECK(asyncio::run([] { return 42; }) == 42);
  CHECK(asyncio::run([](int a, int b) { return a * b; }, 6, 7) == 42);
  CHECK(asyncio::run([] {
          asyncio::sleep_ms(1);
          return std::string("done");
        }) == "done");
}

TEST_CASE("run can be called again on the same loop") {
  test::fresh_loop();
  for (int i = 0; i < 3; ++i) {
    CHECK(asyncio::run([i] {
            asyncio::sleep_ms(1);
            return i;
          }) == i);
  }
}

TEST_CASE("run_until_complete runs a task created before the loop started") {
  test::fresh_loop();
  Log log;
  auto helper = asyncio::create_task([&] {
    asyncio::sleep_ms(1);
    log.push_back("helper");
  });
  auto task = asyncio::create_task([&] {
    asyncio::sleep_ms(5);
    log.push_back("task");
    return 8;
  });
  CHECK(asyncio::run_until_complete(task) == 8);
  CHECK(task.done());
  CHECK(helper.done());
  CHECK(log == Log{"helper", "task"});
}

TEST_CASE("run_until_complete rethrows the task's exception") {
  test::fresh_loop();
  auto task = asyncio::create_task([]() -> int { throw asyncio::ValueError("bad"); });
  CHECK_THROWS_WITH_AS(asyncio::run_until_complete(task), "bad", asyncio::ValueError);
}

TEST_CASE("run_forever runs until stop() and can be resumed") {
  auto& loop = test::fresh_loop();
  int ticks = 0;
  auto ticker = asyncio::create_task([&] {
    for (;;) {
      ++ticks;
      if (ticks % 5 == 0) asyncio::get_event_loop().stop();
      asyncio::sleep_ms(1);
    }
  });
  loop.run_forever();
  CHECK(ticks == 5);
  CHECK_FALSE(loop.is_running());
  loop.run_forever();
  CHECK(ticks == 10);
  loop.close();
  CHECK(ticker.done());
  CHECK(ticker.cancelled());
}

TEST_CASE("stop() takes effect at the next task switch") {
  auto& loop = test::fresh_loop();
  Log log;
  auto task = asyncio::create_task([&] {
    log.push_back("A1");
    asyncio::get_event_loop().stop();
    log.push_back("A2");  // stop() does not interrupt the running task
    asyncio::sleep_ms(0);
    log.push_back("A3");
  });
  loop.run_forever();
  CHECK(log == Log{"A1", "A2"});
  loop.close();
  CHECK(task.cancelled());
  CHECK(log == Log{"A1", "A2"});
}

TEST_CASE("close cancels the remaining tasks and unwinds their stacks") {
  auto& loop = test::fresh_loop();
  int destroyed = 0;
  struct Guard {
    int* counter;
    ~Guard() { ++*counter; }
  };
  Log log;
  std::vector<asyncio::Task<void>> tasks;
  asyncio::run([&] {
    for (int i = 0; i < 3; ++i) {
      tasks.push_back(asyncio::create_task([&] {
        Guard guard{&destroyed};
        try {
          asyncio::sleep_ms(10'000);
        } catch (const asyncio::CancelledError&) {
          log.push_back("cancelled");
          throw;
        }
      }));
    }
    asyncio::sleep_ms(1);
  });
  CHECK(destroyed == 0);
  loop.close();
  CHECK(destroyed == 3);
  CHECK(log == Log{"cancelled", "cancelled", "cancelled"});
  for (auto& task : tasks) CHECK(task.cancelled());
  // The loop can be used again after close().
  CHECK(asyncio::run([] { return 1; }) == 1);
}

namespace {

/// Calls `nested` (a run-like call) inside the main task and checks that it raises RuntimeError
/// and leaves the running loop as it was: run() still returns when main is done, not when
/// some other task finishes, and not after every other task is done.
template <class F>
void check_nested_run_refused(F nested) {
  test::fresh_loop();
  Log log;
  const auto start = test::Clock::now();
  const int value = asyncio::run([&] {
    // Outlives main by far: run() must not wait for it.
    asyncio::create_task([] { asyncio::sleep_ms(1500); });
    auto bystander = asyncio::create_task([&] {
      asyncio::sleep_ms(1);
      log.push_back("bystander");
      return 4;
    });
    CHECK_THROWS_AS(nested(bystander), asyncio::RuntimeError);
    asyncio::sleep_ms(5);  // the bystander ends meanwhile: it must not be taken for main
    log.push_back("main");
    return 2;
  });
  CHECK(value == 2);
  CHECK(log == Log{"bystander", "main"});
  CHECK(test::ms_since(start) == 5.0);  // main's own sleep: run() did not wait for the 1.5 s task
  asyncio::get_event_loop().close();
}

}  // namespace

TEST_CASE("run() inside a task raises RuntimeError and leaves the loop intact") {
  // CPython: "asyncio.run() cannot be called from a running event loop".
  check_nested_run_refused([](const asyncio::Task<int>&) { asyncio::run([] { return 1; }); });
}

TEST_CASE("run_until_complete() inside a task raises RuntimeError and leaves the loop intact") {
  check_nested_run_refused(
      [](const asyncio::Task<int>& bystander) { asyncio::run_until_complete(bystander); });
}

TEST_CASE("run_forever() inside a task raises RuntimeError and leaves the loop intact") {
  check_nested_run_refused(
      [](const asyncio::Task<int>&) { asyncio::get_event_loop().run_forever(); });
}

TEST_CASE("new_event_loop() while the loop runs raises RuntimeError and the loop goes on") {
  auto& loop = test::fresh_loop();
  const int value = asyncio::run([&] {
    CHECK_THROWS_AS(asyncio::new_event_loop(), asyncio::RuntimeError);
    CHECK(&asyncio::get_event_loop() == &loop);
    asyncio::sleep_ms(1);
    return 3;
  });
  CHECK(value == 3);
}

TEST_CASE("is_running is true only while the loop runs") {
  auto& loop = test::fresh_loop();
  CHECK_FALSE(loop.is_running());
  asyncio::run([&] { CHECK(asyncio::get_event_loop().is_running()); });
  CHECK_FALSE(loop.is_running());
}

TEST_CASE("a Loop& taken before new_event_loop() stays valid and names the new loop") {
  auto& first = asyncio::new_event_loop();
  first.roundrobin(false);
  int handled = 0;
  first.set_exception_handler([&handled](asyncio::Loop&, const asyncio::ExceptionContext&) { ++handled; });
  auto& second = asyncio::new_event_loop();
  CHECK(&first == &second);
  CHECK(first.roundrobin());  // the new loop's state, through the old reference
  // As MicroPython's, whose handler belongs to the Loop class: the handler is kept.
  REQUIRE(first.get_exception_handler());
  first.call_exception_handler({"kept", nullptr, ""});
  CHECK(handled == 1);
  first.set_exception_handler(nullptr);
  CHECK(asyncio::run([&] { return &asyncio::get_event_loop() == &first ? 1 : 0; }) == 1);
}

TEST_CASE("current_task() outside a task raises RuntimeError(\"no running event loop\")") {
  test::fresh_loop();
  try {
    asyncio::current_task();
    FAIL("current_task() did not throw");
  } catch (const asyncio::RuntimeError& e) {
    CHECK(std::string(e.what()) == "no running event loop");
  }
}

TEST_CASE("new_event_loop replaces the thread's loop with a fresh one") {
  auto& first = asyncio::new_event_loop();
  CHECK(&asyncio::get_event_loop() == &first);
  first.roundrobin(false);
  first.set_io_priority_bound(123);
  auto& second = asyncio::new_event_loop();
  CHECK(&asyncio::get_event_loop() == &second);
  CHECK(second.roundrobin());
  CHECK(second.io_priority_bound() == 1'000'000);
  CHECK(asyncio::run([] { return 5; }) == 5);
}

TEST_CASE("replacing a loop that still has suspended tasks is safe") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::create_task([] { asyncio::sleep_ms(10'000); });
    asyncio::create_task([] {
      asyncio::Event local;
      local.wait();
    });
    asyncio::sleep_ms(1);
  });
  test::fresh_loop();
  CHECK(asyncio::run([] { return 2; }) == 2);
}

TEST_CASE("each thread has its own loop" * doctest::test_suite("os")) {
  test::fresh_loop();
  int other_result = 0;
  asyncio::Loop* other_loop = nullptr;
  std::thread other([&] {
    other_loop = &asyncio::get_event_loop();
    other_result = asyncio::run([] {
      int sum = 0;
      for (int i = 0; i < 20; ++i) {
        asyncio::sleep_ms(1);
        sum += i;
      }
      return sum;
    });
  });
  const int result = asyncio::run([] {
    int sum = 0;
    for (int i = 0; i < 20; ++i) {
      asyncio::sleep_ms(1);
      sum += 2 * i;
    }
    return sum;
  });
  other.join();
  CHECK(result == 380);
  CHECK(other_result == 190);
  CHECK(other_loop != &asyncio::get_event_loop());
}

TEST_CASE("current_task is the running task") {
  test::fresh_loop();
  asyncio::run([] {
    CHECK(asyncio::current_task().name() == "main");
    asyncio::TaskBase seen;
    auto task = asyncio::create_task(asyncio::TaskOptions{"worker"}, [&] {
      seen = asyncio::current_task();
      asyncio::sleep_ms(0);
      CHECK(asyncio::current_task() == seen);
    });
    task.wait();
    CHECK(seen == task);
    CHECK(seen.name() == "worker");
  });
}

TEST_CASE("current_task outside a task raises RuntimeError") {
  test::fresh_loop();
  CHECK_THROWS_AS(asyncio::current_task(), asyncio::RuntimeError);
}

TEST_CASE("tasks without a name get distinct default names; set_name renames") {
  test::fresh_loop();
  asyncio::run([] {
    auto a = asyncio::create_task([] {});
    auto b = asyncio::create_task([] {});
    CHECK_FALSE(a.name().empty());
    CHECK(a.name() != b.name());
    a.set_name("renamed");
    CHECK(a.name() == "renamed");
    asyncio::gather(a, b);
  });
}

TEST_CASE("a task awaiting itself gets RuntimeError and can go on") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([] {
      try {
        asyncio::current_task().wait();
      } catch (const asyncio::RuntimeError&) {
        return 1;
      }
      return 0;
    });
    CHECK(asyncio::await(task) == 1);

    asyncio::Task<int> self;
    self = asyncio::create_task([&] {
      asyncio::sleep_ms(0);
      return asyncio::await(self);
    });
    CHECK_THROWS_AS(asyncio::await(self), asyncio::RuntimeError);
  });
}

TEST_CASE("a deadlock on an Event nobody sets makes run() raise RuntimeError") {
  test::fresh_loop();
  const auto start = test::Clock::now();
  CHECK_THROWS_AS(asyncio::run([] {
                    asyncio::Event never;
                    never.wait();
                  }),
                  asyncio::RuntimeError);
  CHECK(test::ms_since(start) == 0.0);  // no timer pending: found at once, not after a wait
}

TEST_CASE("a deadlock among several tasks makes run() raise RuntimeError") {
  test::fresh_loop();
  CHECK_THROWS_AS(asyncio::run([] {
                    asyncio::Event never;
                    asyncio::Lock lock;
                    lock.acquire();
                    auto blocked = asyncio::create_task([&] { lock.acquire(); });
                    auto waiting = asyncio::create_task([&] { never.wait(); });
                    asyncio::sleep_ms(5);  // timers pending: not a deadlock yet
                    asyncio::gather(blocked, waiting);
                  }),
                  asyncio::RuntimeError);
  // The loop survives the error.
  CHECK(asyncio::run([] { return 6; }) == 6);
}

TEST_CASE("run returns when main is done even if other tasks wait forever") {
  test::fresh_loop();
  asyncio::Event never;
  const int value = asyncio::run([&] {
    asyncio::create_task([&] { never.wait(); });
    asyncio::sleep_ms(1);
    return 7;
  });
  CHECK(value == 7);
  asyncio::get_event_loop().close();
}

TEST_CASE("power_mode(true) either takes effect or raises ValueError") {
  test::fresh_loop();
  CHECK_FALSE(asyncio::power_mode());
  try {
    asyncio::power_mode(true);
    CHECK(asyncio::power_mode());
    CHECK(asyncio::run([] {
            asyncio::sleep_ms(5);
            return 1;
          }) == 1);
    asyncio::power_mode(false);
    CHECK_FALSE(asyncio::power_mode());
  } catch (const asyncio::ValueError&) {
    CHECK_FALSE(asyncio::power_mode());
  }
}

TEST_CASE("the loop clock advances across a sleep") {
  auto& loop = test::fresh_loop();
  asyncio::run([&] {
    const asyncio::Micros before = loop.time();
    asyncio::sleep_ms(10);
    CHECK(loop.time() - before == 10'000);
  });
}

TEST_CASE("a task can ask for a large stack and use it") {
  test::fresh_loop();
  const int result = asyncio::run([] {
    auto deep = asyncio::create_task(asyncio::TaskOptions{"deep", 1024 * 1024}, [] {
      // 512 KiB of locals, touched; the volatile pointer keeps the compiler from eliding them.
      char buffer[512 * 1024];
      std::memset(buffer, 1, sizeof buffer);
      char* volatile escape = buffer;
      asyncio::sleep_ms(0);
      return static_cast<int>(escape[sizeof buffer - 1]);
    });
    return asyncio::await(deep);
  });
  CHECK(result == 1);
}

TEST_CASE("ten thousand short tasks run to completion") {
  // ThreadSanitizer makes each fiber cost about a millisecond: fewer batches there.
  const int batches = ASYNCIO_TEST_SANITIZED ? 2 : 10;
  test::fresh_loop();
  long total = 0;
  asyncio::run([&] {
    for (int batch = 0; batch < batches; ++batch) {
      std::vector<asyncio::Task<int>> tasks;
      for (int i = 0; i < 1000; ++i) {
        tasks.push_back(asyncio::create_task([i] {
          asyncio::sleep_ms(0);
          return i;
        }));
      }
      for (int value : asyncio::gather(tasks)) total += value;
    }
  });
  CHECK(total == batches * (999L * 1000 / 2));
}

TEST_CASE("the loop's duration settings take std::chrono durations, rounded up to 1 us") {
  using namespace std::chrono_literals;
  asyncio::Loop& loop = test::fresh_loop();
  loop.set_timer_resolution(1us);
  CHECK(loop.timer_resolution() == 1);
  loop.set_timer_resolution(2ms);
  CHECK(loop.timer_resolution() == 2000);
  loop.set_io_priority_bound(std::chrono::duration<double>(0.5));
  CHECK(loop.io_priority_bound() == 500'000);
  loop.set_busy_poll(1500ns, asyncio::BusyPoll::kAdaptive);
  CHECK(loop.busy_poll() == 2);
  CHECK(loop.busy_poll_mode() == asyncio::BusyPoll::kAdaptive);
  CHECK_THROWS_AS(loop.set_busy_poll(2s), asyncio::ValueError);
}
