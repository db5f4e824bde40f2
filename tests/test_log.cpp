// The library's log (include/asyncio/linux/log.hpp): levels, a program's own sink, silence.
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace {

struct Captured {
  asyncio::LogLevel level;
  std::string message;
};

/// Runs a loop in which one task fails and nobody retrieves its exception.
void run_with_unretrieved_failure() {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::create_task([] { throw std::runtime_error("nobody looks at this"); });
    asyncio::sleep_ms(1);
  });
  test::fresh_loop();
}

/// Restores stderr and the level when a test case ends.
struct RestoreLog {
  asyncio::LogLevel level = asyncio::log_level();
  ~RestoreLog() {
    asyncio::set_log_sink({});
    asyncio::set_log_level(level);
  }
};

}  // namespace

TEST_CASE("a program's log sink receives an unretrieved task exception as an error") {
  RestoreLog restore;
  std::vector<Captured> lines;
  asyncio::set_log_sink([&](asyncio::LogLevel level, std::string_view message) {
    lines.push_back({level, std::string(message)});
  });
  asyncio::set_log_level(asyncio::LogLevel::warn);
  run_with_unretrieved_failure();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].level == asyncio::LogLevel::error);
  CHECK(lines[0].message.find("Task exception wasn't retrieved") != std::string::npos);
  CHECK(lines[0].message.find("nobody looks at this") != std::string::npos);
}

TEST_CASE("set_log_level(off) silences the library and log_level reports it") {
  RestoreLog restore;
  int calls = 0;
  asyncio::set_log_sink([&](asyncio::LogLevel, std::string_view) { ++calls; });
  asyncio::set_log_level(asyncio::LogLevel::off);
  CHECK(asyncio::log_level() == asyncio::LogLevel::off);
  run_with_unretrieved_failure();
  CHECK(calls == 0);
  asyncio::set_log_level(asyncio::LogLevel::error);
  CHECK(asyncio::log_level() == asyncio::LogLevel::error);
  run_with_unretrieved_failure();
  CHECK(calls == 1);
}

TEST_CASE("the level starts at warn when neither ASYNCIO_LOG nor SPDLOG_LEVEL is set") {
  if (std::getenv("ASYNCIO_LOG") || std::getenv("SPDLOG_LEVEL")) return;
  CHECK(asyncio::log_level() == asyncio::LogLevel::warn);
}
