// Cancellation (docs/semantics.md#tasks): cancel() makes CancelledError surface at the task's current
// suspension point, whatever kind it is; it returns false for a finished task; CancelledError
// is not a std::exception.
#include <mutex>
#include <type_traits>

#include "test_support.hpp"

using namespace std::chrono_literals;
using test::Log;

static_assert(!std::is_base_of_v<std::exception, asyncio::CancelledError>,
              "catch (const std::exception&) must not swallow a cancellation");

namespace {

/// Starts `wait` in a task, lets it reach its suspension point, cancels it and checks that the
/// cancellation surfaced there: the task ends cancelled, at once (on virtual time: no time
/// passes), and awaiting it rethrows.
template <class F>
void check_cancel_at(F wait) {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto task = asyncio::create_task([&] {
      log.push_back("waiting");
      try {
        wait();
        log.push_back("returned");
      } catch (const asyncio::CancelledError&) {
        log.push_back("cancelled");
        throw;
      }
    });
    asyncio::sleep_ms(5);
    CHECK_FALSE(task.done());
    const auto start = test::Clock::now();
    CHECK(task.cancel());
    CHECK_THROWS_AS(task.wait(), asyncio::CancelledError);
    if (test::on_virtual_time()) {
      CHECK(test::ms_since(start) == 0.0);
    } else {
      CHECK(test::ms_since(start) < 1000);  // the OS cases: a bound a loaded machine keeps
    }
    CHECK(task.done());
    CHECK(task.cancelled());
  });
  CHECK(log == Log{"waiting", "cancelled"});
}

}  // namespace

