// timeout() scopes, shield(), task_group() (CPython 3.11's structured-concurrency helpers).
#include <stdexcept>
#include <string>

#include "test_support.hpp"

using namespace std::chrono_literals;

using test::Log;

// ---- timeout ----

TEST_CASE("timeout_ms returns the body's value when it finishes in time") {
  test::fresh_loop();
  asyncio::run([] {
    int value = asyncio::timeout_ms(1000, [] {
      asyncio::sleep_ms(1);
      return 42;
    });
    CHECK(value == 42);
    asyncio::timeout(std::chrono::seconds(1), [] { asyncio::sleep_ms(1); });
    // The scope is gone: a wait longer than its deadline is not cut short.
    auto start = test::Clock::now();
    asyncio::timeout_ms(5, [] {});
    asyncio::sleep_ms(20);
    CHECK(test::ms_since(start) == 20.0);
  });
}

TEST_CASE("an expired timeout cancels the body at its suspension point and raises TimeoutError") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto start = test::Clock::now();
    CHECK_THROWS_AS(asyncio::timeout_ms(20,
                                        [&] {
                                          try {
                                            asyncio::sleep_ms(10'000);
                                            log.push_back("slept");
                                          } catch (const asyncio::CancelledError&) {
                                            log.push_back("body cancelled");
                                            throw;
                                          }
                                        }),
                    asyncio::TimeoutError);
    const double elapsed = test::ms_since(start);
    CHECK(elapsed == 20.0);
    // The task goes on normally: no deadline is left behind.
    asyncio::sleep_ms(30);
    log.push_back("after");
  });
  CHECK(log == Log{"body cancelled", "after"});
}

TEST_CASE("a timeout cuts a wait on an Event, a Lock, a Queue or a yielding loop") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Event event;
    CHECK_THROWS_AS(asyncio::timeout_ms(5, [&] { event.wait(); }), asyncio::TimeoutError);

    asyncio::Lock lock;
    lock.acquire();
    CHECK_THROWS_AS(asyncio::timeout_ms(5, [&] { lock.acquire(); }), asyncio::TimeoutError);
    lock.release();
    CHECK_FALSE(lock.locked());  // the timed-out acquire left nothing behind

    asyncio::Queue<int> queue;
    CHECK_THROWS_AS(asyncio::timeout_ms(5, [&] { return queue.get(); }), asyncio::TimeoutError);
    queue.put(1);
    CHECK(queue.get_nowait() == 1);

    int rounds = 0;
    CHECK_THROWS_AS(asyncio::timeout_ms(5,
                                        [&] {
                                          for (;;) {
                                            ++rounds;
                                            // Work: on virtual time it is what moves the clock.
                                            test::spin_for(100us);
                                            asyncio::sleep_ms(0);
                                          }
                                        }),
                    asyncio::TimeoutError);
    CHECK(rounds == 50);  // 50 rounds of 100 us fill the 5 ms exactly
  });
}

