// Waiting on file descriptors (Linux port). Streams (StreamReader/StreamWriter) build on it.
#pragma once

#include <cstdint>

#include "asyncio/pollable.hpp"

namespace asyncio {

/// Suspends the current task until `fd` is ready for any of `events` (POLL_RD, POLL_WR);
/// returns the ready events (POLL_ERR/POLL_HUP may be added). Woken tasks are I/O-woken: in
/// fast-I/O mode they run before other pending tasks (docs/semantics.md#fast-io). A bad descriptor raises
/// OSError(EBADF); one task may wait per direction of a descriptor, as in MicroPython
/// (RuntimeError otherwise). `events` is POLL_RD or POLL_WR (ValueError otherwise).
unsigned wait_io(int fd, unsigned events);
inline unsigned wait_readable(int fd) { return wait_io(fd, POLL_RD); }
inline unsigned wait_writable(int fd) { return wait_io(fd, POLL_WR); }

}  // namespace asyncio