TEST_CASE("cancel a task in sleep") {
  check_cancel_at([] { asyncio::sleep_ms(10'000); });
}

TEST_CASE("cancel a task in sleep(0) loop") {
  check_cancel_at([] {
    for (;;) {
      test::spin_for(100us);  // work: on virtual time it is what moves the clock
      asyncio::sleep_ms(0);
    }
  });
}

TEST_CASE("cancel a task awaiting another task") {
  check_cancel_at([] {
    auto inner = asyncio::create_task([] { asyncio::sleep_ms(10'000); });
    inner.wait();
  });
}

TEST_CASE("cancel a task awaiting another forwards the cancellation, as MicroPython") {
  // MicroPython's Task.cancel (and CPython's) forwards to the task being awaited: both end.
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Task<void> inner;
    auto outer = asyncio::create_task([&] {
      inner = asyncio::create_task([] { asyncio::sleep_ms(10'000); });
      asyncio::await(inner);
    });
    asyncio::sleep_ms(5);
    CHECK(outer.cancel());
    CHECK_THROWS_AS(outer.wait(), asyncio::CancelledError);
    asyncio::sleep_ms(5);
    CHECK(inner.done());
    CHECK(inner.cancelled());
  });
}

TEST_CASE("cancel a task in Event.wait") {
  asyncio::Event event;
  check_cancel_at([&] { event.wait(); });
  CHECK_FALSE(event.is_set());
}

TEST_CASE("a cancelled Event waiter is not woken again by set") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Event event;
    auto cancelled = asyncio::create_task([&] {
      event.wait();
      log.push_back("cancelled waiter woke");
    });
    auto other = asyncio::create_task([&] {
      event.wait();
      log.push_back("other woke");
    });
    asyncio::sleep_ms(0);
    cancelled.cancel();
    asyncio::sleep_ms(0);
    event.set();
    other.wait();
    CHECK(cancelled.cancelled());
  });
  CHECK(log == Log{"other woke"});
}

TEST_CASE("cancel a task in Lock.acquire") {
  asyncio::Lock lock;
  lock.try_lock();
  check_cancel_at([&] { lock.acquire(); });
  // The lock is still held by its owner, and usable after the cancelled waiter left.
  CHECK(lock.locked());
  lock.release();
  CHECK_FALSE(lock.locked());
}

TEST_CASE("a lock handed over to a waiter cancelled before it ran goes to the next waiter") {
  // MicroPython's lock.py: a task cancelled after release() chose it must pass the lock on.
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Lock lock;
    lock.acquire();
    auto first = asyncio::create_task([&] {
      lock.acquire();
      log.push_back("first got the lock");
      lock.release();
    });
    auto second = asyncio::create_task([&] {
      lock.acquire();
      log.push_back("second got the lock");
      lock.release();
    });
    asyncio::sleep_ms(0);
    lock.release();  // hands the lock to `first`, which has not run yet
    first.cancel();  // ... and is cancelled before it does
    CHECK_THROWS_AS(first.wait(), asyncio::CancelledError);
    second.wait();
    CHECK_FALSE(lock.locked());
  });
  CHECK(log == Log{"second got the lock"});
}

TEST_CASE("cancel a task in ThreadSafeFlag.wait, then wait on the flag again") {
  asyncio::ThreadSafeFlag flag;
  check_cancel_at([&] { flag.wait(); });
  // The cancelled waiter has left: a new waiter is not a "second waiter", and a set wakes it.
  bool woke = false;
  asyncio::run([&] {
    auto waiter = asyncio::create_task([&] {
      flag.wait();
      woke = true;
    });
    asyncio::sleep_ms(0);
    flag.set();
    waiter.wait();
  });
  CHECK(woke);
}

TEST_CASE("cancel a task in wait_readable, then wait on the descriptor again" * doctest::test_suite("os")) {
  test::Pipe pipe;
  check_cancel_at([&] { asyncio::wait_readable(pipe.read_fd); });
  // The cancelled wait has been withdrawn from the backend: a new reader may wait.
  bool woke = false;
  asyncio::run([&] {
    auto reader = asyncio::create_task([&] {
      asyncio::wait_readable(pipe.read_fd);
      woke = pipe.drain() == 1;
    });
    asyncio::sleep_ms(5);
    pipe.write_byte();
    reader.wait();
  });
  CHECK(woke);
}

TEST_CASE("a cancelled reader does not consume a later readiness meant for another reader" * doctest::test_suite("os")) {
  test::fresh_loop();
  test::Pipe pipe;
  asyncio::run([&] {
    auto first = asyncio::create_task([&] { asyncio::wait_readable(pipe.read_fd); });
    asyncio::sleep_ms(5);
    first.cancel();
    CHECK_THROWS_AS(first.wait(), asyncio::CancelledError);
    pipe.write_byte();
    asyncio::sleep_ms(5);  // a stale registration would fire now, into a finished task
    auto second = asyncio::create_task([&] { return asyncio::wait_readable(pipe.read_fd); });
    CHECK((asyncio::await(second) & asyncio::POLL_RD) != 0);
  });
}

TEST_CASE("cancel a task in gather cancels the gathered tasks") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto a = asyncio::create_task([&] {
      asyncio::sleep_ms(10'000);
      log.push_back("a ended");
    });
    auto b = asyncio::create_task([&] {
      asyncio::sleep_ms(10'000);
      log.push_back("b ended");
    });
    auto gatherer = asyncio::create_task([&] { asyncio::gather(a, b); });
    asyncio::sleep_ms(5);
    CHECK(gatherer.cancel());
    CHECK_THROWS_AS(gatherer.wait(), asyncio::CancelledError);
    asyncio::sleep_ms(5);
    CHECK(a.cancelled());
    CHECK(b.cancelled());
  });
  CHECK(log.empty());
}

TEST_CASE("cancel a task in wait_for cancels the awaited task") {
  test::fresh_loop();
  asyncio::run([] {
    auto inner = asyncio::create_task([] {
      asyncio::sleep_ms(10'000);
      return 1;
    });
    auto outer = asyncio::create_task([&] { return asyncio::wait_for_ms(inner, 5'000); });
    asyncio::sleep_ms(5);
    CHECK(outer.cancel());
    CHECK_THROWS_AS(asyncio::await(outer), asyncio::CancelledError);
    asyncio::sleep_ms(5);
    CHECK(inner.cancelled());
  });
}

TEST_CASE("a task cancelled before it started never runs its body") {
  // As in MicroPython and CPython: the CancelledError is thrown at the start of the coroutine.
  test::fresh_loop();
  bool ran = false;
  asyncio::run([&] {
    auto task = asyncio::create_task([&] { ran = true; });
    CHECK(task.cancel());
    CHECK_THROWS_AS(task.wait(), asyncio::CancelledError);
    CHECK(task.cancelled());
  });
  CHECK_FALSE(ran);
}

TEST_CASE("a task cancelled before the loop runs never runs its body") {
  test::fresh_loop();
  bool ran = false;
  auto task = asyncio::create_task([&] { ran = true; });
  CHECK(task.cancel());
  CHECK_THROWS_AS(asyncio::run_until_complete(task), asyncio::CancelledError);
  CHECK(task.cancelled());
  CHECK_FALSE(ran);
}

TEST_CASE("a task that cancels itself gets RuntimeError(\"can't cancel self\") and carries on") {
  // MicroPython's Task.cancel raises in the caller; nothing is left pending.
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto task = asyncio::create_task([&] {
      try {
        asyncio::current_task().cancel();
        log.push_back("no error");
      } catch (const asyncio::RuntimeError& e) {
        log.push_back(e.what());
      }
      asyncio::sleep_ms(0);
      log.push_back("not cancelled");
      return 7;
    });
    CHECK(asyncio::await(task) == 7);
    CHECK_FALSE(task.cancelled());
  });
  CHECK(log == Log{"can't cancel self", "not cancelled"});
}

TEST_CASE("cancelling a finished task from itself is not an error: it is done") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([] {});
    task.wait();
    CHECK_FALSE(task.cancel());
  });
}

