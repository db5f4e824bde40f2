// Semaphore, BoundedSemaphore, Condition, Barrier (CPython's asyncio.locks).
#include <algorithm>
#include <mutex>

#include "test_support.hpp"

using test::Log;

TEST_CASE("a Semaphore lets `value` tasks in at once and queues the rest in FIFO order") {
  test::fresh_loop();
  Log log;
  int inside = 0;
  int max_inside = 0;
  asyncio::run([&] {
    asyncio::Semaphore semaphore(2);
    CHECK(semaphore.value() == 2);
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < 5; ++i) {
      tasks.push_back(asyncio::create_task([&, i] {
        std::lock_guard<asyncio::Semaphore> guard(semaphore);
        log.push_back(test::label("in ", i));
        max_inside = std::max(max_inside, ++inside);
        asyncio::sleep_ms(2);
        --inside;
      }));
    }
    for (auto& task : tasks) task.wait();
    CHECK(semaphore.value() == 2);
    CHECK_FALSE(semaphore.locked());
  });
  CHECK(max_inside == 2);
  CHECK(log == Log{"in 0", "in 1", "in 2", "in 3", "in 4"});
}

TEST_CASE("a released unit goes to the oldest waiter, not to a task that comes later") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Semaphore semaphore(1);
    semaphore.acquire();
    CHECK(semaphore.locked());
    auto waiter = asyncio::create_task([&] {
      semaphore.acquire();
      log.push_back("waiter");
      semaphore.release();
    });
    asyncio::sleep_ms(0);
    semaphore.release();
    CHECK(semaphore.locked());
    CHECK_FALSE(semaphore.try_lock());
    semaphore.acquire();
    log.push_back("main");
    semaphore.release();
    waiter.wait();
  });
  CHECK(log == Log{"waiter", "main"});
}

TEST_CASE("Semaphore(0) blocks until released; a negative value raises ValueError") {
  test::fresh_loop();
  CHECK_THROWS_AS(asyncio::Semaphore(-1), asyncio::ValueError);
  CHECK_THROWS_AS(asyncio::BoundedSemaphore(-1), asyncio::ValueError);
  asyncio::run([] {
    asyncio::Semaphore semaphore(0);
    CHECK(semaphore.locked());
    auto waiter = asyncio::create_task([&] { semaphore.acquire(); });
    asyncio::sleep_ms(1);
    CHECK_FALSE(waiter.done());
    semaphore.release();
    waiter.wait();
    semaphore.release();  // a plain Semaphore may count above its initial value
    semaphore.release();
    CHECK(semaphore.value() == 2);
  });
}

TEST_CASE("BoundedSemaphore.release above the initial value raises ValueError") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::BoundedSemaphore semaphore(2);
    CHECK_THROWS_AS(semaphore.release(), asyncio::ValueError);
    CHECK(semaphore.value() == 2);
    semaphore.acquire();
    semaphore.acquire();
    semaphore.release();
    semaphore.release();
    CHECK_THROWS_AS(semaphore.release(), asyncio::ValueError);
    // Still usable after the error.
    CHECK(semaphore.try_lock());
    semaphore.release();
    CHECK(semaphore.value() == 2);
  });
}

TEST_CASE("a Semaphore waiter cancelled while waiting, or after being handed a unit, loses none") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::BoundedSemaphore semaphore(1);
    semaphore.acquire();
    auto first = asyncio::create_task([&] { semaphore.acquire(); });
    auto second = asyncio::create_task([&] { semaphore.acquire(); });
    auto third = asyncio::create_task([&] {
      semaphore.acquire();
      semaphore.release();
    });
    asyncio::sleep_ms(0);
    first.cancel();  // while waiting
    asyncio::sleep_ms(0);
    CHECK(first.cancelled());
    semaphore.release();  // handed to `second`
    second.cancel();      // before it runs: the unit goes on to `third`
    third.wait();
    CHECK(second.cancelled());
    CHECK(semaphore.value() == 1);  // every unit is back; none lost, none invented
    CHECK_THROWS_AS(semaphore.release(), asyncio::ValueError);
  });
}

