// The event loop: MicroPython's scheduler (core.py) with asyncio_alt's two policies.
//
// One loop per thread. Tasks are fibers; a task that waits calls Loop::suspend(), which picks
// the next task and switches straight to it (no trip through a scheduler fiber).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "asyncio/detail/intrusive_list.hpp"
#include "asyncio/detail/port.hpp"
#include "asyncio/detail/ready_queue.hpp"
#include "asyncio/detail/task_record.hpp"
#include "asyncio/detail/timer_heap.hpp"
#include "asyncio/loop_stats.hpp"

namespace asyncio {

class Pollable;
class ThreadPoolExecutor;

/// Loop::set_busy_poll's window: fixed, or adapted to how long the waits turn out to be.
enum class BusyPoll { kFixed, kAdaptive };

/// What call_exception_handler receives (CPython's context dict).
struct ExceptionContext {
  std::string message;
  std::exception_ptr exception;
  std::string task;  // name of the task involved, or empty
};

namespace detail {
/// A ThreadSafeFlag as the loop sees it: an intrusive, lock-free "signalled" stack node.
struct FlagNode {
  FlagNode* next_signalled = nullptr;
  std::atomic<bool> queued{false};
  virtual void on_signalled() = 0;  // runs on the loop thread
 protected:
  ~FlagNode() = default;
};

/// A call posted from another thread (call_soon_threadsafe); started as a task on the loop.
struct RemoteCall {
  RemoteCall* next = nullptr;
  virtual ~RemoteCall() = default;
  virtual void start(struct RemoteCallQueue& queue) = 0;  // loop thread, inside the loop's run
};

/// The loop's lock-free inbox of RemoteCalls: any thread pushes, the loop starts them at its
/// next switch, at most kMaxRunning at a time (src/core/remote_calls.cpp).
struct RemoteCallQueue final : FlagNode {
  static constexpr int kMaxRunning = 1024;
  explicit RemoteCallQueue(Loop& owner) : loop(owner) {}
  RemoteCallQueue(const RemoteCallQueue&) = delete;
  RemoteCallQueue& operator=(const RemoteCallQueue&) = delete;
  ~RemoteCallQueue();  // deletes the calls that never started
  void post(RemoteCall* call) noexcept;
  void on_signalled() override;
  void call_finished() noexcept;  // a started call's task ended
  Loop& loop;
  std::atomic<RemoteCall*> calls{nullptr};
  RemoteCall* waiting = nullptr;       // taken off `calls`, in order, not started yet
  RemoteCall* waiting_tail = nullptr;
  int running = 0;
};

/// A task waiting for a Pollable (docs/semantics.md#pollables); polled at every switch.
struct PollableWait : ListNode {
  Pollable* device = nullptr;
  unsigned events = 0;
  TaskRecord* task = nullptr;
  std::exception_ptr error;  // thrown by device->poll(); rethrown in the waiting task
};
}  // namespace detail

class Loop {
 public:
  struct Options {
    /// "auto" (default: io_uring, falling back to epoll), "uring" or "epoll". Empty: read
    /// ASYNCIO_BACKEND from the environment, then "auto".
    std::string backend;
  };
  using ExceptionHandler = std::function<void(Loop&, const ExceptionContext&)>;

  /// A new loop starts in the thread's module-level modes (asyncio::roundrobin(),
  /// asyncio::power_mode()).
  Loop();
  explicit Loop(Options options);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  /// Runs tasks until stop() is called.
  void run_forever();
  /// While tasks wait on pollables and nothing else is due, the loop polls them this often.
  static constexpr Micros kPollableIntervalUs = 1000;  // MicroPython's poll hook runs per ms tick
  /// Low-power mode's slice: the seed's 20 ms, "chosen based on measurements on RP2".
  static constexpr Micros kLowPowerSliceUs = 20'000;
  /// Runs tasks until `task` is done; returns normally (the caller reads the result).
  void run_until_task_done(detail::TaskRecord* task);
  /// Makes run_forever()/run_until_complete() return at the next task switch.
  void stop() noexcept { stop_requested_ = true; }
  /// Cancels every remaining task and lets them unwind. The loop can be used again.
  void close();
  /// new_event_loop(): closes this loop and makes it a new one in place, with a new backend
  /// and the thread's module-level modes, so that every Loop& to it stays valid (MicroPython's
  /// loop is one object too). The exception handler is kept, as MicroPython's is. If the new backend cannot be made, the loop is left closed but
  /// usable and the error propagates. RuntimeError while the loop runs.
  void renew(Options options);
  bool is_running() const { return running_; }

