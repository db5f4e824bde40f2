// Calls posted to a loop from other threads (call_soon_threadsafe): a lock-free stack that the
// loop drains at a switch, as it drains ThreadSafeFlags (docs/semantics.md#threadsafeflag).
#include <exception>

#include "asyncio/loop.hpp"

namespace asyncio::detail {

RemoteCallQueue::~RemoteCallQueue() {
  for (RemoteCall* call = calls.exchange(nullptr); call;) {
    RemoteCall* next = call->next;
    delete call;
    call = next;
  }
}

void RemoteCallQueue::post(RemoteCall* call) noexcept {
  RemoteCall* head = calls.load(std::memory_order_relaxed);
  do {
    call->next = head;
  } while (!calls.compare_exchange_weak(head, call, std::memory_order_release,
                                        std::memory_order_relaxed));
  loop.signal_flag(this);
}

void RemoteCallQueue::on_signalled() {
  RemoteCall* stack = calls.exchange(nullptr, std::memory_order_acquire);
  // Start them in the order they were posted (per posting thread, at least).
  RemoteCall* in_order = nullptr;
  while (stack) {
    RemoteCall* next = stack->next;
    stack->next = in_order;
    in_order = stack;
    stack = next;
  }
  while (in_order) {
    RemoteCall* next = in_order->next;
    try {
      in_order->start();
    } catch (...) {
      // No task to hand the error to: the loop's exception handler hears of it instead.
      loop.call_exception_handler(
          {"call_soon_threadsafe: could not start the call", std::current_exception(), {}});
    }
    delete in_order;
    in_order = next;
  }
}

}  // namespace asyncio::detail
