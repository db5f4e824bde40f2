// The ready queue and its two policies (docs/semantics.md#run-order, docs/semantics.md#fast-io).
//
// MicroPython keeps one heap keyed by due time. Every task in our ready queue is already due,
// so two FIFOs ordered by due time give the same order with O(1) operations:
//   - `due_` holds tasks made ready by time, sleep_ms(0), events and round-robin I/O; they
//     arrive in non-decreasing due order because the loop moves expired timers in before it
//     queues anything stamped with a later clock reading.
//   - `io_` holds tasks woken by I/O or a ThreadSafeFlag in fast-I/O mode. The seed queues
//     them "as if due 1000 ms ago"; we keep exactly that key, so the head of `io_` runs first
//     unless the head of `due_` has been due for longer than the bound (the starvation bound).
#pragma once

#include <cassert>

#include "asyncio/detail/task_record.hpp"

namespace asyncio::detail {

class TaskFifo {
 public:
  bool empty() const { return head_ == nullptr; }
  TaskRecord* front() const { return head_; }
  void push(TaskRecord* task) {
    task->ready_next = nullptr;
    if (tail_) {
      tail_->ready_next = task;
    } else {
      head_ = task;
    }
    tail_ = task;
  }
  TaskRecord* pop() {
    TaskRecord* task = head_;
    head_ = task->ready_next;
    if (!head_) tail_ = nullptr;
    task->ready_next = nullptr;
    return task;
  }

 private:
  TaskRecord* head_ = nullptr;
  TaskRecord* tail_ = nullptr;
};

/// How I/O-woken tasks are ordered (docs/semantics.md#fast-io): behind every task already due
/// (round-robin, MicroPython's default), or ahead of them within the starvation bound.
enum class Scheduling : unsigned char { kRoundRobin, kFastIo };

class ReadyQueue {
 public:
  /// The seed's value: an I/O-woken task is queued as if due 1000 ms ago.
  static constexpr Micros kDefaultIoPriorityBound = 1'000'000;

  bool empty() const { return due_.empty() && io_.empty(); }
  Scheduling scheduling() const { return scheduling_; }
  void set_scheduling(Scheduling scheduling) { scheduling_ = scheduling; }
  bool fast_io() const { return scheduling_ == Scheduling::kFastIo; }
  Micros io_priority_bound() const { return io_priority_bound_; }
  void set_io_priority_bound(Micros bound) { io_priority_bound_ = bound; }

  /// A task due at `due` (never later than the loop's current time).
  void push_due(TaskRecord* task, Micros due) {
    task->due = due;
    task->state = TaskState::kReady;
    due_.push(task);
  }

  /// A finished task queued for one more turn, to report an exception nobody retrieved
  /// (docs/semantics.md#exceptions); it stays kDone, which is how pop()'s caller tells it apart.
  void push_done(TaskRecord* task, Micros due) {
    task->due = due;
    due_.push(task);
  }

  /// A task woken by I/O or a ThreadSafeFlag at time `now`.
  void push_io(TaskRecord* task, Micros now) {
    if (!fast_io()) return push_due(task, now);
    task->due = now - io_priority_bound_;
    task->state = TaskState::kReady;
    io_.push(task);
  }

  /// The head of the normal FIFO: what pop() returns next unless an I/O-woken task goes first
  /// (for prefetching).
  const TaskRecord* peek() const { return due_.front(); }

  /// The next task by (due time, arrival order), or nullptr.
  TaskRecord* pop() {
    if (io_.empty()) return due_.empty() ? nullptr : due_.pop();
    if (due_.empty()) return io_.pop();
    // Strictly earlier only: at equal keys the normal task arrived first.
    return io_.front()->due < due_.front()->due ? io_.pop() : due_.pop();
  }

 private:
  TaskFifo due_;
  TaskFifo io_;
  Micros io_priority_bound_ = kDefaultIoPriorityBound;
  Scheduling scheduling_ = Scheduling::kRoundRobin;
};

}  // namespace asyncio::detail
