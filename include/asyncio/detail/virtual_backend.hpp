// Virtual time: an IoBackend whose clock jumps straight to the next deadline whenever the loop
// would block (autojump), with scripted events standing in for interrupts. Portable: no OS
// header, so that it builds on every target. The user-facing side is asyncio/testing.hpp.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>

#include "asyncio/detail/port.hpp"

namespace asyncio::detail {

struct TaskRecord;

class VirtualBackend final : public IoBackend {
 public:
  explicit VirtualBackend(Loop& loop) : loop_(loop) {}

  const char* name() const override { return "virtual"; }
  void poll_if_ready() override {
    if (!events_.empty() && events_.begin()->first <= now_) run_due_events();
  }
  /// Jumps the clock to `deadline` or to the next scripted event, whichever comes first.
  void wait(Micros deadline) override;
  void sleep_without_io(Micros deadline, bool timer_due) override;
  void wake() noexcept override { woken_.store(true); }
  const Micros* virtual_clock() const noexcept override { return &now_; }

  Micros now() const { return now_; }
  /// Moves the clock forward by `us` at once, as a task computing for that long would.
  void advance(Micros us);
  /// Runs `event` on the loop when the clock reaches `at` (at once if it already has), between
  /// two tasks, as an interrupt handler would. Events at the same time run in the order added.
  void at(Micros at, std::function<void()> event);
  std::size_t pending_events() const { return events_.size(); }
  /// Suspends the calling task until no other task is ready to run at the current time.
  void wait_idle();

 private:
  void run_due_events();
  /// Instead of blocking: wakes the wait_idle() caller, if any. True if it did.
  bool wake_idle_waiter();

  Loop& loop_;
  Micros now_ = 0;
  // Scripted events still to come count as waiters_: they keep the loop from concluding that
  // nothing can happen.
  std::multimap<Micros, std::function<void()>> events_;
  std::atomic<bool> woken_{false};
  TaskRecord* idle_waiter_ = nullptr;
};

/// What a port's make_backend returns for the name "virtual" (the Linux port does; a board
/// port that leaves it out keeps the virtual backend out of its image).
std::unique_ptr<IoBackend> make_virtual_backend(Loop& loop);

}  // namespace asyncio::detail
