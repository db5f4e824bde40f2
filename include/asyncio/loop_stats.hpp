// Loop::stats(): what the scheduler did, so a program can see what low-power mode and fast I/O
// do for it (docs/using.md#loop-statistics).
#pragma once

#include <cstdint>

namespace asyncio {

/// Counters since the loop was made. Plain fields bumped on paths the loop already takes, so
/// that counting costs nothing measurable. Read on the loop thread.
struct LoopStats {
  /// Switches from one task (or the loop) to another.
  std::uint64_t task_switches = 0;
  /// Tasks made ready by a timer, an Event/Lock/task, I/O or a flag.
  std::uint64_t task_wakeups = 0;
  /// Times the loop slept in the backend (each ends in a CPU wake-up).
  std::uint64_t blocking_waits = 0;
  /// Time spent in those sleeps (µs).
  std::int64_t time_blocked_us = 0;
  /// Non-blocking looks at I/O, flags and pollables (one per pick of the next task).
  std::uint64_t io_polls = 0;
  /// Of those, the ones that woke no task.
  std::uint64_t empty_io_polls = 0;
  /// Low-power sleeps that let I/O accumulate to a slot's end.
  std::uint64_t low_power_batches = 0;
};

}  // namespace asyncio