  // asyncio_alt's modes (docs/semantics.md#fast-io, docs/semantics.md#low-power).
  bool roundrobin() const { return !ready_.fast_io(); }
  void roundrobin(bool on) { ready_.set_fast_io(!on); }
  bool power_mode() const { return low_power_; }
  void power_mode(bool on);
  /// Fast-I/O starvation bound: an I/O-woken task is queued as if due this long ago (1 s in
  /// the seed), so a normal task due for longer than this still runs before it.
  Micros io_priority_bound() const { return ready_.io_priority_bound(); }
  void set_io_priority_bound(Micros bound);
  /// When the loop has to block for a timer, it wakes on a grid of this many µs, so that
  /// timers due within one slot are served by one wake-up. 0 or 1: exact deadlines.
  Micros timer_resolution() const { return timer_resolution_; }
  void set_timer_resolution(Micros resolution);
  /// Picked by measurement in bench/timers (docs/benchmarks.md): the coarsest grid that keeps
  /// timer lateness well under a millisecond while timers due together share a wake-up.
  static constexpr Micros kDefaultTimerResolutionUs = 250;
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
  Micros busy_poll() const { return busy_poll_us_; }
  BusyPoll busy_poll_mode() const { return busy_poll_mode_; }
  void set_busy_poll(Micros us, BusyPoll mode = BusyPoll::kFixed);

  /// The settings above with a std::chrono duration (e.g. 1us, 2ms), rounded up to whole µs.
  template <class Rep, class Period>
  void set_io_priority_bound(std::chrono::duration<Rep, Period> bound) {
    set_io_priority_bound(std::chrono::ceil<std::chrono::microseconds>(bound).count());
  }
  template <class Rep, class Period>
  void set_timer_resolution(std::chrono::duration<Rep, Period> resolution) {
    set_timer_resolution(std::chrono::ceil<std::chrono::microseconds>(resolution).count());
  }
  template <class Rep, class Period>
  void set_busy_poll(std::chrono::duration<Rep, Period> window, BusyPoll mode = BusyPoll::kFixed) {
    set_busy_poll(std::chrono::ceil<std::chrono::microseconds>(window).count(), mode);
  }

  /// Stall detector (docs/using.md#observing-the-loop): a task that runs longer than `us`
  /// without suspending is reported with its name and how long it ran; on Linux also with a
  /// backtrace of the loop thread taken while it still runs. 0 (the default, unless
  /// ASYNCIO_STALL_MS is set) turns it off. Call on the loop's thread: it is the one sampled.
  void set_stall_threshold(Micros us);
  template <class Rep, class Period>
  void set_stall_threshold(std::chrono::duration<Rep, Period> threshold) {
    set_stall_threshold(std::chrono::ceil<std::chrono::microseconds>(threshold).count());
  }
  /// True while the loop sleeps in its backend rather than running a task (the stall
  /// detector's sampler reads it on the loop thread).
  bool blocked() const { return blocked_; }

  void set_exception_handler(ExceptionHandler handler);
  ExceptionHandler get_exception_handler() const { return exception_handler_; }
  void call_exception_handler(const ExceptionContext& context);
  static void default_exception_handler(Loop& loop, const ExceptionContext& context);

  detail::IoBackend& backend() { return *backend_; }
  const char* backend_name() const { return backend_->name(); }

  /// The scheduler's clock (µs). Refreshed at every switch while timers are pending.
  Micros time() const { return now_; }
  Micros refresh_time();

