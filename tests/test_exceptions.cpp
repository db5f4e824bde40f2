// Exceptions (docs/semantics.md#tasks, docs/semantics.md#functions): a task's exception reaches whoever awaits it; an exception nobody
// awaits goes to the loop's exception handler ("Task exception wasn't retrieved").
#include <signal.h>

#include <csignal>
#include <cstdio>
#include <type_traits>

#include "test_support.hpp"

using test::Log;

namespace {

struct CustomError : std::exception {
  explicit CustomError(int code) : code(code) {}
  const char* what() const noexcept override { return "CustomError"; }
  int code;
};

/// Records every call of the loop's exception handler.
struct HandlerCalls {
  std::vector<asyncio::ExceptionContext> contexts;
  asyncio::Loop::ExceptionHandler handler() {
    return [this](asyncio::Loop&, const asyncio::ExceptionContext& context) {
      contexts.push_back(context);
    };
  }
};

/// Sleeps until cancelled, logging "<name> cancelled" on the way out.
void sleep_until_cancelled(Log& log, const char* name) {
  try {
    asyncio::sleep_ms(100'000);
  } catch (const asyncio::CancelledError&) {
    log.push_back(std::string(name) + " cancelled");
    throw;
  }
}

std::string message_of(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "<not a std::exception>";
  }
}

}  // namespace

TEST_CASE("an exception propagates through await with its type and message") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([]() -> int {
      asyncio::sleep_ms(1);
      throw std::runtime_error("boom");
    });
    try {
      asyncio::await(task);
      FAIL("await did not throw");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()) == "boom");
    }
    CHECK(task.done());
    CHECK_FALSE(task.cancelled());
    CHECK(test::holds<std::runtime_error>(task.exception()));
  });
}

TEST_CASE("a user exception type is not sliced on its way through await") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([] { throw CustomError(17); });
    try {
      task.wait();
      FAIL("wait did not throw");
    } catch (const CustomError& e) {
      CHECK(e.code == 17);
    }
  });
}

TEST_CASE("an exception that is not a std::exception leaves run() once the other tasks are cancelled") {
  // MicroPython lets KeyboardInterrupt and SystemExit out of run() from any task.
  test::fresh_loop();
  Log log;
  auto watched = [&log](const char* name) { sleep_until_cancelled(log, name); };
  try {
    asyncio::run([&] {
      asyncio::create_task(watched, "bystander");
      asyncio::create_task([] {
        asyncio::sleep_ms(1);
        throw 42;
      });
      watched("main");
    });
    FAIL("run() did not throw");
  } catch (int value) {
    CHECK(value == 42);
  }
  CHECK(log == Log{"main cancelled", "bystander cancelled"});
  CHECK(asyncio::run([] { return 5; }) == 5);  // the loop is usable again
}

TEST_CASE("a std::exception in a detached task does not leave run()") {
  test::fresh_loop();
  HandlerCalls calls;
  asyncio::get_event_loop().set_exception_handler(calls.handler());
  CHECK(asyncio::run([] {
          asyncio::create_task([] { throw std::runtime_error("contained"); });
          asyncio::sleep_ms(1);
          return 3;
        }) == 3);
  CHECK(calls.contexts.size() == 1);
}

TEST_CASE("SIGINT during run() cancels every task, then raises KeyboardInterrupt" * doctest::test_suite("os")) {
  test::fresh_loop();
  // run() takes SIGINT only from the default disposition; doctest installs a crash handler.
  struct sigaction doctest_handler {};
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigaction(SIGINT, &default_action, &doctest_handler);
  Log log;
  auto watched = [&log](const char* name) { sleep_until_cancelled(log, name); };
  CHECK_THROWS_AS(asyncio::run([&] {
                    asyncio::create_task(watched, "other");
                    asyncio::sleep_ms(0);
                    std::raise(SIGINT);  // without run()'s handler this ends the test program
                    watched("main");
                  }),
                  asyncio::KeyboardInterrupt);
  CHECK(log == Log{"main cancelled", "other cancelled"});
  struct sigaction now {};
  sigaction(SIGINT, nullptr, &now);
  const bool default_disposition = now.sa_handler == SIG_DFL;
  CHECK(default_disposition);  // run() gave the disposition back
  CHECK(asyncio::run([] { return 4; }) == 4);  // and a later run is not interrupted
  sigaction(SIGINT, &doctest_handler, nullptr);
}

TEST_CASE("a program's own SIGINT handler is left alone by run()" * doctest::test_suite("os")) {
  test::fresh_loop();
  static volatile std::sig_atomic_t seen = 0;
  struct sigaction own {};
  struct sigaction saved {};
  own.sa_handler = [](int) { seen = 1; };
  sigaction(SIGINT, &own, &saved);
  CHECK(asyncio::run([] {
          std::raise(SIGINT);
          asyncio::sleep_ms(1);
          return 6;
        }) == 6);
  CHECK(seen == 1);
  sigaction(SIGINT, &saved, nullptr);
}

TEST_CASE("KeyboardInterrupt is not a std::exception") {
  CHECK_FALSE(std::is_base_of_v<std::exception, asyncio::KeyboardInterrupt>);
}

