// The library's log (include/asyncio/log.hpp): spdlog's "asyncio" logger on stderr.
#include "log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "asyncio/detail/port.hpp"
#include "asyncio/log.hpp"

namespace asyncio {
namespace {

constexpr const char* kLoggerName = "asyncio";

// Writes to stderr, or hands each message to the program's LogSink; one lock covers both so
// that set_log_sink may run while another thread logs.
class StderrOrCallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void set_callback(LogSink callback) {
    std::lock_guard lock(mutex_);
    callback_ = std::move(callback);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    if (callback_) {
      callback_(static_cast<LogLevel>(message.level),
                std::string_view(message.payload.data(), message.payload.size()));
      return;
    }
    spdlog::memory_buf_t line;
    formatter_->format(message, line);
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  LogSink callback_;
};

std::optional<spdlog::level::level_enum> parse_level(std::string_view name) {
  using spdlog::level::level_enum;
  if (name == "off") return level_enum::off;
  if (name == "critical") return level_enum::critical;
  if (name == "error" || name == "err") return level_enum::err;
  if (name == "warn" || name == "warning") return level_enum::warn;
  if (name == "info") return level_enum::info;
  if (name == "debug") return level_enum::debug;
  if (name == "trace") return level_enum::trace;
  return std::nullopt;
}

// SPDLOG_LEVEL is "level" or a list "name=level,name=level"; the "asyncio=" entry wins over a
// bare level.
std::optional<std::string> spdlog_level_setting(std::string_view text) {
  std::optional<std::string> global;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const std::size_t equals = item.find('=');
    if (equals == std::string_view::npos) {
      global = std::string(item);
    } else if (item.substr(0, equals) == kLoggerName) {
      return std::string(item.substr(equals + 1));
    }
  }
  return global;
}

spdlog::level::level_enum level_from_environment(spdlog::logger& logger) {
  const char* variable = "ASYNCIO_LOG";
  std::optional<std::string> setting;
  if (const char* value = std::getenv("ASYNCIO_LOG"); value && *value) {
    setting = value;
  } else if (const char* spdlog_value = std::getenv("SPDLOG_LEVEL")) {
    variable = "SPDLOG_LEVEL";
    setting = spdlog_level_setting(spdlog_value);
  }
  if (!setting) return spdlog::level::warn;
  if (const auto level = parse_level(*setting)) return *level;
  logger.warn(
      "{}: unknown level '{}' (expected off, error, warn, info, debug or trace); "
      "using warn",
      variable, *setting);
  return spdlog::level::warn;
}

struct Log {
  std::shared_ptr<StderrOrCallbackSink> sink;  // null when the program brought its own logger
  std::shared_ptr<spdlog::logger> logger;
};

Log make_log() {
  // A logger the program registered under our name is used as it is: its sinks, its level.
  if (auto existing = spdlog::get(kLoggerName)) return {nullptr, std::move(existing)};
  auto sink = std::make_shared<StderrOrCallbackSink>();
  sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%l] %v");
  auto logger = std::make_shared<spdlog::logger>(kLoggerName, sink);
  logger->set_level(spdlog::level::warn);
  logger->set_level(level_from_environment(*logger));
  logger->flush_on(spdlog::level::err);
  try {
    spdlog::register_logger(logger);
  } catch (const spdlog::spdlog_ex&) {
    // Registered by another thread meanwhile: ours still works, unregistered.
  }
  return {std::move(sink), std::move(logger)};
}

Log& log() {
  static Log instance = make_log();
  return instance;
}

}  // namespace

void set_log_level(LogLevel level) {
  log().logger->set_level(static_cast<spdlog::level::level_enum>(level));
}

LogLevel log_level() {
  return static_cast<LogLevel>(log().logger->level());
}

void set_log_sink(LogSink sink) {
  Log& instance = log();
  if (!instance.sink) {
    throw std::logic_error(
        "asyncio::set_log_sink: the program registered its own spdlog logger \"asyncio\"; "
        "change that logger's sinks instead");
  }
  instance.sink->set_callback(std::move(sink));
}

namespace detail {

spdlog::logger& logger() noexcept {
  return *log().logger;
}

namespace port {

// The core prefixes its lines with "asyncio: " for ports without a named logger.
const char* without_prefix(const char* message) noexcept {
  const std::string_view prefix = "asyncio: ";
  return std::string_view(message).starts_with(prefix) ? message + prefix.size() : message;
}

void log_error(const char* message) noexcept {
  try {
    logger().error("{}", without_prefix(message));
  } catch (...) {
  }
}

void log_info(const char* message) noexcept {
  try {
    logger().info("{}", without_prefix(message));
  } catch (...) {
  }
}

void fatal(const char* message) noexcept {
  try {
    logger().critical("{}", without_prefix(message));
    logger().flush();
  } catch (...) {
  }
  std::abort();
}

}  // namespace port
}  // namespace detail
}  // namespace asyncio
