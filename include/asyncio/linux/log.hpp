// Where the library's messages go (Linux). The library logs through an spdlog logger named
// "asyncio" that writes to stderr, never to stdout. Its level comes from ASYNCIO_LOG (off,
// error, warn, info, debug, trace; default warn), else from SPDLOG_LEVEL ("info" or
// "asyncio=info,..."). A program may change the level, send the lines to its own function,
// or register its own spdlog logger named "asyncio" before its first Loop (the library then
// uses that one).
#pragma once

#include <functional>
#include <string_view>

namespace asyncio {

/// spdlog's levels, most verbose first.
enum class LogLevel { trace, debug, info, warn, error, critical, off };

/// The level below which the library's messages are dropped.
void set_log_level(LogLevel level);
LogLevel log_level();

/// Receives each message (one line, without newline) at or above log_level(). Called on the
/// thread that logged, one call at a time.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;

/// Replaces stderr with `sink`; an empty sink restores stderr. set_log_level(LogLevel::off)
/// silences the library.
void set_log_sink(LogSink sink);

}  // namespace asyncio
