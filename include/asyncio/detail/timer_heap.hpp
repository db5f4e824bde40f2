// Suspended tasks with a deadline, ordered by (deadline, arrival): a binary min-heap that
// records each task's position so that a woken or cancelled task leaves it in O(log n).
#pragma once

#include <vector>

#include "asyncio/detail/task_record.hpp"

namespace asyncio::detail {

class TimerHeap {
 public:
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  TaskRecord* top() const { return heap_.front(); }
  void push(TaskRecord* task);
  TaskRecord* pop();
  void remove(TaskRecord* task);

 private:
  static bool before(const TaskRecord* a, const TaskRecord* b) {
    return a->due != b->due ? a->due < b->due : a->sequence < b->sequence;
  }
  void place(std::size_t index, TaskRecord* task) {
    heap_[index] = task;
    task->heap_index = index;
  }
  void sift_up(std::size_t index);
  void sift_down(std::size_t index);

  std::vector<TaskRecord*> heap_;
};

}  // namespace asyncio::detail
