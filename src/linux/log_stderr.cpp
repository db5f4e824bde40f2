// The library's log (include/asyncio/linux/log.hpp) without spdlog: the same levels, settings and
// line format, written to stderr or handed to the program's LogSink.
#include <sys/time.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "log.hpp"

namespace asyncio {
namespace {

struct Log {
  std::atomic<LogLevel> level{LogLevel::warn};
  std::mutex mutex;  // one line at a time, and set_log_sink while another thread logs
  LogSink sink;
};

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return "trace";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warning";
    case LogLevel::error: return "error";
    case LogLevel::critical: return "critical";
    case LogLevel::off: break;
  }
  return "off";
}

// spdlog's default pattern: "[2024-01-31 12:00:00.123] [asyncio] [error] message".
std::string format_line(LogLevel level, std::string_view message) {
  timeval now{};
  ::gettimeofday(&now, nullptr);
  tm local{};
  ::localtime_r(&now.tv_sec, &local);
  char stamp[40];
  const std::size_t length = std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &local);
  std::snprintf(stamp + length, sizeof stamp - length, ".%03ld", now.tv_usec / 1000);
  std::string line = "[";
  line.append(stamp).append("] [asyncio] [").append(level_name(level)).append("] ");
  line.append(message).append("\n");
  return line;
}

void write_line(Log& instance, LogLevel level, std::string_view message) {
  std::lock_guard lock(instance.mutex);
  if (instance.sink) {
    instance.sink(level, message);
    return;
  }
  const std::string line = format_line(level, message);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

Log* make_log() {
  auto* created = new Log;
  const detail::EnvironmentLevel setting = detail::log_level_from_environment();
  if (setting.warning) write_line(*created, LogLevel::warn, *setting.warning);
  created->level.store(setting.level);
  return created;
}

Log& log() {
  // Never destroyed: threads may still log while static objects are torn down.
  static Log* instance = make_log();
  return *instance;
}

}  // namespace

void set_log_level(LogLevel level) { log().level.store(level); }

LogLevel log_level() { return log().level.load(); }

void set_log_sink(LogSink sink) {
  Log& instance = log();
  std::lock_guard lock(instance.mutex);
  instance.sink = std::move(sink);
}

namespace detail {

void log_message(LogLevel level, std::string_view message) noexcept {
  try {
    Log& instance = log();
    if (level == LogLevel::off || level < instance.level.load()) return;
    write_line(instance, level, message);
  } catch (...) {
  }
}

void log_flush() noexcept { std::fflush(stderr); }

}  // namespace detail
}  // namespace asyncio