TEST_CASE("a timeout cuts an I/O wait and a ThreadSafeFlag wait; both can be waited on again" * doctest::test_suite("os")) {
  test::fresh_loop();
  asyncio::run([] {
    test::Pipe pipe;
    CHECK_THROWS_AS(asyncio::timeout_ms(5, [&] { asyncio::wait_readable(pipe.read_fd); }),
                    asyncio::TimeoutError);
    auto reader = asyncio::create_task([&] { return asyncio::wait_readable(pipe.read_fd); });
    asyncio::sleep_ms(1);
    pipe.write_byte();
    CHECK((asyncio::await(reader) & asyncio::POLL_RD) != 0);

    asyncio::ThreadSafeFlag flag;
    CHECK_THROWS_AS(asyncio::timeout_ms(5, [&] { flag.wait(); }), asyncio::TimeoutError);
    flag.set();
    asyncio::timeout_ms(5'000, [&] { flag.wait(); });  // the set is seen: no second waiter error
  });
}

TEST_CASE("a timeout cancels a task the body awaits, and leaves wait_for's own timeout alone") {
  test::fresh_loop();
  asyncio::run([] {
    auto slow = asyncio::create_task([] { asyncio::sleep_ms(10'000); });
    CHECK_THROWS_AS(asyncio::timeout_ms(5, [&] { asyncio::await(slow); }), asyncio::TimeoutError);
    CHECK(slow.cancelled());

    // A shorter wait_for inside raises its own TimeoutError, which the scope lets through.
    auto slower = asyncio::create_task([] { asyncio::sleep_ms(10'000); });
    bool inner_timed_out = false;
    asyncio::timeout_ms(5'000, [&] {
      try {
        asyncio::wait_for_ms(slower, 5);
      } catch (const asyncio::TimeoutError&) {
        inner_timed_out = true;
      }
    });
    CHECK(inner_timed_out);
    CHECK(slower.cancelled());

    // A task that swallows the cancellation and returns: the body gets its value.
    auto stubborn = asyncio::create_task([] {
      try {
        asyncio::sleep_ms(10'000);
      } catch (const asyncio::CancelledError&) {
      }
      return 7;
    });
    CHECK(asyncio::timeout_ms(5, [&] { return asyncio::await(stubborn); }) == 7);
  });
}

TEST_CASE("cancelling the task during a timeout body raises CancelledError, not TimeoutError") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto worker = asyncio::create_task([&] {
      try {
        asyncio::timeout_ms(10'000, [] { asyncio::sleep_ms(10'000); });
      } catch (const asyncio::TimeoutError&) {
        log.push_back("timeout");
      } catch (const asyncio::CancelledError&) {
        log.push_back("cancelled");
        throw;
      }
    });
    asyncio::sleep_ms(1);
    worker.cancel();
    CHECK_THROWS_AS(worker.wait(), asyncio::CancelledError);
    CHECK(worker.cancelled());
  });
  CHECK(log == Log{"cancelled"});
}

TEST_CASE("nested timeouts: the one whose deadline passed raises, the other is unaffected") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    // Inner shorter: it raises inside the outer body, which carries on.
    int value = asyncio::timeout_ms(5'000, [&] {
      try {
        asyncio::timeout_ms(5, [] { asyncio::sleep_ms(10'000); });
      } catch (const asyncio::TimeoutError&) {
        log.push_back("inner timed out");
      }
      asyncio::sleep_ms(5);  // the outer deadline is still armed, and far
      return 1;
    });
    CHECK(value == 1);

    // Outer shorter: the inner scope lets the expiry through; the outer raises.
    CHECK_THROWS_AS(asyncio::timeout_ms(5,
                                        [&] {
                                          try {
                                            asyncio::timeout_ms(5'000,
                                                                [] { asyncio::sleep_ms(10'000); });
                                          } catch (const asyncio::TimeoutError&) {
                                            log.push_back("wrong scope");
                                          }
                                          log.push_back("outer body went on");
                                        }),
                    asyncio::TimeoutError);
  });
  CHECK(log == Log{"inner timed out"});
}

TEST_CASE("a negative timeout means no limit; timeout outside a task raises RuntimeError") {
  test::fresh_loop();
  CHECK_THROWS_AS(asyncio::timeout_ms(5, [] {}), asyncio::RuntimeError);
  asyncio::run([] {
    CHECK(asyncio::timeout_ms(-1, [] {
            asyncio::sleep_ms(5);
            return 3;
          }) == 3);
    CHECK_THROWS_AS(
        asyncio::timeout(std::chrono::milliseconds(0), [] { asyncio::sleep_ms(10'000); }),
        asyncio::TimeoutError);
  });
}

// ---- shield ----

TEST_CASE("shield returns the task's value or rethrows its exception") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([] {
      asyncio::sleep_ms(1);
      return std::string("ok");
    });
    CHECK(asyncio::shield(task) == "ok");
    auto failing = asyncio::create_task([]() -> int { throw std::logic_error("boom"); });
    CHECK_THROWS_AS(asyncio::shield(failing), std::logic_error);
    CHECK(asyncio::shield([] { return 5; }) == 5);
  });
}

TEST_CASE("cancelling a task that awaits a shielded task does not cancel the shielded one") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto inner = asyncio::create_task([&] {
      asyncio::sleep_ms(20);
      log.push_back("inner finished");
      return 9;
    });
    auto outer = asyncio::create_task([&] {
      try {
        asyncio::shield(inner);
      } catch (const asyncio::CancelledError&) {
        log.push_back("outer cancelled");
        throw;
      }
    });
    asyncio::sleep_ms(1);
    outer.cancel();
    CHECK_THROWS_AS(outer.wait(), asyncio::CancelledError);
    CHECK_FALSE(inner.done());
    CHECK(asyncio::await(inner) == 9);
    CHECK_FALSE(inner.cancelled());

    // Under a timeout scope: TimeoutError in the caller, the task runs on.
    auto shielded = asyncio::create_task([] {
      asyncio::sleep_ms(20);
      return 1;
    });
    CHECK_THROWS_AS(asyncio::timeout_ms(2, [&] { return asyncio::shield(shielded); }),
                    asyncio::TimeoutError);
    CHECK(asyncio::await(shielded) == 1);
  });
  CHECK(log == Log{"outer cancelled", "inner finished"});
}

// ---- task_group ----

TEST_CASE("task_group waits for every task created in it and returns the body's value") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    int value = asyncio::task_group([&](asyncio::TaskGroup& group) {
      for (int i = 0; i < 3; ++i) {
        group.create_task([&log, &group, i] {
          asyncio::sleep_ms(3 - i);
          log.push_back(test::label("task ", i));
          if (i == 0) group.create_task([&log] { log.push_back("child of 0"); });  // from inside
        });
      }
      log.push_back("body done");
      return 5;
    });
    log.push_back("group done");
    CHECK(value == 5);
  });
  CHECK(log == Log{"body done", "task 2", "task 1", "task 0", "child of 0", "group done"});
}