TEST_CASE("Condition.wait releases the lock, waits for notify and holds the lock again") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Condition condition;
    int ready = 0;
    std::vector<asyncio::Task<void>> waiters;
    for (int i = 0; i < 3; ++i) {
      waiters.push_back(asyncio::create_task([&, i] {
        std::unique_lock<asyncio::Condition> guard(condition);
        log.push_back(test::label("wait ", i));
        condition.wait();
        CHECK(condition.locked());
        log.push_back(test::label("woke ", i));
        ++ready;
      }));
    }
    asyncio::sleep_ms(1);
    CHECK_FALSE(condition.locked());  // every waiter released it
    {
      std::lock_guard<asyncio::Condition> guard(condition);
      condition.notify();
      log.push_back("notified 1");
      asyncio::sleep_ms(1);
      CHECK(ready == 0);  // the woken waiter needs the lock we hold
    }
    asyncio::sleep_ms(1);
    CHECK(ready == 1);
    {
      std::lock_guard<asyncio::Condition> guard(condition);
      condition.notify_all();
    }
    for (auto& waiter : waiters) waiter.wait();
    CHECK_FALSE(condition.locked());
  });
  CHECK(log == Log{"wait 0", "wait 1", "wait 2", "notified 1", "woke 0", "woke 1", "woke 2"});
}

TEST_CASE("Condition.notify(n) wakes the n oldest waiters") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Condition condition;
    std::vector<asyncio::Task<void>> waiters;
    for (int i = 0; i < 4; ++i) {
      waiters.push_back(asyncio::create_task([&, i] {
        std::lock_guard<asyncio::Condition> guard(condition);
        condition.wait();
        log.push_back(test::label("woke ", i));
      }));
    }
    asyncio::sleep_ms(1);
    condition.acquire();
    condition.notify(2);
    condition.release();
    asyncio::sleep_ms(1);
    CHECK(log == Log{"woke 0", "woke 1"});
    condition.acquire();
    condition.notify(10);  // more than are waiting
    condition.release();
    for (auto& waiter : waiters) waiter.wait();
  });
  CHECK(log == Log{"woke 0", "woke 1", "woke 2", "woke 3"});
}

TEST_CASE("Condition.wait_for waits until the predicate holds, on a shared Lock") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Lock lock;
    asyncio::Condition condition(lock);
    int value = 0;
    int wakeups = 0;
    auto waiter = asyncio::create_task([&] {
      std::lock_guard<asyncio::Lock> guard(lock);
      bool reached = condition.wait_for([&] {
        ++wakeups;
        return value >= 3;
      });
      CHECK(reached);
      return value;
    });
    for (int i = 0; i < 3; ++i) {
      asyncio::sleep_ms(1);
      std::lock_guard<asyncio::Lock> guard(lock);
      ++value;
      condition.notify();
    }
    CHECK(asyncio::await(waiter) == 3);
    CHECK(wakeups == 4);  // once at the start, once per notify
  });
}

TEST_CASE("Condition.wait and notify without the lock raise RuntimeError") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Condition condition;
    CHECK_THROWS_AS(condition.wait(), asyncio::RuntimeError);
    CHECK_THROWS_AS(condition.notify(), asyncio::RuntimeError);
    CHECK_THROWS_AS(condition.notify_all(), asyncio::RuntimeError);
    CHECK_FALSE(condition.locked());
  });
}

TEST_CASE(
    "a Condition waiter cancelled while waiting holds the lock again when it sees the error") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Condition condition;
    auto waiter = asyncio::create_task([&] {
      condition.acquire();
      try {
        condition.wait();
      } catch (const asyncio::CancelledError&) {
        log.push_back(condition.locked() ? "cancelled, locked" : "cancelled, unlocked");
        condition.release();
        throw;
      }
    });
    asyncio::sleep_ms(1);
    condition.acquire();  // the waiter must wait for us to re-acquire
    waiter.cancel();
    asyncio::sleep_ms(1);
    CHECK_FALSE(waiter.done());
    log.push_back("main releases");
    condition.release();
    asyncio::sleep_ms(1);
    CHECK(waiter.cancelled());
    CHECK_FALSE(condition.locked());
  });
  CHECK(log == Log{"main releases", "cancelled, locked"});
}

TEST_CASE("a Condition waiter notified and then cancelled passes the notification on") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Condition condition;
    auto make_waiter = [&](int i) {
      return asyncio::create_task([&, i] {
        std::lock_guard<asyncio::Condition> guard(condition);
        condition.wait();
        log.push_back(test::label("woke ", i));
      });
    };
    auto first = make_waiter(0);
    auto second = make_waiter(1);
    asyncio::sleep_ms(1);
    condition.acquire();
    condition.notify();  // wakes `first`...
    first.cancel();      // ...which is cancelled before it runs: `second` takes its place
    condition.release();
    second.wait();
    CHECK(first.cancelled());
    CHECK_FALSE(condition.locked());
  });
  CHECK(log == Log{"woke 1"});
}

