// Exceptions (docs/semantics.md#tasks, docs/semantics.md#functions): a task's exception reaches whoever awaits it; an exception nobody
// awaits goes to the loop's exception handler ("Task exception wasn't retrieved").
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

TEST_CASE("an exception that is not a std::exception propagates too") {
  test::fresh_loop();
  asyncio::run([] {
    auto task = asyncio::create_task([] { throw 42; });
    try {
      task.wait();
      FAIL("wait did not throw");
    } catch (int value) {
      CHECK(value == 42);
    }
  });
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