TEST_CASE("an exception propagates through a chain of awaits") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    auto outer = asyncio::create_task([&] {
      auto middle = asyncio::create_task([&] {
        auto inner = asyncio::create_task([]() -> int {
          asyncio::sleep_ms(1);
          throw asyncio::ValueError("deep");
        });
        try {
          return asyncio::await(inner);
        } catch (const asyncio::ValueError&) {
          log.push_back("middle saw it");
          throw;
        }
      });
      return asyncio::await(middle) + 1;
    });
    CHECK_THROWS_WITH_AS(asyncio::await(outer), "deep", asyncio::ValueError);
  });
  CHECK(log == Log{"middle saw it"});
}

TEST_CASE("run() rethrows the main task's exception without calling the handler") {
  test::fresh_loop();
  HandlerCalls calls;
  asyncio::get_event_loop().set_exception_handler(calls.handler());
  CHECK_THROWS_WITH_AS(asyncio::run([] { throw std::runtime_error("main failed"); }), "main failed",
                       std::runtime_error);
  CHECK(calls.contexts.empty());
}

TEST_CASE("an unawaited failing task reaches the handler with 'Task exception wasn't retrieved'") {
  test::fresh_loop();
  HandlerCalls calls;
  asyncio::get_event_loop().set_exception_handler(calls.handler());
  asyncio::run([] {
    asyncio::create_task(asyncio::TaskOptions{"worker"}, [] {
      asyncio::sleep_ms(1);
      throw std::runtime_error("lost");
    });
    asyncio::sleep_ms(20);
  });
  REQUIRE(calls.contexts.size() == 1);
  const auto& context = calls.contexts[0];
  CHECK(context.message.find("Task exception wasn't retrieved") != std::string::npos);
  CHECK(message_of(context.exception) == "lost");
  CHECK(context.task == "worker");
}

TEST_CASE("the handler is called when the task fails, and a later await still gets it") {
  // MicroPython reports at the moment the task ends with nobody waiting, and keeps the
  // exception for a later await.
  test::fresh_loop();
  HandlerCalls calls;
  asyncio::get_event_loop().set_exception_handler(calls.handler());
  asyncio::run([&] {
    auto task = asyncio::create_task([]() -> int { throw asyncio::ValueError("late"); });
    asyncio::sleep_ms(5);
    CHECK(calls.contexts.size() == 1);
    CHECK_THROWS_AS(asyncio::await(task), asyncio::ValueError);
  });
  CHECK(calls.contexts.size() == 1);
}

TEST_CASE("a failing task awaited one turn after it failed is never reported") {
  // MicroPython gives the finished task one more turn before it calls the handler.
  test::fresh_loop();
  HandlerCalls calls;
  asyncio::get_event_loop().set_exception_handler(calls.handler());
  asyncio::run([&] {
    auto task = asyncio::create_task([]() -> int { throw asyncio::ValueError("retrieved"); });
    asyncio::sleep_ms(0);  // the task runs and fails; its report turn queues behind us
    CHECK(task.done());
    CHECK_THROWS_AS(asyncio::await(task), asyncio::ValueError);
    asyncio::sleep_ms(1);
  });
  CHECK(calls.contexts.empty());
}

TEST_CASE("result() or exception() one turn later retrieves the exception too") {
  test::fresh_loop();
  HandlerCalls calls;
  asyncio::get_event_loop().set_exception_handler(calls.handler());
  asyncio::run([&] {
    auto first = asyncio::create_task([]() -> int { throw asyncio::ValueError("a"); });
    auto second = asyncio::create_task([]() -> int { throw asyncio::ValueError("b"); });
    asyncio::sleep_ms(0);
    CHECK_THROWS_AS(first.result(), asyncio::ValueError);
    CHECK(second.exception() != nullptr);
    asyncio::sleep_ms(1);
  });
  CHECK(calls.contexts.empty());
}

TEST_CASE("the handler runs one turn after the failure, behind the tasks already due") {
  test::fresh_loop();
  Log log;
  asyncio::get_event_loop().set_exception_handler(
      [&log](asyncio::Loop&, const asyncio::ExceptionContext&) { log.push_back("handler"); });
  asyncio::run([&] {
    asyncio::create_task([&] {
      log.push_back("fails");
      throw asyncio::ValueError("x");
    });
    asyncio::create_task([&] { log.push_back("next"); });
    asyncio::sleep_ms(5);
  });
  CHECK(log == Log{"fails", "next", "handler"});
}