  /// What the loop has done since it was made (counts, time blocked). Loop thread.
  const LoopStats& stats() const { return stats_; }

  // ---- The interface primitives are built on. Loop thread only, unless stated. ----

  detail::TaskRecord* current() const { return current_; }
  /// Every task not yet done (LiveLink nodes), for asyncio::all_tasks(). Loop thread.
  const detail::List& live_tasks() const { return live_tasks_list_; }
  /// RuntimeError naming `what` when called from a thread other than the one that runs (or
  /// will run) this loop: its queues are not thread-safe (docs/semantics.md#threads-signals-fork).
  void check_thread(const char* what) const {
    if (detail::port::thread_id() != owner_thread_) [[unlikely]] throw_wrong_thread(what);
  }
  /// Queues a new task (docs/semantics.md#tasks). The loop takes a reference until the task is done.
  void spawn(detail::TaskRecord* task);
  /// The current task waits until woken, until `deadline` (absolute µs, -1 = none), or until
  /// cancelled (then throws CancelledError). Returns why it was woken.
  detail::WakeReason suspend(Micros deadline = -1);
  /// sleep_ms(0): queue the current task behind every task already due, run the others.
  /// With `as_io`, queue it as a task whose I/O is ready instead: in fast-I/O mode it goes
  /// before the pending tasks (Stream::drain() with its output already written).
  void yield_now(bool as_io = false);
  /// Wakes a suspended task at normal priority (an Event, a Lock, a finished task).
  void wake(detail::TaskRecord* task, detail::WakeReason reason);
  /// Wakes a task whose I/O is ready: queued first in fast-I/O mode (docs/semantics.md#fast-io).
  void wake_io(detail::TaskRecord* task, unsigned events);
  /// Cancels a task (docs/semantics.md#tasks). False if it is already done.
  bool cancel(detail::TaskRecord* task);

  /// A console interrupt (SIGINT): cancels the main task of run() at the loop's next switch,
  /// and run() then raises KeyboardInterrupt. Async-signal-safe, any thread. False if an
  /// interrupt is already pending (the port then ends the program, as a second Ctrl-C does).
  bool interrupt() noexcept;
  /// True once if interrupt() was called since the last call; run() asks after its run.
  bool take_interrupt() noexcept;

  /// Marks a ThreadSafeFlag signalled. Async-signal-safe, lock-free, any thread.
  void signal_flag(detail::FlagNode* flag) noexcept;
  /// Takes a flag off the signalled stack (a ThreadSafeFlag being destroyed). Loop thread.
  void forget_flag(detail::FlagNode* flag) noexcept;
  /// Counts tasks waiting on something outside the loop (flags, pollables), for docs/semantics.md#waiting.
  void add_external_waiter() { ++external_waiters_; }
  void remove_external_waiter() { --external_waiters_; }

  /// Takes ownership of `call` and starts it as a task at the loop's next switch. Lock-free,
  /// any thread; the caller allocated `call`, so not from a signal handler.
  void post(detail::RemoteCall* call) noexcept { remote_calls_.post(call); }
  /// CPython's loop.run_in_executor: runs `fn()` on `executor`'s threads (nullptr: the default
  /// pool) and suspends the calling task until it returns its value or rethrows. Linux only:
  /// defined in asyncio/threads.hpp.
  template <class F>
  auto run_in_executor(ThreadPoolExecutor* executor, F fn);

  /// Waits for `device` to report any of `events` (docs/semantics.md#pollables); returns the ready events.
  unsigned wait_pollable(Pollable& device, unsigned events, Micros deadline = -1);

  /// The loop running on the calling thread, or nullptr outside run_*().
  static Loop* running() noexcept;
  /// The loop owning the calling thread (created on first use).
  static Loop& current_thread_loop();
  static void set_current_thread_loop(std::shared_ptr<Loop> loop);

