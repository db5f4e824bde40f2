// Umbrella header: MicroPython's asyncio (with asyncio_alt's fast I/O and low-power modes)
// in C++. See README.md for the Python-to-C++ table.
#pragma once

#include "asyncio/errors.hpp"
#include "asyncio/event.hpp"
#include "asyncio/funcs.hpp"
#include "asyncio/introspect.hpp"
#include "asyncio/io.hpp"
#include "asyncio/log.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/loop_stats.hpp"
#include "asyncio/net.hpp"
#include "asyncio/pollable.hpp"
#include "asyncio/queue.hpp"
#include "asyncio/stream.hpp"
#include "asyncio/sync.hpp"
#include "asyncio/task.hpp"
#include "asyncio/task_group.hpp"
#include "asyncio/threadsafe_flag.hpp"
#include "asyncio/timeout.hpp"
#if defined(__linux__)
#include "asyncio/debug_signal.hpp"  // Linux port only
#include "asyncio/threads.hpp"
#endif
