// The event loop: MicroPython's scheduler (core.py) with asyncio_alt's two policies.
//
// One loop per thread. Tasks are fibers; a task that waits suspends through the loop's
// detail::Scheduler, which picks the next task and switches straight to it (no trip through a
// scheduler fiber). This header holds the user's API only; the library reaches the scheduler
// through asyncio/detail/loop_access.hpp.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "asyncio/detail/loop_access.hpp"
#include "asyncio/detail/port.hpp"
#include "asyncio/detail/registry.hpp"
#include "asyncio/detail/remote_calls.hpp"
#include "asyncio/detail/scheduler.hpp"
#include "asyncio/loop_stats.hpp"

namespace asyncio {

class Pollable;
class ThreadPoolExecutor;

/// Loop::set_busy_poll's window: fixed, or adapted to how long the waits turn out to be.
enum class BusyPoll { kFixed, kAdaptive };

/// What call_exception_handler receives (CPython's context dict).
struct ExceptionContext {
  /// What went wrong, e.g. "Task exception wasn't retrieved".
  std::string message;
  /// The exception involved, or nullptr.
  std::exception_ptr exception;
  /// The name of the task involved, or empty.
  std::string task;
};

/// MicroPython's event loop: runs the tasks of one thread (docs/semantics.md#tasks). Every
/// member is for the loop's own thread unless it says otherwise.
class Loop {
 public:
  /// How a Loop is made.
  struct Options {
    /// "auto" (default: io_uring, falling back to epoll), "uring" or "epoll". Empty: read
    /// ASYNCIO_BACKEND from the environment, then "auto".
    std::string backend;
  };
  /// A handler for errors no task will see (CPython's set_exception_handler); called on the
  /// loop's thread with the loop and what went wrong.
  using ExceptionHandler = std::function<void(Loop&, const ExceptionContext&)>;

  /// A new loop starts in the thread's module-level modes (asyncio::roundrobin(),
  /// asyncio::power_mode()).
  Loop();
  /// As Loop(), on the backend `options` names: ValueError for an unknown name, OSError if
  /// it cannot be made.
  explicit Loop(Options options);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  /// Runs tasks until stop() is called.
  void run_forever();
  /// While tasks wait on pollables and nothing else is due, the loop polls them this often.
  static constexpr Micros kPollableIntervalUs = detail::Scheduler::kPollableIntervalUs;
  /// Low-power mode's slice: the seed's 20 ms, "chosen based on measurements on RP2".
  static constexpr Micros kLowPowerSliceUs = detail::Scheduler::kLowPowerSliceUs;
  /// Makes run_forever()/run_until_complete() return at the next task switch.
  void stop() noexcept { scheduler_.stop(); }
  /// Cancels every remaining task and lets them unwind. The loop can be used again.
  void close();
  /// new_event_loop(): closes this loop and makes it a new one in place, with a new backend
  /// and the thread's module-level modes, so that every Loop& to it stays valid (MicroPython's
  /// loop is one object too). The exception handler is kept, as MicroPython's is. If the new
  /// backend cannot be made, the loop is left closed but usable and the error propagates.
  /// RuntimeError while the loop runs.
  void renew(Options options);
  /// True while run_forever(), run_until_complete() or run() runs this loop.
  bool is_running() const { return scheduler_.is_running(); }

  // asyncio_alt's modes (docs/semantics.md#fast-io, docs/semantics.md#low-power).