TEST_CASE("cancel of a finished task returns false and leaves its result") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([] { return 7; });
    CHECK(asyncio::await(task) == 7);
    CHECK_FALSE(task.cancel());
    CHECK_FALSE(task.cancelled());
    CHECK(task.result() == 7);

    auto failed = asyncio::create_task([]() -> int { throw std::runtime_error("failed"); });
    CHECK_THROWS_AS(asyncio::await(failed), std::runtime_error);
    CHECK_FALSE(failed.cancel());
    CHECK_FALSE(failed.cancelled());

    auto cancelled = asyncio::create_task([] { asyncio::sleep_ms(1000); });
    asyncio::sleep_ms(0);
    CHECK(cancelled.cancel());
    CHECK_THROWS_AS(cancelled.wait(), asyncio::CancelledError);
    CHECK_FALSE(cancelled.cancel());
  });
}

TEST_CASE("cancelling twice before the task runs is one cancellation") {
  test::fresh_loop();
  int cancellations = 0;
  asyncio::run([&] {
    auto task = asyncio::create_task([&] {
      try {
        asyncio::sleep_ms(1000);
      } catch (const asyncio::CancelledError&) {
        ++cancellations;
      }
      asyncio::sleep_ms(1);  // a second pending cancellation would surface here
      return 5;
    });
    asyncio::sleep_ms(0);
    CHECK(task.cancel());
    CHECK(task.cancel());
    CHECK(asyncio::await(task) == 5);
    CHECK_FALSE(task.cancelled());
  });
  CHECK(cancellations == 1);
}

TEST_CASE("CancelledError is not caught by catch (const std::exception&)") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto task = asyncio::create_task([&] {
      try {
        asyncio::sleep_ms(10'000);
      } catch (const std::exception&) {
        log.push_back("swallowed");
      }
      log.push_back("after");
    });
    asyncio::sleep_ms(0);
    task.cancel();
    CHECK_THROWS_AS(task.wait(), asyncio::CancelledError);
    CHECK(task.cancelled());
  });
  CHECK(log.empty());
}

TEST_CASE("a task that catches CancelledError and returns finishes normally") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([] {
      try {
        asyncio::sleep_ms(10'000);
      } catch (const asyncio::CancelledError&) {
        return -1;
      }
      return 0;
    });
    asyncio::sleep_ms(0);
    CHECK(task.cancel());
    CHECK(asyncio::await(task) == -1);
    CHECK(task.done());
    CHECK_FALSE(task.cancelled());
  });
}

TEST_CASE("a cancelled sleep leaves no stale timer behind") {
  // After catching the cancellation the task sleeps 100 ms; the original 50 ms deadline must
  // not wake it early.
  test::fresh_loop();
  double second_sleep_ms = 0;
  asyncio::run([&] {
    auto task = asyncio::create_task([&] {
      try {
        asyncio::sleep_ms(50);
      } catch (const asyncio::CancelledError&) {
      }
      const auto start = test::Clock::now();
      asyncio::sleep_ms(100);
      second_sleep_ms = test::ms_since(start);
    });
    asyncio::sleep_ms(10);
    task.cancel();
    task.wait();
    CHECK(test::now() == 110ms);
  });
  CHECK(second_sleep_ms == 100.0);
}

TEST_CASE("RAII objects on a cancelled task's stack are destroyed") {
  test::fresh_loop();
  int destroyed = 0;
  struct Guard {
    int* counter;
    ~Guard() { ++*counter; }
  };
  asyncio::run([&] {
    auto task = asyncio::create_task([&] {
      Guard guard{&destroyed};
      asyncio::sleep_ms(10'000);
    });
    asyncio::sleep_ms(0);
    task.cancel();
    CHECK_THROWS_AS(task.wait(), asyncio::CancelledError);
  });
  CHECK(destroyed == 1);
}

TEST_CASE("a cancelled lock holder releases the lock through std::lock_guard") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Lock lock;
    auto holder = asyncio::create_task([&] {
      std::lock_guard<asyncio::Lock> guard(lock);
      asyncio::sleep_ms(10'000);
    });
    asyncio::sleep_ms(0);
    CHECK(lock.locked());
    auto waiter = asyncio::create_task([&] {
      std::lock_guard<asyncio::Lock> guard(lock);
      return 1;
    });
    asyncio::sleep_ms(0);
    holder.cancel();
    CHECK(asyncio::await(waiter) == 1);
    CHECK_FALSE(lock.locked());
  });
}

TEST_CASE("cancelling many sleeping tasks cancels each of them") {
  test::fresh_loop();
  asyncio::run([] {
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < 100; ++i) {
      tasks.push_back(asyncio::create_task([i] { asyncio::sleep_ms(1000 + i); }));
    }
    asyncio::sleep_ms(0);
    for (auto& task : tasks) CHECK(task.cancel());
    const auto start = test::Clock::now();
    for (auto& task : tasks) CHECK_THROWS_AS(task.wait(), asyncio::CancelledError);
    CHECK(test::ms_since(start) == 0.0);  // none waited for its timer
  });
}
