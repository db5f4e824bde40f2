// Binary min-heap of suspended tasks keyed by (deadline, arrival order).
#include "asyncio/detail/timer_heap.hpp"

#include <cassert>

namespace asyncio::detail {

void TimerHeap::push(TaskRecord* task) {
  assert(task->heap_index == kNotInHeap);
  heap_.push_back({task->due, task->sequence, task});
  task->heap_index = heap_.size() - 1;
  sift_up(task->heap_index);
}

TaskRecord* TimerHeap::pop() {
  TaskRecord* task = heap_.front().task;
  remove(task);
  return task;
}

void TimerHeap::remove(TaskRecord* task) {
  const std::size_t index = task->heap_index;
  assert(index < heap_.size() && heap_[index].task == task);
  const Entry last = heap_.back();
  heap_.pop_back();
  task->heap_index = kNotInHeap;
  if (last.task == task) return;
  place(index, last);
  // The moved element may belong above or below its new position.
  sift_up(index);
  sift_down(last.task->heap_index);
}

void TimerHeap::sift_up(std::size_t index) {
  const Entry entry = heap_[index];
  while (index > 0) {
    const std::size_t parent = (index - 1) / 2;
    if (!before(entry, heap_[parent])) break;
    place(index, heap_[parent]);
    index = parent;
  }
  place(index, entry);
}

void TimerHeap::sift_down(std::size_t index) {
  const Entry entry = heap_[index];
  const std::size_t size = heap_.size();
  for (;;) {
    std::size_t child = 2 * index + 1;
    if (child >= size) break;
    if (child + 1 < size && before(heap_[child + 1], heap_[child])) ++child;
    if (!before(heap_[child], entry)) break;
    place(index, heap_[child]);
    index = child;
  }
  place(index, entry);
}

}  // namespace asyncio::detail