TEST_CASE("a task cancelled while re-acquiring the Condition's lock still ends up holding it") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Condition condition;
    auto waiter = asyncio::create_task([&] {
      condition.acquire();
      try {
        condition.wait();
        log.push_back("returned");
      } catch (const asyncio::CancelledError&) {
        log.push_back(condition.locked() ? "cancelled, locked" : "cancelled, unlocked");
        condition.release();
        throw;
      }
    });
    asyncio::sleep_ms(1);
    condition.acquire();
    condition.notify();
    asyncio::sleep_ms(1);  // the waiter is notified and now queues for the lock we hold
    waiter.cancel();
    asyncio::sleep_ms(1);
    CHECK_FALSE(waiter.done());  // the cancellation waits for the lock
    log.push_back("main releases");
    condition.release();
    asyncio::sleep_ms(1);
    CHECK(waiter.cancelled());
    CHECK_FALSE(condition.locked());
  });
  CHECK(log == Log{"main releases", "cancelled, locked"});
}

TEST_CASE("a Barrier releases its parties together and returns their arrival indexes") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Barrier barrier(3);
    CHECK(barrier.parties() == 3);
    std::vector<asyncio::Task<int>> tasks;
    for (int i = 0; i < 3; ++i) {
      tasks.push_back(asyncio::create_task([&, i] {
        asyncio::sleep_ms(i);
        log.push_back(test::label("arrive ", i));
        int index = barrier.wait();
        log.push_back(test::label("pass ", i));
        return index;
      }));
    }
    asyncio::sleep_ms(1);
    for (int i = 0; i < 3; ++i) CHECK(asyncio::await(tasks[i]) == i);
    CHECK(barrier.n_waiting() == 0);
    // The barrier is reusable: a second round.
    auto again = asyncio::create_task([&] { return barrier.wait(); });
    auto and_again = asyncio::create_task([&] { return barrier.wait(); });
    asyncio::sleep_ms(1);
    CHECK(barrier.n_waiting() == 2);
    CHECK(barrier.wait() == 2);
    CHECK(asyncio::await(again) == 0);
    CHECK(asyncio::await(and_again) == 1);
  });
  // The last to arrive does not wait; the others pass once it has arrived.
  CHECK(log == Log{"arrive 0", "arrive 1", "arrive 2", "pass 2", "pass 0", "pass 1"});
}

TEST_CASE("Barrier.abort breaks the barrier for waiting and later tasks; reset mends it") {
  test::fresh_loop();
  CHECK_THROWS_AS(asyncio::Barrier(0), asyncio::ValueError);
  asyncio::run([] {
    asyncio::Barrier barrier(3);
    auto waiter = asyncio::create_task([&] { return barrier.wait(); });
    asyncio::sleep_ms(1);
    barrier.abort();
    CHECK(barrier.broken());
    CHECK_THROWS_AS(asyncio::await(waiter), asyncio::BrokenBarrierError);
    CHECK_THROWS_AS(barrier.wait(), asyncio::BrokenBarrierError);
    barrier.reset();
    CHECK_FALSE(barrier.broken());

    // reset() while tasks wait: they get BrokenBarrierError; the barrier is usable again.
    auto early = asyncio::create_task([&] { return barrier.wait(); });
    asyncio::sleep_ms(1);
    barrier.reset();
    CHECK_THROWS_AS(asyncio::await(early), asyncio::BrokenBarrierError);
    CHECK(barrier.n_waiting() == 0);
    auto a = asyncio::create_task([&] { return barrier.wait(); });
    auto b = asyncio::create_task([&] { return barrier.wait(); });
    asyncio::sleep_ms(1);
    CHECK(barrier.wait() == 2);
    a.wait();
    b.wait();
  });
}

TEST_CASE("a task cancelled while waiting at a Barrier leaves the round") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Barrier barrier(2);
    auto leaver = asyncio::create_task([&] { return barrier.wait(); });
    asyncio::sleep_ms(1);
    CHECK(barrier.n_waiting() == 1);
    leaver.cancel();
    asyncio::sleep_ms(0);
    CHECK(leaver.cancelled());
    CHECK(barrier.n_waiting() == 0);
    auto partner = asyncio::create_task([&] { return barrier.wait(); });
    asyncio::sleep_ms(1);
    CHECK_FALSE(partner.done());  // still needs a second party
    CHECK(barrier.wait() == 1);
    CHECK(asyncio::await(partner) == 0);

    // Released, then cancelled before it runs: the round still completed for the others.
    asyncio::Barrier pair(2);
    auto released = asyncio::create_task([&] { return pair.wait(); });
    asyncio::sleep_ms(1);
    CHECK(pair.wait() == 1);
    released.cancel();
    CHECK_THROWS_AS(asyncio::await(released), asyncio::CancelledError);
    CHECK(pair.n_waiting() == 0);
  });
}
