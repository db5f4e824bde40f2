// Event and Lock (SPEC S6; MicroPython's event.py, lock.py).
#include "asyncio/event.hpp"

#include "asyncio/errors.hpp"
#include "asyncio/loop.hpp"

namespace asyncio {

using detail::TaskWaitNode;

namespace {
detail::TaskRecord* running_task(const char* what) {
  detail::TaskRecord* task = get_event_loop().current();
  if (!task) throw RuntimeError(std::string(what) + ": called outside a task");
  return task;
}
}  // namespace

void Event::set() {
  flag_ = true;
  while (auto* node = static_cast<TaskWaitNode*>(waiters_.pop_front())) {
    node->task->loop->wake(node->task, detail::WakeReason::kEvent);
  }
}

void Event::wait() {
  if (flag_) return;
  TaskWaitNode node;
  node.task = running_task("Event.wait");
  waiters_.push_back(&node);
  try {
    node.task->loop->suspend();
  } catch (...) {
    node.unlink();
    throw;
  }
}

void Lock::acquire() {
  if (!locked_) {
    locked_ = true;
    return;
  }
  TaskWaitNode node;
  node.task = running_task("Lock.acquire");
  waiters_.push_back(&node);
  try {
    node.task->loop->suspend();
  } catch (...) {
    // An unlinked node means release() already handed us the lock: pass it on, or it leaks.
    if (node.linked()) {
      node.unlink();
    } else {
      release();
    }
    throw;
  }
  // release() handed the lock over without unlocking it (FIFO hand-over).
}

void Lock::release() {
  if (!locked_) throw RuntimeError("Lock.release: lock is not acquired");
  if (auto* next = static_cast<TaskWaitNode*>(waiters_.pop_front())) {
    next->task->loop->wake(next->task, detail::WakeReason::kEvent);
  } else {
    locked_ = false;
  }
}

}  // namespace asyncio
