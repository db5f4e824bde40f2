// Virtual time (asyncio/testing.hpp): the clock jumps to each deadline, events happen at exact
// virtual times, and the low-power grid and the fast-I/O bound fall where a real port puts them.
#include <asyncio/testing.hpp>

#include <cstdlib>
#include <string_view>

#include "test_support.hpp"

using namespace std::chrono_literals;
namespace testing = asyncio::testing;
using test::Log;

namespace {
/// "<what>@<virtual ms>", e.g. "a@30".
std::string at_now(const char* what) {
  std::string text(what);
  text += '@';
  text += std::to_string(testing::now().count() / 1000);
  return text;
}
}  // namespace

TEST_CASE("an hour of sleeping takes no wall time and ends exactly an hour later") {
  // The wall clock itself: test::Clock would read the virtual one of the thread's loop.
  const auto start = std::chrono::steady_clock::now();
  const auto end = testing::run([] {
    asyncio::sleep(1h);
    return testing::now();
  });
  CHECK(end == 1h);
  CHECK(std::chrono::steady_clock::now() - start < 5s);  // generous: it is microseconds of work
}

TEST_CASE("timers fire in due order at their exact virtual times") {
  Log log;
  testing::run([&] {
    auto make = [&](const char* name, int ms) {
      return asyncio::create_task([&log, name, ms] {
        asyncio::sleep_ms(ms);
        log.push_back(at_now(name));
      });
    };
    auto a = make("a", 30);
    auto b = make("b", 10);
    auto c = make("c", 20);
    asyncio::gather(a, b, c);
  });
  CHECK(log == Log{"b@10", "c@20", "a@30"});
}

TEST_CASE("advance() moves the clock at once; a timer that fell due meanwhile runs late") {
  Log log;
  testing::run([&] {
    auto sleeper = asyncio::create_task([&] {
      asyncio::sleep_ms(2);
      log.push_back(at_now("timer"));
    });
    asyncio::sleep_ms(0);  // the sleeper starts its 2 ms sleep at 0
    testing::advance(5ms);
    log.push_back(at_now("main"));
    asyncio::sleep_ms(0);
    sleeper.result();
  });
  CHECK(log == Log{"main@5", "timer@5"});
  CHECK_THROWS_AS(testing::run([] { testing::advance(-1ms); }), asyncio::ValueError);
}

TEST_CASE("a scripted flag set wakes its waiter at that virtual time") {
  Log log;
  testing::run([&] {
    asyncio::ThreadSafeFlag flag;
    testing::set_flag_at(flag, 7500us);
    testing::set_flag_at(flag, 40ms);
    flag.wait();
    log.push_back(at_now("first"));
    flag.wait();
    log.push_back(at_now("second"));
  });
  CHECK(log == Log{"first@7", "second@40"});
}

TEST_CASE("a device made ready by a script is seen at the next pollable poll") {
  testing::run([] {
    testing::Device device;
    device.set_at(5300us, asyncio::POLL_RD);
    CHECK(asyncio::wait_pollable(device, asyncio::POLL_RD | asyncio::POLL_WR) == asyncio::POLL_RD);
    // Polled every Loop::kPollableIntervalUs from 0: 1, 2, ... 5 ms, then 6 ms.
    CHECK(testing::now() == 6ms);
  });
}

TEST_CASE("wait_idle() returns once every other task waits, without moving the clock") {
  Log log;
  testing::run([&] {
    auto worker = asyncio::create_task([&] {
      for (int i = 0; i < 3; ++i) asyncio::sleep_ms(0);
      log.push_back("worker yielded 3 times");
      asyncio::sleep_ms(50);
      log.push_back(at_now("worker"));
    });
    testing::wait_idle();
    log.push_back(at_now("idle"));
    asyncio::await(worker);
  });
  CHECK(log == Log{"worker yielded 3 times", "idle@0", "worker@50"});
}

TEST_CASE("low power: timers are served on the 20 ms grid, each slot's on one wake-up") {
  Log log;
  testing::run([&] {
    asyncio::get_event_loop().power_mode(true);
    auto make = [&](const char* name, int ms) {
      return asyncio::create_task([&log, name, ms] {
        asyncio::sleep_ms(ms);
        log.push_back(at_now(name));
      });
    };
    auto a = make("a", 3);
    auto b = make("b", 17);
    auto c = make("c", 20);
    auto d = make("d", 21);
    asyncio::gather(a, b, c, d);
  });
  CHECK(log == Log{"a@20", "b@20", "c@20", "d@40"});
}