TEST_CASE("a failing task cancels the others and task_group rethrows that failure") {
  test::fresh_loop();
  Log log;
  std::vector<std::string> reported;
  asyncio::get_event_loop().set_exception_handler(
      [&](asyncio::Loop&, const asyncio::ExceptionContext& context) {
        reported.push_back(context.message);
      });
  asyncio::run([&] {
    asyncio::Task<void> slow;
    try {
      asyncio::task_group([&](asyncio::TaskGroup& group) {
        slow = group.create_task([&] {
          try {
            asyncio::sleep_ms(10'000);
          } catch (const asyncio::CancelledError&) {
            log.push_back("slow cancelled");
            throw;
          }
        });
        group.create_task([] {
          asyncio::sleep_ms(1);
          throw std::runtime_error("first");
        });
        group.create_task([] {
          try {
            asyncio::sleep_ms(10'000);
          } catch (const asyncio::CancelledError&) {
            throw std::logic_error("second");  // fails while being cancelled
          }
        });
      });
      log.push_back("no error");
    } catch (const std::runtime_error& error) {
      log.push_back(std::string("caught ") + error.what());
    }
    CHECK(slow.cancelled());
  });
  CHECK(log == Log{"slow cancelled", "caught first"});
  REQUIRE(reported.size() == 1);  // the second failure went to the exception handler
  CHECK(reported[0].find("TaskGroup") != std::string::npos);
}

TEST_CASE(
    "if the body throws, task_group cancels its tasks, waits, and rethrows the body's error") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Task<void> task;
    CHECK_THROWS_AS(asyncio::task_group([&](asyncio::TaskGroup& group) {
                      task = group.create_task([&] {
                        try {
                          asyncio::sleep_ms(10'000);
                        } catch (const asyncio::CancelledError&) {
                          asyncio::sleep_ms(1);  // cleanup that waits: the group waits for it
                          log.push_back("task cleaned up");
                          throw;
                        }
                      });
                      asyncio::sleep_ms(1);
                      throw std::invalid_argument("body");
                    }),
                    std::invalid_argument);
    log.push_back("rethrown");
    CHECK(task.cancelled());
  });
  CHECK(log == Log{"task cleaned up", "rethrown"});
}

