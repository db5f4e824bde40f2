// The Linux port's logger: spdlog's "asyncio" logger (include/asyncio/log.hpp).
#pragma once

#include <spdlog/logger.h>

namespace asyncio::detail {

/// Created on first use, with its level from ASYNCIO_LOG or SPDLOG_LEVEL.
spdlog::logger& logger() noexcept;

}  // namespace asyncio::detail