 private:
  friend struct LoopAccess;
  /// Runs the interrupt request on the loop thread.
  struct InterruptNode final : detail::FlagNode {
    explicit InterruptNode(Loop& owner) : loop(owner) {}
    void on_signalled() override;
    Loop& loop;
  };
  explicit Loop(std::unique_ptr<detail::IoBackend> backend);
  /// Cancels every live task and lets each unwind; true if none is left.
  bool cancel_live_tasks();
  /// An exception that is not a std::exception ended a task: stop, and raise it out of run().
  void escape(detail::TaskRecord* task);
  /// Re-raises an escaping exception out of run_*() once the other tasks are cancelled.
  void propagate_escape();
  /// A finished task's extra turn: reports its exception if nobody retrieved it.
  void report_if_unretrieved(detail::TaskRecord* task);
  /// Before an enqueue: brings now_ up to date (cheaply where only the order needs it) and
  /// queues the timers that fell due, so that they go first.
  void stamp_time();

  [[noreturn, gnu::cold]] static void throw_wrong_thread(const char* what);
  detail::TaskRecord* pick_next();
  /// Lets the other ready tasks run until `me` is picked again.
  void run_others(detail::TaskRecord* me);
  /// A pending cancel() surfaces here, at the task's suspension point.
  static void raise_pending_cancel(detail::TaskRecord* me);
  void switch_to(detail::Fiber* next, bool finished);
  void after_switch();
  [[noreturn]] static void report_stack_overflow(const char* task_name);
  void poll_sources();
  void prefetch_next() const;
  void drain_signalled_flags();
  void poll_pollables();
  void wait_for_events();
  void note_blocked(Micros start);  // stats of a sleep that began at `start`
  void note_low_power_wake(Micros grid, std::uint64_t deliveries_before, Micros slot_end);
  void run_loop();
  void run_until_idle();
  void advance_timers();
  void expire_timers();  // advance_timers() without reading the clock
  bool nothing_can_happen() const;
  void start_task(detail::Fiber* fiber);
  void finish_task(detail::TaskRecord* task);
  static void fiber_main(detail::Fiber* fiber);

  detail::ReadyQueue ready_;
  detail::TimerHeap timers_;
  std::unique_ptr<detail::IoBackend> backend_;
  detail::Fiber loop_fiber_;  // the thread that called run_*
  std::uintptr_t owner_thread_ = detail::port::thread_id();  // the thread that runs it
  detail::TaskRecord* current_ = nullptr;
  detail::TaskRecord* finished_ = nullptr;  // stack to release after the next switch
  detail::TaskRecord* main_task_ = nullptr;
  Micros now_ = 0;
  std::uint64_t next_sequence_ = 0;
  std::uint64_t next_task_id_ = 1;
  std::size_t live_tasks_ = 0;
  int external_waiters_ = 0;
  bool running_ = false;
  bool stop_requested_ = false;
  bool deadlocked_ = false;
  bool stop_when_idle_ = false;  // close(): run what is ready, never block
  bool clock_fresh_ = false;     // now_ was read by refresh_time() since the last pick
  detail::Fiber* running_fiber_ = &loop_fiber_;
  bool low_power_ = false;
  Micros timer_resolution_ = kDefaultTimerResolutionUs;
  Micros busy_poll_us_ = 0;
  BusyPoll busy_poll_mode_ = BusyPoll::kFixed;
  Micros batch_until_ = 0;            // low power: no I/O wait before this grid boundary
  std::uint64_t io_deliveries_ = 0;   // I/O and flag wake-ups so far, to see if a wait had any
  std::atomic<detail::FlagNode*> signalled_flags_{nullptr};
  std::atomic<bool> sleeping_{false};
  detail::List pollables_;     // PollableWait nodes
  detail::List live_tasks_list_;  // every task not yet done, for close()
  ExceptionHandler exception_handler_;
  std::exception_ptr escaping_;  // a non-std exception on its way out of run_*()
  std::atomic<bool> interrupt_requested_{false};
  bool interrupted_ = false;  // the request reached the loop thread
  InterruptNode interrupt_node_{*this};
  LoopStats stats_;
  bool blocked_ = false;  // in the backend's wait or sleep
  detail::RemoteCallQueue remote_calls_{*this};
};

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
