// Binary min-heap of suspended tasks keyed by (deadline, arrival order).
#include "asyncio/detail/timer_heap.hpp"

#include <cassert>

namespace asyncio::detail {

void TimerHeap::push(TaskRecord* task) {
  assert(!contains(task));
  // Grow everything first, so that running out of memory leaves the heap as it was.
  if (heap_.size() == heap_.capacity()) heap_.reserve(heap_.size() * 2 + 16);
  if (free_slots_.empty() && tasks_.size() == tasks_.capacity()) {
    tasks_.reserve(tasks_.size() * 2 + 16);
    position_.reserve(tasks_.capacity());
    free_slots_.reserve(tasks_.capacity());
  }
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(tasks_.size());
    tasks_.push_back(nullptr);
    position_.push_back(0);
  }
  tasks_[slot] = task;
  task->timer_slot = slot;
  heap_.push_back({task->due, task->sequence, slot});
  sift_up(heap_.size() - 1);
}

TaskRecord* TimerHeap::pop() {
  const std::uint32_t slot = heap_.front().slot;
  TaskRecord* task = tasks_[slot];
  erase_at(0);
  task->timer_slot = kNoTimerSlot;
  return task;
}

void TimerHeap::remove(TaskRecord* task) {
  const std::uint32_t slot = task->timer_slot;
  assert(slot < position_.size() && tasks_[slot] == task);
  erase_at(position_[slot]);
  task->timer_slot = kNoTimerSlot;
}

void TimerHeap::erase_at(std::size_t index) {
  free_slots_.push_back(heap_[index].slot);
  const Entry last = heap_.back();
  heap_.pop_back();
  if (index == heap_.size()) return;  // it was the last entry
  // The moved element may belong above or below its new position.
  if (index > 0 && before(last, heap_[(index - 1) / 2])) {
    heap_[index] = last;
    sift_up(index);
  } else {
    heap_[index] = last;
    sift_down(index);
  }
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