  /// True in round-robin mode (the default): a task woken by I/O queues behind every task
  /// already due; false in fast-I/O mode, where it goes first (within io_priority_bound()).
  bool roundrobin() const {
    return scheduler_.ready_queue().scheduling() == detail::Scheduling::kRoundRobin;
  }
  /// Round-robin (true) or fast-I/O (false) scheduling, for this loop only.
  void roundrobin(bool on) {
    scheduler_.ready_queue().set_scheduling(on ? detail::Scheduling::kRoundRobin
                                               : detail::Scheduling::kFastIo);
  }
  /// True in low-power mode: the loop batches wake-ups into kLowPowerSliceUs slots.
  bool power_mode() const { return scheduler_.low_power(); }
  /// Turns low-power mode on or off for this loop only; ValueError if the port cannot do it.
  void power_mode(bool on);
  /// Fast-I/O starvation bound: an I/O-woken task is queued as if due this long ago (1 s in
  /// the seed), so a normal task due for longer than this still runs before it.
  Micros io_priority_bound() const { return scheduler_.ready_queue().io_priority_bound(); }
  /// Sets io_priority_bound() (µs); ValueError if negative.
  void set_io_priority_bound(Micros bound);
  /// When the loop has to block for a timer, it wakes on a grid of this many µs, so that
  /// timers due within one slot are served by one wake-up. 0 or 1: exact deadlines.
  Micros timer_resolution() const { return scheduler_.timer_resolution(); }
  /// Sets timer_resolution() (µs); ValueError if negative.
  void set_timer_resolution(Micros resolution);
  /// Picked by measurement in bench/timers (docs/benchmarks.md): the coarsest grid that keeps
  /// timer lateness well under a millisecond while timers due together share a wake-up.
  static constexpr Micros kDefaultTimerResolutionUs = detail::Scheduler::kDefaultTimerResolutionUs;
  /// Busy polling, as Linux's SO_BUSY_POLL: when the loop would block while tasks wait on file
  /// descriptors, it first polls them for up to `us` µs (io_uring: reading the shared ring, no
  /// system call; epoll: epoll_wait with no timeout). I/O that arrives meanwhile is served
  /// without a sleep and a wake-up, which on a VM cost tens of µs each: a request/response
  /// peer that answers within the window sees much lower latency. The price is CPU: up to `us`
  /// µs spun per blocking wait. 0 (the default) never spins. Ignored in low-power mode and
  /// while no task waits on a descriptor (timers and ThreadSafeFlags alone never spin).
  ///
  /// BusyPoll::kAdaptive makes `us` a ceiling and adapts the window as KVM's halt polling
  /// does: it starts at 0, doubles (from 10 µs) after a wait that blocked for less than the
  /// ceiling, and halves (to 0 below 10 µs) after one that blocked longer. A fast
  /// request/response peer then gets the spin it needs, and an idle or slow one soon costs no
  /// spinning at all.
  Micros busy_poll() const { return scheduler_.busy_poller().ceiling(); }
  /// Whether busy_poll() is a fixed window or an adaptive one's ceiling.
  BusyPoll busy_poll_mode() const {
    return scheduler_.busy_poller().adaptive() ? BusyPoll::kAdaptive : BusyPoll::kFixed;
  }
  /// Sets busy_poll() to `us` µs (0 to 1,000,000; ValueError otherwise) and its mode.
  void set_busy_poll(Micros us, BusyPoll mode = BusyPoll::kFixed);

  /// The settings above with a std::chrono duration (e.g. 1us, 2ms), rounded up to whole µs.
  template <class Rep, class Period>
  void set_io_priority_bound(std::chrono::duration<Rep, Period> bound) {
    set_io_priority_bound(std::chrono::ceil<std::chrono::microseconds>(bound).count());
  }
  /// set_timer_resolution() with a std::chrono duration, rounded up to whole µs.
  template <class Rep, class Period>
  void set_timer_resolution(std::chrono::duration<Rep, Period> resolution) {
    set_timer_resolution(std::chrono::ceil<std::chrono::microseconds>(resolution).count());
  }
  /// set_busy_poll() with a std::chrono duration, rounded up to whole µs.
  template <class Rep, class Period>
  void set_busy_poll(std::chrono::duration<Rep, Period> window, BusyPoll mode = BusyPoll::kFixed) {
    set_busy_poll(std::chrono::ceil<std::chrono::microseconds>(window).count(), mode);
  }

  /// Stall detector (docs/using.md#observing-the-loop): a task that runs longer than `us`
  /// without suspending is reported with its name and how long it ran; on Linux also with a
  /// backtrace of the loop thread taken while it still runs. 0 (the default, unless
  /// ASYNCIO_STALL_MS is set) turns it off. Call on the loop's thread: it is the one sampled.
  void set_stall_threshold(Micros us);
  /// set_stall_threshold() with a std::chrono duration, rounded up to whole µs.
  template <class Rep, class Period>
  void set_stall_threshold(std::chrono::duration<Rep, Period> threshold) {
    set_stall_threshold(std::chrono::ceil<std::chrono::microseconds>(threshold).count());
  }

