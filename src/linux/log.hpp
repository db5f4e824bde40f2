// The Linux port's log (include/asyncio/log.hpp): spdlog's "asyncio" logger when the library
// was built with spdlog, a minimal stderr logger otherwise; both read the same settings.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "asyncio/linux/log.hpp"

namespace asyncio::detail {

/// Writes one message (one line, without newline) if `level` passes log_level().
void log_message(LogLevel level, std::string_view message) noexcept;
/// Writes out what is buffered (before an abort).
void log_flush() noexcept;

/// "off", "error", "warn", ... (spdlog's spellings too); nullopt for anything else.
std::optional<LogLevel> parse_log_level(std::string_view name);

/// The level ASYNCIO_LOG, else SPDLOG_LEVEL ("info" or "asyncio=info,..."), asks for.
struct EnvironmentLevel {
  LogLevel level = LogLevel::warn;
  /// Set when the variable named an unknown level (the level is then warn).
  std::optional<std::string> warning;
};
EnvironmentLevel log_level_from_environment();

}  // namespace asyncio::detail