TEST_CASE("no handler call for an awaited, gathered or cancelled task") {
  test::fresh_loop();
  HandlerCalls calls;
  asyncio::get_event_loop().set_exception_handler(calls.handler());
  asyncio::run([] {
    auto awaited = asyncio::create_task([]() -> int {
      asyncio::sleep_ms(1);
      throw std::runtime_error("awaited");
    });
    CHECK_THROWS_AS(asyncio::await(awaited), std::runtime_error);

    auto gathered = asyncio::create_task([]() -> int {
      asyncio::sleep_ms(1);
      throw std::runtime_error("gathered");
    });
    auto fine = asyncio::create_task([] { return 1; });
    CHECK_THROWS_AS(asyncio::gather(gathered, fine), std::runtime_error);

    auto cancelled = asyncio::create_task([] { asyncio::sleep_ms(10'000); });
    asyncio::sleep_ms(0);
    cancelled.cancel();
    asyncio::sleep_ms(5);  // it ends with CancelledError, awaited by nobody
    CHECK(cancelled.cancelled());
  });
  CHECK(calls.contexts.empty());
}

TEST_CASE("get_exception_handler returns the handler that was set") {
  auto& loop = test::fresh_loop();
  HandlerCalls calls;
  loop.set_exception_handler(calls.handler());
  auto handler = loop.get_exception_handler();
  REQUIRE(handler);
  handler(loop, asyncio::ExceptionContext{"direct", nullptr, ""});
  REQUIRE(calls.contexts.size() == 1);
  CHECK(calls.contexts[0].message == "direct");
}

TEST_CASE("call_exception_handler passes the context to the handler") {
  auto& loop = test::fresh_loop();
  HandlerCalls calls;
  loop.set_exception_handler(calls.handler());
  auto error = std::make_exception_ptr(asyncio::ValueError("bad value"));
  loop.call_exception_handler(asyncio::ExceptionContext{"something happened", error, "t1"});
  REQUIRE(calls.contexts.size() == 1);
  CHECK(calls.contexts[0].message == "something happened");
  CHECK(calls.contexts[0].exception == error);
  CHECK(calls.contexts[0].task == "t1");
}

TEST_CASE("the default handler logs without crashing and the loop goes on") {
  auto& loop = test::fresh_loop();
  loop.call_exception_handler(asyncio::ExceptionContext{
      "test: default handler, no task", std::make_exception_ptr(std::runtime_error("x")), ""});
  asyncio::Loop::default_exception_handler(
      loop, asyncio::ExceptionContext{"test: default handler, no exception", nullptr, ""});
  asyncio::Loop::default_exception_handler(
      loop, asyncio::ExceptionContext{"test: default handler, non-std exception",
                                      std::make_exception_ptr(3), "t"});
  const int value = asyncio::run([] {
    asyncio::create_task([] { throw std::runtime_error("test: reported by the default handler"); });
    asyncio::sleep_ms(5);
    return 9;
  });
  CHECK(value == 9);
}

namespace {
/// Runs `body` with file descriptor `fd` sent to a temporary file; returns what was written.
template <class Body>
std::string written_to(int fd, Body body) {
  std::fflush(nullptr);
  FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  const int saved = dup(fd);
  dup2(fileno(file), fd);
  body();
  std::fflush(nullptr);
  dup2(saved, fd);
  close(saved);
  std::rewind(file);
  std::string text;
  char buffer[256];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;) text.append(buffer, n);
  std::fclose(file);
  return text;
}
}  // namespace

TEST_CASE("the default handler logs on stderr, never on the program's stdout") {
  auto& loop = test::fresh_loop();
  std::string on_stderr;
  const std::string on_stdout = written_to(STDOUT_FILENO, [&] {
    on_stderr = written_to(STDERR_FILENO, [&] {
      asyncio::Loop::default_exception_handler(
          loop, asyncio::ExceptionContext{"test: logged on stderr",
                                          std::make_exception_ptr(std::runtime_error("x")), ""});
    });
  });
  CHECK(on_stdout.empty());
  CHECK(on_stderr.find("test: logged on stderr") != std::string::npos);
}

TEST_CASE("an empty handler restores the default one") {
  auto& loop = test::fresh_loop();
  HandlerCalls calls;
  loop.set_exception_handler(calls.handler());
  loop.set_exception_handler(nullptr);
  asyncio::run([] {
    asyncio::create_task([] { throw std::runtime_error("test: default handler again"); });
    asyncio::sleep_ms(5);
  });
  CHECK(calls.contexts.empty());
}

TEST_CASE("result() and exception() of an unfinished task raise RuntimeError") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([] {
      asyncio::sleep_ms(5);
      return 1;
    });
    CHECK_THROWS_AS(task.result(), asyncio::RuntimeError);
    CHECK_THROWS_AS(task.exception(), asyncio::RuntimeError);
    CHECK(asyncio::await(task) == 1);
    CHECK(task.exception() == nullptr);
  });
}

TEST_CASE("a task that fails leaves the other tasks running") {
  test::fresh_loop();
  HandlerCalls calls;
  asyncio::get_event_loop().set_exception_handler(calls.handler());
  int ticks = 0;
  asyncio::run([&] {
    auto ticker = asyncio::create_task([&] {
      for (int i = 0; i < 10; ++i) {
        ++ticks;
        asyncio::sleep_ms(1);
      }
    });
    asyncio::create_task([] {
      asyncio::sleep_ms(2);
      throw std::runtime_error("one task failed");
    });
    ticker.wait();
  });
  CHECK(ticks == 10);
  CHECK(calls.contexts.size() == 1);
}