  /// Installs the handler for errors no task will see; an empty one restores the default.
  void set_exception_handler(ExceptionHandler handler);
  /// The installed handler, or an empty one when the default is in use.
  ExceptionHandler get_exception_handler() const { return exception_handler_; }
  /// Passes `context` to the installed handler, or to default_exception_handler(). An
  /// exception the handler throws is logged and dropped.
  void call_exception_handler(const ExceptionContext& context);
  /// Logs the message, the task's name and the exception's what() as one error line.
  static void default_exception_handler(Loop& loop, const ExceptionContext& context);

  /// The I/O backend in use: "uring", "epoll", "virtual", or the board's name.
  const char* backend_name() const { return scheduler_.backend().name(); }

  /// The scheduler's clock (µs). Refreshed at every switch while timers are pending.
  Micros time() const { return scheduler_.time(); }

  /// What the loop has done since it was made (counts, time blocked). Loop thread.
  LoopStats stats() const {
    const detail::SchedulerStats& counts = scheduler_.stats();
    return {counts.task_switches, counts.task_wakeups,  counts.blocking_waits,
            counts.time_blocked_us, counts.io_polls, counts.empty_io_polls,
            counts.low_power_batches};
  }

  /// A console interrupt (SIGINT): cancels the main task of run() at the loop's next switch,
  /// and run() then raises KeyboardInterrupt. Async-signal-safe, any thread. False if an
  /// interrupt is already pending (the port then ends the program, as a second Ctrl-C does).
  bool interrupt() noexcept;

  /// CPython's loop.run_in_executor: runs `fn()` on `executor`'s threads (nullptr: the default
  /// pool) and suspends the calling task until it returns its value or rethrows. Linux only:
  /// defined in asyncio/threads.hpp.
  template <class F>
  auto run_in_executor(ThreadPoolExecutor* executor, F fn);

  /// The loop running on the calling thread, or nullptr outside run_*().
  static Loop* running() noexcept {
    detail::Scheduler* scheduler = detail::running_scheduler;
    return scheduler ? &scheduler->loop() : nullptr;
  }
  /// The loop owning the calling thread (created on first use).
  static Loop& current_thread_loop();
  /// Makes `loop` the calling thread's loop, closing the one it replaces; RuntimeError if
  /// that one is running.
  static void set_current_thread_loop(std::shared_ptr<Loop> loop);

 private:
  friend detail::Scheduler& detail::scheduler_of(Loop& loop) noexcept;
  friend const detail::Scheduler& detail::scheduler_of(const Loop& loop) noexcept;
  friend detail::RemoteCallQueue& detail::remote_calls_of(Loop& loop) noexcept;
  friend bool detail::take_interrupt(Loop& loop) noexcept;

  /// Runs the interrupt request on the loop thread.
  struct InterruptNode final : detail::FlagNode {
    explicit InterruptNode(Loop& owner) : loop(owner) {}
    void on_signalled() override;
    Loop& loop;
  };
  explicit Loop(std::unique_ptr<detail::IoBackend> backend);

  detail::Scheduler scheduler_;
  ExceptionHandler exception_handler_;
  std::atomic<bool> interrupt_requested_{false};
  bool interrupted_ = false;  // the request reached the loop thread
  InterruptNode interrupt_node_{*this};
  detail::RemoteCallQueue remote_calls_{*this};
};

namespace detail {
inline Scheduler& scheduler_of(Loop& loop) noexcept { return loop.scheduler_; }
inline const Scheduler& scheduler_of(const Loop& loop) noexcept { return loop.scheduler_; }
inline RemoteCallQueue& remote_calls_of(Loop& loop) noexcept { return loop.remote_calls_; }
}  // namespace detail

/// The calling thread's loop (MicroPython's get_event_loop()).
Loop& get_event_loop();
/// Replaces the calling thread's loop with a new one and returns it.
Loop& new_event_loop(Loop::Options options = {});

/// asyncio_alt's module-level mode switches: they set the mode of the thread's loop and of
/// every loop the thread makes later (new_event_loop() keeps them), as the module's settings do
/// in MicroPython. Loop::roundrobin(bool) / Loop::power_mode(bool) change one loop only.
bool roundrobin();
void roundrobin(bool on);
bool power_mode();
void power_mode(bool on);

}  // namespace asyncio
