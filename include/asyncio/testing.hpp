// Testing on virtual time: asyncio::testing::run(main) runs a program on a loop whose clock
// stands still while tasks run and jumps straight to the next deadline when every task waits
// (autojump). A program that sleeps for an hour finishes at once, with the same order of events
// as on a real port; timers, the low-power grid and the fast-I/O bound fall at exact times.
// Interrupt-like events (a ThreadSafeFlag set, a device becoming ready) are scripted at chosen
// virtual times with at(). Everything here runs on the loop's thread; virtual time knows no
// other thread, so a flag set from a real thread or a signal belongs on a real loop.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <utility>

#include "asyncio/detail/duration.hpp"
#include "asyncio/detail/virtual_backend.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/pollable.hpp"
#include "asyncio/task.hpp"
#include "asyncio/threadsafe_flag.hpp"

namespace asyncio::testing {

namespace detail {
/// The virtual-time backend of the thread's loop; RuntimeError naming `what` if it has none.
asyncio::detail::VirtualBackend& backend(const char* what);
/// Gives the thread a real loop again after run().
void restore_thread_loop() noexcept;
}  // namespace detail

/// asyncio::run(main) on virtual time: the thread gets a new virtual-time loop (at time 0) for
/// the run and a new ordinary loop afterwards. Returns main's value or rethrows its exception.
/// If every task ends up waiting on something no timer or scripted event can bring, the loop
/// stops with a message on stderr and run() throws RuntimeError (main is not done).
template <class F, class... Args>
auto run(F&& main, Args&&... args) {
  if (get_event_loop().is_running()) throw RuntimeError("testing::run: the loop is already running");
  new_event_loop(Loop::Options{"virtual"});
  struct Restore {
    Restore() = default;
    Restore(const Restore&) = delete;
    Restore& operator=(const Restore&) = delete;
    ~Restore() { detail::restore_thread_loop(); }
  } restore;
  return asyncio::run(std::forward<F>(main), std::forward<Args>(args)...);
}

/// True when the thread's loop runs on virtual time.
bool active();

/// The virtual clock: time since the loop was made.
inline std::chrono::microseconds now() {
  return std::chrono::microseconds(detail::backend("now").now());
}

/// Moves the virtual clock forward by `duration` at once, as if the calling task had computed
/// for that long without yielding: timers that fell due meanwhile run at the next switch, late.
template <class Rep, class Period>
void advance(std::chrono::duration<Rep, Period> duration) {
  detail::backend("advance").advance(asyncio::detail::to_micros(duration, "advance"));
}

/// Runs `event` on the loop's thread when the virtual clock reaches `time`, between two tasks,
/// as an interrupt handler would (at once if that time has passed). Events set for the same
/// time run in the order they were added. An exception from `event` goes to the loop's
/// exception handler.
template <class Rep, class Period>
void at(std::chrono::duration<Rep, Period> time, std::function<void()> event) {
  detail::backend("at").at(asyncio::detail::to_micros(time, "at"), std::move(event));
}

/// at(now() + delay, event).
template <class Rep, class Period>
void after(std::chrono::duration<Rep, Period> delay, std::function<void()> event) {
  auto& backend = detail::backend("after");
  backend.at(asyncio::detail::deadline_after(backend.now(),
                                             asyncio::detail::to_micros(delay, "after")),
             std::move(event));
}

/// Sets `flag` at virtual time `time`, as an interrupt handler would.
template <class Rep, class Period>
void set_flag_at(ThreadSafeFlag& flag, std::chrono::duration<Rep, Period> time) {
  at(time, [&flag] { flag.set(); });
}

/// Scripted events not yet run.
std::size_t pending_events();

/// Suspends the calling task until no other task is ready to run, without moving the clock:
/// every other task then waits on a timer, an event or I/O (Trio's wait_all_tasks_blocked).
void wait_idle();

/// A pollable device whose readiness a test sets by hand or at chosen times.
class Device final : public Pollable {
 public:
  unsigned poll(unsigned events) override { return ready_ & events; }
  /// Marks `events` (POLL_RD, POLL_WR, ...) ready; the loop sees it at its next poll.
  void set(unsigned events) { ready_ |= events; }
  /// Marks `events` (default: all) not ready.
  void clear(unsigned events = ~0u) { ready_ &= ~events; }
  /// The events now marked ready.
  unsigned ready() const { return ready_; }
  /// set(events) at virtual time `time`.
  template <class Rep, class Period>
  void set_at(std::chrono::duration<Rep, Period> time, unsigned events) {
    at(time, [this, events] { set(events); });
  }

 private:
  unsigned ready_ = 0;
};

}  // namespace asyncio::testing
