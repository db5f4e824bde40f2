// Suspended tasks with a deadline, ordered by (deadline, arrival): a binary min-heap from which
// a woken or cancelled task leaves in O(log n).
//
// Sifting must not touch the task records: with many timers each record is a cache miss, and
// writing a heap position into every record a sift passes showed in bench/timers' CPU. So the
// heap array holds the keys and a small slot number, and two dense
// arrays indexed by slot map it to the task and to its position; a task remembers only its
// slot, written once when it enters the heap and once when it leaves.
#pragma once

#include <cassert>
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


inline void TimerHeap::push(TaskRecord* task) {
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

inline TaskRecord* TimerHeap::pop() {
  const std::uint32_t slot = heap_.front().slot;
  TaskRecord* task = tasks_[slot];
  erase_at(0);
  task->timer_slot = kNoTimerSlot;
  return task;
}

inline void TimerHeap::remove(TaskRecord* task) {
  const std::uint32_t slot = task->timer_slot;
  assert(slot < position_.size() && tasks_[slot] == task);
  erase_at(position_[slot]);
  task->timer_slot = kNoTimerSlot;
}

inline void TimerHeap::erase_at(std::size_t index) {
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

inline void TimerHeap::sift_up(std::size_t index) {
  const Entry entry = heap_[index];
  while (index > 0) {
    const std::size_t parent = (index - 1) / 2;
    if (!before(entry, heap_[parent])) break;
    place(index, heap_[parent]);
    index = parent;
  }
  place(index, entry);
}

inline void TimerHeap::sift_down(std::size_t index) {
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
