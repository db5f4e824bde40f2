// Dumping every loop's tasks on a signal (Linux port; docs/using.md#observing-the-loop).
#pragma once

#include <csignal>

namespace asyncio {

/// Opt-in: from now on `signal` (SIGUSR1 by default; 0 turns it off again) makes every loop
/// of the process write dump_tasks() to stderr, from its own thread at its next switch (a
/// blocked loop is woken for it). Replaces the program's handler of that signal.
/// ValueError for a signal that cannot be caught.
void dump_tasks_on_signal(int signal = SIGUSR1);

}  // namespace asyncio
