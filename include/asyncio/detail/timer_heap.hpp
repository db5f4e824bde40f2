// Suspended tasks with a deadline, ordered by (deadline, arrival): a binary min-heap that
// records each task's position so that a woken or cancelled task leaves it in O(log n).
// The keys are kept in the heap array itself: comparing them then touches only that array,
// not the task records (profiled in bench/timers, reading the records' keys made sift_down a
// fifth of the loop's CPU time through cache misses).
#pragma once

#include <vector>

#include "asyncio/detail/task_record.hpp"

namespace asyncio::detail {

class TimerHeap {
 public:
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  TaskRecord* top() const { return heap_.front().task; }
  Micros top_due() const { return heap_.front().due; }
  void push(TaskRecord* task);
  TaskRecord* pop();
  void remove(TaskRecord* task);

 private:
  struct Entry {
    Micros due;
    std::uint64_t sequence;
    TaskRecord* task;
  };
  static bool before(const Entry& a, const Entry& b) {
    return a.due != b.due ? a.due < b.due : a.sequence < b.sequence;
  }
  void place(std::size_t index, const Entry& entry) {
    heap_[index] = entry;
    entry.task->heap_index = index;
  }
  void sift_up(std::size_t index);
  void sift_down(std::size_t index);

  std::vector<Entry> heap_;
};

}  // namespace asyncio::detail