TEST_CASE("low power: after a flag wake-up, the next ones are batched to the slot's end") {
  Log log;
  testing::run([&] {
    asyncio::get_event_loop().power_mode(true);
    asyncio::ThreadSafeFlag flag;
    testing::set_flag_at(flag, 25ms);
    testing::set_flag_at(flag, 27ms);
    testing::set_flag_at(flag, 95ms);  // after a quiet slot: served at once again
    for (int i = 0; i < 3; ++i) {
      flag.wait();
      log.push_back(at_now("flag"));
    }
  });
  CHECK(log == Log{"flag@25", "flag@40", "flag@95"});
}

TEST_CASE("normal mode: a timer is late by at most the 250 us timer grid") {
  testing::run([] {
    asyncio::sleep_us(1100);
    CHECK(testing::now() == 1250us);
    asyncio::get_event_loop().set_timer_resolution(0);
    asyncio::sleep_us(1100);
    CHECK(testing::now() == 2350us);
  });
}

// The fast-I/O bound (docs/semantics.md#fast-io): an I/O-woken task is queued as if due 1 s
// ago, so it passes a task due for less than that and not one due for longer.
static Log fast_io_order(std::chrono::milliseconds busy) {
  Log log;
  testing::run([&] {
    asyncio::get_event_loop().roundrobin(false);
    asyncio::ThreadSafeFlag flag;
    auto io = asyncio::create_task([&] {
      flag.wait();
      log.push_back("io");
    });
    asyncio::sleep_ms(0);  // io waits on the flag from time 0
    auto normal = asyncio::create_task([&] { log.push_back("normal"); });  // due at 0
    testing::set_flag_at(flag, 1ms);
    testing::advance(busy);  // main computes without yielding; the flag is set meanwhile
    asyncio::sleep_ms(0);
    log.push_back("main");
    asyncio::gather(io, normal);
  });
  return log;
}

TEST_CASE("fast I/O: an I/O wake-up passes tasks due for less than the 1000 ms bound") {
  CHECK(fast_io_order(999ms) == Log{"io", "normal", "main"});
  CHECK(fast_io_order(1001ms) == Log{"normal", "io", "main"});
}

TEST_CASE("a program stuck on a flag nothing sets stops with an error instead of hanging") {
  CHECK_THROWS_AS(testing::run([] {
                    asyncio::ThreadSafeFlag flag;
                    flag.wait();
                  }),
                  asyncio::RuntimeError);
}

TEST_CASE("an exception from a scripted event goes to the exception handler") {
  std::string message;
  testing::run([&] {
    asyncio::get_event_loop().set_exception_handler(
        [&](asyncio::Loop&, const asyncio::ExceptionContext& context) { message = context.message; });
    testing::at(1ms, [] { throw std::runtime_error("boom"); });
    asyncio::sleep_ms(2);
  });
  CHECK(message == "asyncio::testing: a scripted event raised");
}

TEST_CASE("the testing calls refuse a loop that is not on virtual time") {
  test::fresh_loop();
  // The core suite's loop is on virtual time itself.
  if (std::string_view(asyncio::get_event_loop().backend_name()) == "virtual") return;
  CHECK_THROWS_WITH_AS(testing::now(),
                       doctest::Contains("does not run on virtual time"), asyncio::RuntimeError);
  CHECK_FALSE(testing::active());
}

TEST_CASE("testing::run gives the thread an ordinary loop back") {
  testing::run([] { CHECK(testing::active()); });
  const char* requested = std::getenv("ASYNCIO_BACKEND");
  if (requested && std::string(requested) == "virtual") return;  // then every loop is virtual
  CHECK_FALSE(testing::active());
}

TEST_CASE("the README's example: a timeout fires at exactly its virtual time") {
  asyncio::testing::run([] {
    asyncio::ThreadSafeFlag reply;
    asyncio::testing::set_flag_at(reply, 1500ms);  // the device answers at 1.5 s, as an interrupt
    CHECK_THROWS_AS(asyncio::wait_for_ms([&] { reply.wait(); }, 1000), asyncio::TimeoutError);
    CHECK(asyncio::testing::now() == 1000ms);      // exactly: no margin, no flake
  });
}
