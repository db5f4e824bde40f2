// Event and Lock (docs/semantics.md#event-and-lock; MicroPython's event.py and lock.py).
#include <algorithm>
#include <mutex>

#include "test_support.hpp"

using test::Log;

TEST_CASE("Event.set wakes every waiter, in the order they waited") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Event event;
    std::vector<asyncio::Task<void>> waiters;
    for (int i = 0; i < 3; ++i) {
      waiters.push_back(asyncio::create_task([&log, &event, i] {
        log.push_back(test::label("wait ", i));
        event.wait();
        log.push_back(test::label("woke ", i));
      }));
    }
    asyncio::sleep_ms(5);
    CHECK_FALSE(event.is_set());
    log.push_back("set");
    event.set();
    CHECK(event.is_set());
    for (auto& waiter : waiters) waiter.wait();
  });
  CHECK(log == Log{"wait 0", "wait 1", "wait 2", "set", "woke 0", "woke 1", "woke 2"});
}

TEST_CASE("Event.wait on a set event returns without suspending") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Event event;
    event.set();
    auto other = asyncio::create_task([&] { log.push_back("other"); });
    CHECK(event.wait());  // true, as MicroPython's
    log.push_back("main");
    other.wait();
  });
  CHECK(log == Log{"main", "other"});
}

TEST_CASE("Event.clear resets the flag and later waiters block again") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Event event;
    event.set();
    event.clear();
    CHECK_FALSE(event.is_set());
    auto waiter = asyncio::create_task([&] { event.wait(); });
    asyncio::sleep_ms(10);
    CHECK_FALSE(waiter.done());
    event.set();
    waiter.wait();
    CHECK(waiter.done());
  });
}

TEST_CASE("waiters woken by set run even if the event is cleared before they do") {
  // MicroPython's Event.set moves the waiters to the ready queue at once.
  test::fresh_loop();
  int woke = 0;
  asyncio::run([&] {
    asyncio::Event event;
    auto a = asyncio::create_task([&] {
      event.wait();
      ++woke;
    });
    auto b = asyncio::create_task([&] {
      event.wait();
      ++woke;
    });
    asyncio::sleep_ms(0);
    event.set();
    event.clear();
    a.wait();
    b.wait();
  });
  CHECK(woke == 2);
}

TEST_CASE("an Event can be set and waited on repeatedly") {
  test::fresh_loop();
  int rounds = 0;
  asyncio::run([&] {
    asyncio::Event ping, pong;
    auto responder = asyncio::create_task([&] {
      for (int i = 0; i < 100; ++i) {
        ping.wait();
        ping.clear();
        pong.set();
      }
    });
    for (int i = 0; i < 100; ++i) {
      ping.set();
      pong.wait();
      pong.clear();
      ++rounds;
    }
    responder.wait();
  });
  CHECK(rounds == 100);
}

TEST_CASE("Lock.acquire on a free lock does not suspend") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Lock lock;
    auto other = asyncio::create_task([&] { log.push_back("other"); });
    lock.acquire();
    log.push_back("acquired");
    CHECK(lock.locked());
    lock.release();
    CHECK_FALSE(lock.locked());
    other.wait();
  });
  CHECK(log == Log{"acquired", "other"});
}

TEST_CASE("Lock hands over to waiters in FIFO order") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Lock lock;
    lock.acquire();
    std::vector<asyncio::Task<void>> waiters;
    for (int i = 0; i < 4; ++i) {
      waiters.push_back(asyncio::create_task([&log, &lock, i] {
        lock.acquire();
        log.push_back(test::label("got ", i));
        asyncio::sleep_ms(1);
        lock.release();
      }));
    }
    asyncio::sleep_ms(5);
    lock.release();
    for (auto& waiter : waiters) waiter.wait();
    CHECK_FALSE(lock.locked());
  });
  CHECK(log == Log{"got 0", "got 1", "got 2", "got 3"});
}

TEST_CASE("a released lock is handed to its waiter: not locked() until it runs, yet not free") {
  // As MicroPython's lock.py: locked() is false during the hand-over, and nobody can jump the
  // queue between release() and the waiter running.
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Lock lock;
    CHECK(lock.acquire());
    auto waiter = asyncio::create_task([&] {
      CHECK(lock.acquire());
      CHECK(lock.locked());
      log.push_back("waiter");
      lock.release();
    });
    asyncio::sleep_ms(0);
    lock.release();
    CHECK_FALSE(lock.locked());
    CHECK_FALSE(lock.try_lock());
    try {
      lock.release();  // not held by anybody during the hand-over
      FAIL("release() during a hand-over did not throw");
    } catch (const asyncio::RuntimeError& e) {
      CHECK(std::string(e.what()) == "Lock not acquired");
    }
    lock.acquire();  // queues behind the waiter
    log.push_back("main");
    lock.release();
    waiter.wait();
  });
  CHECK(log == Log{"waiter", "main"});
}

TEST_CASE("std::lock_guard and std::unique_lock give mutual exclusion across suspensions") {
  test::fresh_loop();
  int inside = 0;
  int max_inside = 0;
  int entries = 0;
  asyncio::run([&] {
    asyncio::Lock lock;
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < 5; ++i) {
      tasks.push_back(asyncio::create_task([&, i] {
        for (int round = 0; round < 3; ++round) {
          auto critical_section = [&] {
            ++inside;
            ++entries;
            max_inside = std::max(max_inside, inside);
            asyncio::sleep_ms(0);
            --inside;
          };
          if (i % 2) {
            std::lock_guard<asyncio::Lock> guard(lock);
            critical_section();
          } else {
            std::unique_lock<asyncio::Lock> guard(lock);
            critical_section();
          }
          asyncio::sleep_ms(0);
        }
      }));
    }
    for (auto& task : tasks) task.wait();
    CHECK_FALSE(lock.locked());
  });
  CHECK(entries == 15);
  CHECK(max_inside == 1);
}

TEST_CASE("releasing an unlocked lock raises RuntimeError") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Lock lock;
    CHECK_THROWS_AS(lock.release(), asyncio::RuntimeError);
    lock.acquire();
    lock.release();
    CHECK_THROWS_AS(lock.release(), asyncio::RuntimeError);
    // The failed release left the lock usable.
    CHECK(lock.try_lock());
    lock.release();
  });
}

TEST_CASE("try_lock takes a free lock and refuses a held one") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Lock lock;
    CHECK(lock.try_lock());
    CHECK(lock.locked());
    CHECK_FALSE(lock.try_lock());
    lock.release();
    CHECK_FALSE(lock.locked());
  });
}
