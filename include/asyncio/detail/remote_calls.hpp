// Calls posted to a loop from other threads (call_soon_threadsafe): a lock-free inbox that the
// loop drains at a switch, as it drains ThreadSafeFlags (src/core/remote_calls.cpp).
#pragma once

#include <atomic>

#include "asyncio/detail/scheduler.hpp"

namespace asyncio {

class Loop;

namespace detail {

struct RemoteCallQueue;

/// A call posted from another thread (call_soon_threadsafe); started as a task on the loop.
struct RemoteCall {
  RemoteCall* next = nullptr;
  virtual ~RemoteCall() = default;
  virtual void start(RemoteCallQueue& queue) = 0;  // loop thread, inside the loop's run
};

/// The loop's lock-free inbox of RemoteCalls: any thread pushes, the loop starts them at its
/// next switch, at most kMaxRunning at a time.
struct RemoteCallQueue final : FlagNode {
  static constexpr int kMaxRunning = 1024;
  explicit RemoteCallQueue(Loop& owner) : loop(owner) {}
  RemoteCallQueue(const RemoteCallQueue&) = delete;
  RemoteCallQueue& operator=(const RemoteCallQueue&) = delete;
  ~RemoteCallQueue();  // deletes the calls that never started
  /// Takes ownership of `call` and starts it as a task at the loop's next switch. Lock-free,
  /// any thread; the caller allocated `call`, so not from a signal handler.
  void post(RemoteCall* call) noexcept;
  void on_signalled() override;
  void call_finished() noexcept;  // a started call's task ended
  Loop& loop;
  std::atomic<RemoteCall*> calls{nullptr};
  RemoteCall* waiting = nullptr;  // taken off `calls`, in order, not started yet
  RemoteCall* waiting_tail = nullptr;
  int running = 0;
};

}  // namespace detail
}  // namespace asyncio
