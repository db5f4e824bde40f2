// The remote-call inbox of a loop (call_soon_threadsafe): a lock-free stack that the loop
// drains at a switch, as it drains ThreadSafeFlags (docs/semantics.md#threadsafeflag).
#include <exception>

#include "asyncio/loop.hpp"

namespace asyncio::detail {

namespace {
void delete_all(RemoteCall* call) noexcept {
  while (call) {
    RemoteCall* next = call->next;
    delete call;
    call = next;
  }
}
}  // namespace

RemoteCallQueue::~RemoteCallQueue() {
  delete_all(calls.exchange(nullptr));
  delete_all(waiting);
}

void RemoteCallQueue::post(RemoteCall* call) noexcept {
  const ExternalAccess access;  // the loop may run the call and be gone before signal_flag()
  RemoteCall* head = calls.load(std::memory_order_relaxed);
  do {
    call->next = head;
  } while (!calls.compare_exchange_weak(head, call, std::memory_order_release,
                                        std::memory_order_relaxed));
  scheduler_of(loop).signal_flag(this);
}

void RemoteCallQueue::on_signalled() {
  // The stack is last-in first-out: append the new calls to `waiting` in posting order.
  RemoteCall* in_order = nullptr;
  RemoteCall* last = nullptr;
  for (RemoteCall* stack = calls.exchange(nullptr, std::memory_order_acquire); stack;) {
    RemoteCall* next = stack->next;
    stack->next = in_order;
    if (!in_order) last = stack;
    in_order = stack;
    stack = next;
  }
  if (in_order) {
    if (waiting_tail) {
      waiting_tail->next = in_order;
    } else {
      waiting = in_order;
    }
    waiting_tail = last;
  }
  // Threads that post faster than the calls run would otherwise make a task (and a stack)
  // per call at once; the rest start as the running ones end.
  while (waiting && running < kMaxRunning) {
    RemoteCall* call = waiting;
    waiting = call->next;
    if (!waiting) waiting_tail = nullptr;
    try {
      call->start(*this);
      ++running;
    } catch (...) {
      // No task to hand the error to: the loop's exception handler hears of it instead.
      loop.call_exception_handler(
          {"call_soon_threadsafe: could not start the call", std::current_exception(), {}});
    }
    delete call;
  }
}

void RemoteCallQueue::call_finished() noexcept {
  --running;
  if (waiting) scheduler_of(loop).signal_flag(this);
}

}  // namespace asyncio::detail
