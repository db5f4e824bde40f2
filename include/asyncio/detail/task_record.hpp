// The scheduler's record of one task: its fiber, its place in the queues, its outcome.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "asyncio/detail/intrusive_list.hpp"
#include "asyncio/detail/port.hpp"

namespace asyncio::detail {

enum class TaskState : std::uint8_t {
  kReady,      // in a ready queue, not yet started or resumed
  kRunning,    // the current task
  kSuspended,  // waiting: in the timer heap and/or on a wait source
  kDone,       // finished: result or error is set, stack released
};

/// Why a suspended task was resumed.
enum class WakeReason : std::uint8_t { kNone, kTimeout, kEvent, kIo, kCancel };

/// Called when a task finishes; nodes live in the waiter's frame (await, gather).
struct DoneCallback : ListNode {
  void (*fn)(DoneCallback* self, TaskRecord* finished) = nullptr;
};

/// Links a task into the loop's list of live tasks.
struct LiveLink : ListNode {
  TaskRecord* task = nullptr;
};

inline constexpr std::uint32_t kNoTimerSlot = ~std::uint32_t{0};

struct TaskRecord : Fiber {
  TaskRecord() = default;
  TaskRecord(const TaskRecord&) = delete;
  TaskRecord& operator=(const TaskRecord&) = delete;
  virtual ~TaskRecord() = default;

  /// Runs the task's function and stores its value; exceptions propagate to the caller.
  virtual void invoke() = 0;

  Scheduler* scheduler = nullptr;  // the loop's scheduler
  TaskRecord* ready_next = nullptr;    // link in a ready FIFO
  Micros due = 0;                      // ready-queue key / timer deadline
  std::uint64_t sequence = 0;          // arrival order: ties between equal due times (docs/semantics.md#run-order)
  std::uint32_t timer_slot = kNoTimerSlot;  // the timer heap's handle while in it
  TaskState state = TaskState::kReady;
  WakeReason wake_reason = WakeReason::kNone;
  bool cancel_pending = false;         // cancel() called: throw at the next suspension point
  bool cancelled = false;              // finished by CancelledError
  bool started = false;
  bool is_main = false;                // run_until_complete's task: its end stops the loop
  // Someone awaited, gathered or asked for the outcome: an exception is theirs, not the
  // exception handler's (docs/semantics.md#exceptions). Set through const handles too.
  mutable bool retrieved = false;
  unsigned io_events = 0;              // readiness delivered with an I/O wake-up
  int io_error = 0;                    // errno delivered with an I/O wake-up (0: none)
  int references = 0;                  // handles + the loop while not done
  TaskRecord* awaiting = nullptr;      // the task this one awaits: cancel() forwards to it
  Micros scope_deadline = -1;          // earliest armed timeout() scope deadline (-1: none)
  std::exception_ptr error;
  List done_callbacks;                 // DoneCallback nodes: awaiters, gather
  LiveLink live_link;                  // in Loop's list of tasks not yet done
  std::string name;
  std::uint64_t id = 0;
  // What the task waits on while suspended, for asyncio::all_tasks(): set by the call that
  // suspends it (a few stores), cleared when it resumes; the loop stamps waiting_since.
  const char* waits_on = nullptr;     // "Event.wait", "sleep", "wait_io"... (static text)
  const void* wait_object = nullptr;  // the object waited on; an awaited task's TaskRecord
  int wait_fd = -1;                   // wait_io's descriptor
  unsigned wait_events = 0;           // wait_io's / a Pollable's direction
  Micros waiting_since = 0;
};

/// Records what `task` is about to wait on (see TaskRecord::waits_on).
inline void note_wait(TaskRecord* task, const char* what, const void* object = nullptr,
                      int fd = -1, unsigned events = 0) noexcept {
  task->waits_on = what;
  task->wait_object = object;
  task->wait_fd = fd;
  task->wait_events = events;
}

void add_reference(TaskRecord* task) noexcept;
void drop_reference(TaskRecord* task) noexcept;

}  // namespace asyncio::detail
