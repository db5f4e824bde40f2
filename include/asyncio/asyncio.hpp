// Umbrella header: MicroPython's asyncio (with asyncio_alt's fast I/O and low-power modes)
// in C++, portable to every port. See README.md for the Python-to-C++ table. The Linux extras
// (descriptors, sockets, threads) are in asyncio/linux.hpp, which includes this one.
#pragma once

#include "asyncio/errors.hpp"
#include "asyncio/event.hpp"
#include "asyncio/funcs.hpp"
#include "asyncio/introspect.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/loop_stats.hpp"
#include "asyncio/pollable.hpp"
#include "asyncio/queue.hpp"
#include "asyncio/stream.hpp"
#include "asyncio/sync.hpp"
#include "asyncio/task.hpp"
#include "asyncio/task_group.hpp"
#include "asyncio/threadsafe_flag.hpp"
#include "asyncio/timeout.hpp"
