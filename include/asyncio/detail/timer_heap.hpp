// Suspended tasks with a deadline, ordered by (deadline, arrival): a binary min-heap from which
// a woken or cancelled task leaves in O(log n).
//
// Sifting must not touch the task records: with many timers each record is a cache miss, and
// writing a heap position into every record a sift passes showed in bench/timers' CPU. So the
// heap array holds the keys and a small slot number, and two dense
// arrays indexed by slot map it to the task and to its position; a task remembers only its
// slot, written once when it enters the heap and once when it leaves.
#pragma once

#include <cstdint>
#include <vector>

#include "asyncio/detail/task_record.hpp"

namespace asyncio::detail {

class TimerHeap {
 public:
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  TaskRecord* top() const { return tasks_[heap_.front().slot]; }
  Micros top_due() const { return heap_.front().due; }
  static bool contains(const TaskRecord* task) { return task->timer_slot != kNoTimerSlot; }
  /// Adds `task`, keyed by task->due and task->sequence.
  void push(TaskRecord* task);
  TaskRecord* pop();
  void remove(TaskRecord* task);

 private:
  struct Entry {
    Micros due;
    std::uint64_t sequence;
    std::uint32_t slot;
  };
  static bool before(const Entry& a, const Entry& b) {
    return a.due != b.due ? a.due < b.due : a.sequence < b.sequence;
  }
  void place(std::size_t index, const Entry& entry) {
    heap_[index] = entry;
    position_[entry.slot] = static_cast<std::uint32_t>(index);
  }
  void erase_at(std::size_t index);
  void sift_up(std::size_t index);
  void sift_down(std::size_t index);

  std::vector<Entry> heap_;
  std::vector<TaskRecord*> tasks_;        // slot -> task
  std::vector<std::uint32_t> position_;   // slot -> index in heap_
  std::vector<std::uint32_t> free_slots_;
};

}  // namespace asyncio::detail