TEST_CASE("cancelling the task waiting in task_group cancels the group's tasks, then raises") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto owner = asyncio::create_task([&] {
      asyncio::task_group([&](asyncio::TaskGroup& group) {
        for (int i = 0; i < 2; ++i) {
          group.create_task([&log, i] {
            try {
              asyncio::sleep_ms(10'000);
            } catch (const asyncio::CancelledError&) {
              log.push_back(test::label("cancelled ", i));
              throw;
            }
          });
        }
      });
      log.push_back("not reached");
    });
    asyncio::sleep_ms(1);
    owner.cancel();
    CHECK_THROWS_AS(owner.wait(), asyncio::CancelledError);
    CHECK(owner.cancelled());
  });
  CHECK(log == Log{"cancelled 0", "cancelled 1"});
}

TEST_CASE("task_group refuses new tasks once finished or shutting down; a timeout ends it") {
  test::fresh_loop();
  bool body_ran = false;
  CHECK_THROWS_AS(asyncio::task_group([&](asyncio::TaskGroup&) { body_ran = true; }),
                  asyncio::RuntimeError);  // outside a task
  CHECK_FALSE(body_ran);
  asyncio::run([] {
    bool refused = false;
    CHECK_THROWS_AS(asyncio::task_group([&](asyncio::TaskGroup& group) {
                      group.create_task([]() { throw std::runtime_error("fails"); });
                      try {
                        asyncio::sleep_ms(1'000);  // the failure aborts the group, cancels us
                      } catch (const asyncio::CancelledError&) {
                        try {
                          group.create_task([] {});
                        } catch (const asyncio::RuntimeError&) {
                          refused = true;
                        }
                        throw;
                      }
                    }),
                    std::runtime_error);
    CHECK(refused);

    asyncio::Task<void> member;
    CHECK_THROWS_AS(
        asyncio::timeout_ms(5,
                            [&] {
                              asyncio::task_group([&](asyncio::TaskGroup& group) {
                                member = group.create_task([] { asyncio::sleep_ms(10'000); });
                              });
                            }),
        asyncio::TimeoutError);
    CHECK(member.cancelled());
  });
}

TEST_CASE("a task failing while the body still runs cancels the body; the failure is raised") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto start = test::Clock::now();
    try {
      asyncio::task_group([&](asyncio::TaskGroup& group) {
        group.create_task([] {
          asyncio::sleep_ms(1);
          throw std::runtime_error("failed");
        });
        try {
          asyncio::sleep_ms(10'000);
          log.push_back("body slept");
        } catch (const asyncio::CancelledError&) {
          log.push_back("body cancelled");
          throw;
        }
      });
    } catch (const std::runtime_error& error) {
      log.push_back(std::string("caught ") + error.what());
    }
    CHECK(test::ms_since(start) == 1.0);  // the member failed at 1 ms

    // The body is only queued (it yielded) when the member fails: the cancel surfaces there,
    // and nothing is left pending for the task afterwards.
    CHECK_THROWS_AS(asyncio::task_group([&](asyncio::TaskGroup& group) {
                      group.create_task([]() { throw std::runtime_error("fails at once"); });
                      test::spin_for(1ms);
                      asyncio::sleep_ms(0);  // the member fails while we are queued
                      log.push_back("body went on");
                    }),
                    std::runtime_error);
    asyncio::sleep_ms(1);  // no stray CancelledError here
    log.push_back("task goes on");
  });
  CHECK(log == Log{"body cancelled", "caught failed", "task goes on"});
}
