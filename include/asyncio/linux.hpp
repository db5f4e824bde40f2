// Umbrella header for the Linux port: the portable API (asyncio/asyncio.hpp) plus what exists
// only on Linux: waiting on file descriptors, TCP streams and servers, threads and executors,
// and the task dump on a signal.
#pragma once

#include "asyncio/asyncio.hpp"
#include "asyncio/linux/debug_signal.hpp"
#include "asyncio/linux/io.hpp"
#include "asyncio/linux/log.hpp"
#include "asyncio/linux/net.hpp"
#include "asyncio/linux/threads.hpp"
