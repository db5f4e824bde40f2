// The log's settings from the environment and the port's log hooks, for both loggers.
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "asyncio/detail/port.hpp"
#include "log.hpp"

namespace asyncio::detail {
namespace {

constexpr std::string_view kLoggerName = "asyncio";

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

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) {
  if (name == "off") return LogLevel::off;
  if (name == "critical") return LogLevel::critical;
  if (name == "error" || name == "err") return LogLevel::error;
  if (name == "warn" || name == "warning") return LogLevel::warn;
  if (name == "info") return LogLevel::info;
  if (name == "debug") return LogLevel::debug;
  if (name == "trace") return LogLevel::trace;
  return std::nullopt;
}

EnvironmentLevel log_level_from_environment() {
  std::string variable = "ASYNCIO_LOG";
  std::optional<std::string> setting;
  if (const char* value = std::getenv("ASYNCIO_LOG"); value && *value) {
    setting = value;
  } else if (const char* spdlog_value = std::getenv("SPDLOG_LEVEL")) {
    variable = "SPDLOG_LEVEL";
    setting = spdlog_level_setting(spdlog_value);
  }
  if (!setting) return {};
  if (const auto level = parse_log_level(*setting)) return {*level, std::nullopt};
  return {LogLevel::warn, variable + ": unknown level '" + *setting +
                              "' (expected off, error, warn, info, debug or trace); using warn"};
}

namespace port {
namespace {

// The core prefixes its lines with "asyncio: " for ports without a named logger.
std::string_view without_prefix(const char* message) noexcept {
  const std::string_view prefix = "asyncio: ";
  const std::string_view text(message);
  return text.starts_with(prefix) ? text.substr(prefix.size()) : text;
}

}  // namespace

void log_error(const char* message) noexcept {
  log_message(LogLevel::error, without_prefix(message));
}

void log_info(const char* message) noexcept {
  log_message(LogLevel::info, without_prefix(message));
}

void fatal(const char* message) noexcept {
  log_message(LogLevel::critical, without_prefix(message));
  log_flush();
  std::abort();
}

}  // namespace port
}  // namespace asyncio::detail
