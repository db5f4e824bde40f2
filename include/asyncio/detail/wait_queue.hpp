// A FIFO of parked tasks: the one waiting mechanism behind Event, Lock, Queue, Semaphore and
// Condition. Loop thread only.
#pragma once

#include "asyncio/detail/intrusive_list.hpp"
#include "asyncio/detail/task_record.hpp"
#include "asyncio/detail/registry.hpp"
#include "asyncio/detail/scheduler.hpp"

namespace asyncio::detail {

/// A task parked on a wait list; lives in the waiting task's frame.
struct TaskWaitNode : ListNode {
  TaskRecord* task = nullptr;
  bool object_gone = false;  // woken because the waitable was destroyed
};

/// Throws a RuntimeError naming the wait (`what`, e.g. "Event.wait") whose object was destroyed
/// while the task waited on it; out of line.
[[noreturn, gnu::cold]] void throw_waitable_destroyed(const char* what);

/// The running task; RuntimeError naming `what` when called outside a task. Inline: sleep_ms(0)
/// runs it at every switch.
inline TaskRecord* running_task(const char* what) {
  Scheduler* scheduler = running_scheduler;
  TaskRecord* task = scheduler ? scheduler->current() : nullptr;
  if (!task) [[unlikely]] throw_outside_task(what);
  return task;
}

class WaitQueue {
 public:
  WaitQueue() = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;
  /// The nodes live in the waiters' frames: wake them with an error rather than leave them
  /// linked to a dead list.
  ~WaitQueue() {
    while (auto* node = static_cast<TaskWaitNode*>(waiters_.pop_front())) {
      node->object_gone = true;
      node->task->scheduler->wake(node->task, WakeReason::kEvent);
    }
  }

  bool empty() const { return waiters_.empty(); }

  /// Parks the current task until wake_one() or wake_all() picks it. If it is cancelled
  /// instead, the CancelledError propagates; if a wake-up had already been handed to it (it
  /// was woken, then cancelled before it ran), `pass_on()` runs first so that the wake-up is
  /// not lost: a primitive that hands something over passes it to the next waiter there.
  template <class PassOn>
  void wait(const char* what, PassOn&& pass_on) {
    TaskWaitNode node;
    wait(node, what, pass_on);
  }
  void wait(const char* what) {
    wait(what, [] {});
  }
  /// The same with the caller's node: a waker can leave an outcome in a derived node.
  template <class PassOn>
  void wait(TaskWaitNode& node, const char* what, PassOn&& pass_on) {
    node.task = running_task(what);
    note_wait(node.task, what, this);
    waiters_.push_back(&node);
    try {
      node.task->scheduler->suspend();
    } catch (...) {
      // Still linked: nobody woke us. Unlinked: a waker popped us and counts on us, unless
      // the object is gone (then there is nobody to pass anything to).
      if (node.linked()) {
        node.unlink();
      } else if (!node.object_gone) {
        pass_on();
      }
      throw;
    }
    if (node.object_gone) [[unlikely]] throw_waitable_destroyed(what);
  }

  /// Wakes the oldest waiter, after `before_wake(node)`; false if there is none.
  template <class BeforeWake>
  bool wake_one(BeforeWake&& before_wake) {
    auto* node = static_cast<TaskWaitNode*>(waiters_.front());
    if (!node) return false;
    node->task->scheduler->check_thread("Event.set, Lock.release or another wake-up");
    node->unlink();
    before_wake(*node);
    node->task->scheduler->wake(node->task, WakeReason::kEvent);
    return true;
  }
  bool wake_one() {
    return wake_one([](TaskWaitNode&) {});
  }
  template <class BeforeWake>
  void wake_all(BeforeWake&& before_wake) {
    while (wake_one(before_wake)) {
    }
  }
  void wake_all() {
    wake_all([](TaskWaitNode&) {});
  }

 private:
  List waiters_;
};

}  // namespace asyncio::detail
