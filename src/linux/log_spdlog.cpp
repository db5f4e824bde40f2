// The library's log (include/asyncio/linux/log.hpp) with spdlog: its "asyncio" logger on stderr.
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "log.hpp"

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
  const detail::EnvironmentLevel setting = detail::log_level_from_environment();
  logger->set_level(static_cast<spdlog::level::level_enum>(LogLevel::warn));
  if (setting.warning) logger->warn("{}", *setting.warning);
  logger->set_level(static_cast<spdlog::level::level_enum>(setting.level));
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

void log_message(LogLevel level, std::string_view message) noexcept {
  try {
    log().logger->log(static_cast<spdlog::level::level_enum>(level), "{}", message);
  } catch (...) {
  }
}

void log_flush() noexcept {
  try {
    log().logger->flush();
  } catch (...) {
  }
}

}  // namespace detail
}  // namespace asyncio
