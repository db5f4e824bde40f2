// Task introspection (docs/using.md#observing-the-loop): every task of a loop, its state and
// what it waits on, as data or as a table.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "asyncio/loop.hpp"

namespace asyncio {

/// One task, as all_tasks() saw it.
struct TaskInfo {
  /// The task's name (TaskOptions::name, or "task-N").
  std::string name;
  /// A number unique to the task within its loop, in creation order (the N of "task-N").
  std::uint64_t id = 0;
  /// "running", "ready" or "waiting".
  std::string state;
  /// What a waiting task waits on: "sleep", "Event.wait", "Lock.acquire", "Queue.get",
  /// "Queue.put", "Semaphore.acquire", "Condition.wait", "Barrier.wait", "wait_io",
  /// "Pollable.poll", "ThreadSafeFlag.wait", "await", "gather", "TaskGroup"; empty otherwise.
  std::string waits_on;
  /// The object waited on, in words: "fd 5 read", "task 'worker'", "0x7ff...".
  std::string detail;
  /// The Event, Lock, Queue's waiters, flag... waited on, or nullptr.
  const void* object = nullptr;
  /// A waiting task's deadline (loop clock, µs), -1: none.
  Micros until = -1;
  /// How long it has waited, by the loop's clock (µs).
  Micros waiting_us = 0;
};

/// CPython's asyncio.all_tasks(), as a snapshot: every task of `loop` not yet done, in the
/// order they were created. Loop thread.
std::vector<TaskInfo> all_tasks(Loop& loop = get_event_loop());

/// Writes all_tasks() as a table, one line per task: id, name, state, what it waits on,
/// for how long, and its deadline. Loop thread.
void dump_tasks(std::ostream& out, Loop& loop = get_event_loop());

}  // namespace asyncio
