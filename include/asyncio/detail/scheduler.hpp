// The scheduler behind a Loop: MicroPython's core.py run loop on fibers.
//
// A task that waits calls suspend(); suspend() picks the next task and switches straight to
// it. Picking polls every event source first (docs/semantics.md#fast-io), moves expired timers
// to the ready queue, and blocks in the backend only when nothing is ready
// (docs/semantics.md#waiting).
//
// The switch path (suspend, yield_now, switch_to, after_switch, the ready queue and the timer
// heap) is defined here, inline, so that a program gets its speed without LTO. Only frames that
// stay on the stack across a switch cost much: Boost.Context's jump_fcontext resumes with a
// jump, not a return, so every return through such a frame afterwards is mispredicted. So the
// code around the switch inlines into the task's own function, and pick_next(), which returns
// before the switch, is an ordinary call into src/core/scheduler.cpp with the cold half.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>

#include "asyncio/detail/idle_policy.hpp"
#include "asyncio/detail/intrusive_list.hpp"
#include "asyncio/detail/port.hpp"
#include "asyncio/detail/ready_queue.hpp"
#include "asyncio/detail/task_record.hpp"
#include "asyncio/detail/timer_heap.hpp"

namespace asyncio {

class Loop;
class Pollable;

namespace detail {

/// Brackets code that may touch a loop from outside its thread (ThreadSafeFlag::set(),
/// call_soon_threadsafe, Loop::interrupt()); signal_flag() relies on its caller's scope. A loop being destroyed first waits for every such
/// scope that began before, so a setter whose store let the loop finish never reaches freed
/// memory (docs/semantics.md#threadsafeflag). Lock-free and async-signal-safe.
class ExternalAccess {
 public:
  ExternalAccess() noexcept;
  ~ExternalAccess();
  ExternalAccess(const ExternalAccess&) = delete;
  ExternalAccess& operator=(const ExternalAccess&) = delete;

  /// Returns once every ExternalAccess that began before the call has ended.
  static void wait_for_earlier() noexcept;

 private:
  unsigned parity_;
};

/// A ThreadSafeFlag as the loop sees it: an intrusive, lock-free "signalled" stack node.
struct FlagNode {
  FlagNode* next_signalled = nullptr;
  std::atomic<bool> queued{false};
  virtual void on_signalled() = 0;  // runs on the loop thread
 protected:
  ~FlagNode() = default;
};

/// A task waiting for a Pollable (docs/semantics.md#pollables); polled at every switch.
struct PollableWait : ListNode {
  Pollable* device = nullptr;
  unsigned events = 0;
  TaskRecord* task = nullptr;
  std::exception_ptr error;  // thrown by device->poll(); rethrown in the waiting task
};

/// The scheduler's counters; Loop::stats() hands them out as a LoopStats.
struct SchedulerStats {
  std::uint64_t task_switches = 0;
  std::uint64_t task_wakeups = 0;
  std::uint64_t blocking_waits = 0;
  std::int64_t time_blocked_us = 0;
  std::uint64_t io_polls = 0;
  std::uint64_t empty_io_polls = 0;
  std::uint64_t low_power_batches = 0;
};

/// Thrown out of line: the switch path stays free of exception set-up code.
[[noreturn, gnu::cold]] void throw_cancelled();
/// Throws RuntimeError("<what>: called outside a task").
[[noreturn, gnu::cold]] void throw_outside_task(const char* what);
[[noreturn, gnu::cold]] void throw_scope_expiry(TaskRecord* me);

class Scheduler {
 public:
  /// While tasks wait on pollables and nothing else is due, the loop polls them this often.
  static constexpr Micros kPollableIntervalUs = 1000;  // MicroPython's poll hook runs per ms tick
  /// Low-power mode's slice: the seed's 20 ms, "chosen based on measurements on RP2".
  static constexpr Micros kLowPowerSliceUs = LowPowerIdle::kSliceUs;
  /// Picked by measurement in bench/timers (docs/benchmarks.md): the coarsest grid that keeps
  /// timer lateness well under a millisecond while timers due together share a wake-up.
  static constexpr Micros kDefaultTimerResolutionUs = 250;

  Scheduler(Loop& loop, std::unique_ptr<IoBackend> backend);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  Loop& loop() const { return loop_; }
  IoBackend& backend() const { return *backend_; }

  // ---- Running ----

  /// Runs tasks until stop(), or until `main` is done when it is not null. False when `main`
  /// can never finish (deadlock).
  bool run(TaskRecord* main);
  void stop() noexcept { stop_requested_ = true; }
  /// Cancels every remaining task and lets them unwind.
  void close();
  bool is_running() const { return running_; }
  std::uintptr_t owner_thread() const { return owner_thread_; }
  void set_owner_thread(std::uintptr_t thread) { owner_thread_ = thread; }
  TaskRecord* main_task() const { return main_task_; }

  // ---- Modes ----

  ReadyQueue& ready_queue() { return ready_; }
  const ReadyQueue& ready_queue() const { return ready_; }
  bool low_power() const { return idle_ == &low_power_idle_; }
  void set_low_power(bool on);
  Micros timer_resolution() const { return timer_resolution_; }
  void set_timer_resolution(Micros resolution) { timer_resolution_ = resolution; }
  /// The core's stall check, for ports without a detector of their own (0: off).
  void set_stall_threshold(Micros us) {
    stall_threshold_ = us;
    turn_started_ = read_clock();
  }
  BusyPoller& busy_poller() { return normal_idle_.busy_poller(); }
  const BusyPoller& busy_poller() const { return normal_idle_.busy_poller(); }

  // ---- The clock ----

  Micros time() const { return now_; }
  /// Reads the clock and queues the timers that fell due; the next pick uses this reading.
  Micros refresh_time() {
    advance_timers();
    clock_fresh_ = true;
    return now_;
  }

  // ---- Task-facing primitives. Loop thread only, unless stated. ----

  TaskRecord* current() const { return current_; }
  /// RuntimeError naming `what` when called from a thread other than the one that runs (or
  /// will run) this loop: its queues are not thread-safe (docs/semantics.md#threads-signals-fork).
  void check_thread(const char* what) const {
    if (port::thread_id() != owner_thread_) [[unlikely]] throw_wrong_thread(what);
  }
  /// Queues a new task (docs/semantics.md#tasks). The loop takes a reference until it is done.
  void spawn(TaskRecord* task);
  /// The current task waits until woken, until `deadline` (absolute µs, -1 = none), or until
  /// cancelled (then throws CancelledError). Returns why it was woken.
  WakeReason suspend(Micros deadline = -1);
  /// sleep_ms(0): queue the current task behind every task already due, run the others.
  /// With `as_io`, queue it as a task whose I/O is ready instead: in fast-I/O mode it goes
  /// before the pending tasks (Stream::drain() with its output already written).
  void yield_now(bool as_io = false);
  /// Wakes a suspended task at normal priority (an Event, a Lock, a finished task).
  void wake(TaskRecord* task, WakeReason reason) {
    if (task->state != TaskState::kSuspended) return;
    if (TimerHeap::contains(task)) timers_.remove(task);
    task->wake_reason = reason;
    ++stats_.task_wakeups;
    stamp_time();  // as in spawn(): expired timers queue first
    ready_.push_due(task, now_);
  }
  /// Wakes a task whose I/O is ready: queued first in fast-I/O mode (docs/semantics.md#fast-io).
  void wake_io(TaskRecord* task, unsigned events);
  /// Cancels a task (docs/semantics.md#tasks). False if it is already done.
  bool cancel(TaskRecord* task);

  /// Marks a ThreadSafeFlag signalled. Async-signal-safe, lock-free, any thread; from outside
  /// the loop's thread, call it inside an ExternalAccess scope that began before the flag's
  /// state was published.
  void signal_flag(FlagNode* flag) noexcept;
  /// Takes a flag off the signalled stack (a ThreadSafeFlag being destroyed). Loop thread.
  void forget_flag(FlagNode* flag) noexcept;
  /// Counts tasks waiting on something outside the loop (flags, pollables), for
  /// docs/semantics.md#waiting.
  void add_external_waiter() { ++external_waiters_; }
  void remove_external_waiter() { --external_waiters_; }

  /// Waits for `device` to report any of `events` (docs/semantics.md#pollables).
  unsigned wait_pollable(Pollable& device, unsigned events, Micros deadline = -1);

  // ---- Idling: the mechanisms the idle policies use ----

  /// Blocks in the backend until `deadline` (-1: none), I/O or a wake-up, unless a flag is
  /// already signalled; `spin_first`, if given, busy polls before blocking.
  void block(Micros deadline, BusyPoller* spin_first = nullptr);
  /// Sleeps until `until` without being woken by I/O or flags (IoBackend::sleep_without_io).
  void sleep_without_io(Micros until, bool timer_due);
  /// Polls the backend without blocking.
  void poll_now() { backend_->wait(0); }
  /// Polls every source: the backend, the signalled flags and the pollables.
  void poll_sources() {
    const std::uint64_t deliveries_before = io_deliveries_;
    if (backend_->needs_poll()) backend_->poll_if_ready();
    if (signalled_flags_.load(std::memory_order_relaxed)) drain_signalled_flags();
    if (!pollables_.empty()) poll_pollables();
    ++stats_.io_polls;
    stats_.empty_io_polls += io_deliveries_ == deliveries_before ? 1 : 0;
  }
  /// Reads the clock into time().
  Micros refresh_clock() { return now_ = read_clock(); }

  const SchedulerStats& stats() const { return stats_; }
  /// True while the loop sleeps in its backend rather than running a task.
  bool blocked() const { return blocked_; }
  /// Every task not yet done (LiveLink nodes). Loop thread.
  const List& live_tasks() const { return live_tasks_list_; }

 private:
  [[noreturn, gnu::cold]] static void throw_wrong_thread(const char* what);
  [[noreturn]] static void report_stack_overflow(const char* task_name);
  /// Ends the running task's turn for the stall check: reports it if it ran too long.
  [[gnu::cold]] void check_stall() noexcept;
  static void fiber_main(Fiber* fiber);

  /// A pending cancel() surfaces here, at the task's suspension point.
  static void raise_pending_cancel(TaskRecord* me) {
    if (!me->cancel_pending) return;
    me->cancel_pending = false;
    throw_cancelled();
  }
  /// The next task to run, after polling every source and waiting if nothing is ready; null
  /// when the loop must return to run()'s caller.
  TaskRecord* pick_next();
  /// Lets the other ready tasks run until `me` is picked again.
  void run_others(TaskRecord* me) {
    TaskRecord* next = pick_next();
    if (next != me) {
      switch_to(next ? next : &loop_fiber_, false);
    } else {
      me->state = TaskState::kRunning;  // woken during the pick itself: no switch needed
    }
  }
  void switch_to(Fiber* next, bool finished);
  void after_switch() {
    if (finished_) [[unlikely]] release_finished();
  }
  void release_finished();
  void prefetch_next() const;
  /// Before an enqueue: brings now_ up to date (cheaply where only the order needs it) and
  /// queues the timers that fell due, so that they go first.
  void stamp_time();
  void advance_timers();
  void expire_timers();  // advance_timers() without reading the clock
  void drain_signalled_flags();
  void poll_pollables();
  void wait_for_events();
  /// When the wait for events must end: the next timer on the idle policy's grid, or the next
  /// poll of the pollables.
  Micros next_wake_deadline();
  void note_blocked(Micros start);  // stats of a sleep that began at `start`
  void run_until_idle();
  bool cancel_live_tasks();
  bool nothing_can_happen() const;
  void finish_task(TaskRecord* task);
  /// A finished task's extra turn: reports its exception if nobody retrieved it.
  void report_if_unretrieved(TaskRecord* task);
  /// An exception that is not a std::exception ended a task: stop, and raise it out of run().
  void escape(TaskRecord* task);
  void propagate_escape();
  /// Every clock read of the scheduler goes through these two: a virtual-time backend
  /// (asyncio/testing.hpp) replaces the port's clock with its own.
  Micros read_clock() const { return virtual_clock_ ? *virtual_clock_ : port::now(); }
  Micros read_coarse_clock() const { return virtual_clock_ ? *virtual_clock_ : port::coarse_now(); }

  // What the switch path touches comes first.
  ReadyQueue ready_;
  TimerHeap timers_;
  TaskRecord* current_ = nullptr;
  Fiber* running_fiber_ = &loop_fiber_;
  TaskRecord* finished_ = nullptr;  // stack to release after the next switch
  std::unique_ptr<IoBackend> backend_;
  Micros now_ = 0;
  const Micros* virtual_clock_ = nullptr;  // the backend's, on virtual time
  int external_waiters_ = 0;
  bool stop_requested_ = false;
  bool clock_fresh_ = false;     // now_ was read by refresh_time() since the last pick
  bool running_ = false;
  bool deadlocked_ = false;
  bool stop_when_idle_ = false;  // close(): run what is ready, never block
  std::atomic<FlagNode*> signalled_flags_{nullptr};
  Micros stall_threshold_ = 0;  // the core's stall check (0: off, or the port has its own)
  Micros turn_started_ = 0;     // when the running fiber was switched to, for that check
  Micros last_stall_report_ = -1'000'000'000;
  List pollables_;  // PollableWait nodes
  Fiber loop_fiber_;  // the thread that called run()
  Loop& loop_;
  std::uintptr_t owner_thread_ = port::thread_id();  // the thread that runs it
  TaskRecord* main_task_ = nullptr;
  std::uint64_t next_sequence_ = 0;
  std::uint64_t next_task_id_ = 1;
  std::size_t live_tasks_ = 0;
  Micros timer_resolution_ = kDefaultTimerResolutionUs;
  NormalIdle normal_idle_;
  LowPowerIdle low_power_idle_;
  IdlePolicy* idle_ = &normal_idle_;
  std::uint64_t io_deliveries_ = 0;  // I/O and flag wake-ups so far, to see if a wait had any
  std::atomic<bool> sleeping_{false};
  List live_tasks_list_;  // every task not yet done, for close()
  std::exception_ptr escaping_;  // a non-std exception on its way out of run()
  SchedulerStats stats_;
  bool blocked_ = false;  // in the backend's wait or sleep
};

// ---- The switch path ----

inline void Scheduler::stamp_time() {
  // Without a fresh reading, a task queued after a long stretch without a clock read (a task
  // that blocked for longer than the I/O priority bound) would carry a stale due time and jump
  // ahead of I/O-woken tasks. Only fast-I/O mode compares due times of queued tasks; in
  // round-robin mode the FIFO alone decides (docs/semantics.md#fast-io). Nor can it matter
  // while no task waits on I/O or a flag: then no task can be queued as I/O-woken, and the
  // read stays off the plain switch path.
  if (ready_.fast_io() && (external_waiters_ != 0 || !pollables_.empty() || backend_->has_waiters())) {
    const Micros coarse = read_coarse_clock();
    if (coarse > now_) now_ = coarse;
  }
  // Timers that fell due queue ahead of what is enqueued now (docs/semantics.md#run-order).
  if (!timers_.empty()) advance_timers();
}

inline void Scheduler::switch_to(Fiber* next, bool finished) {
  Fiber* from = running_fiber_;
  if (current_ && !current_->stack.intact()) report_stack_overflow(current_->name.c_str());
  if (stall_threshold_ != 0) [[unlikely]] check_stall();
  running_fiber_ = next;
  current_ = next == &loop_fiber_ ? nullptr : static_cast<TaskRecord*>(next);
  if (current_) current_->state = TaskState::kRunning;
  if (from != next) {
    ++stats_.task_switches;
    port::switch_fiber(from, next, finished);
  }
  after_switch();
}

inline WakeReason Scheduler::suspend(Micros deadline) {
  TaskRecord* me = current_;
  if (!me) [[unlikely]] throw_outside_task("a task-only call");
  raise_pending_cancel(me);
  me->state = TaskState::kSuspended;
  me->wake_reason = WakeReason::kNone;
  me->waiting_since = now_;
  // An armed timeout() scope that ends before the caller's own deadline takes its place; its
  // timer firing is then the scope's expiry, not the caller's timeout.
  const bool scope_first = me->scope_deadline >= 0 && (deadline < 0 || me->scope_deadline < deadline);
  if (scope_first) deadline = me->scope_deadline;
  if (deadline >= 0) {
    if (deadline <= now_) {
      me->wake_reason = WakeReason::kTimeout;
      ready_.push_due(me, now_);
    } else {
      me->due = deadline;
      me->sequence = next_sequence_++;
      timers_.push(me);
    }
  }
  run_others(me);
  me->waits_on = nullptr;  // the next suspension says what it waits on, or nothing
  raise_pending_cancel(me);
  if (scope_first && me->wake_reason == WakeReason::kTimeout) throw_scope_expiry(me);
  return me->wake_reason;
}

inline void Scheduler::yield_now(bool as_io) {
  TaskRecord* me = current_;
  if (!me) [[unlikely]] throw_outside_task("sleep");
  raise_pending_cancel(me);
  // Timers that fell due must queue ahead of us: we go behind every task already due
  // (docs/semantics.md#run-order).
  stamp_time();
  // Says whether the task resumes as an I/O task, as a wake-up does (pick_next reads it).
  me->wake_reason = as_io ? WakeReason::kIo : WakeReason::kNone;
  if (as_io) {
    ready_.push_io(me, now_);
  } else {
    ready_.push_due(me, now_);
  }
  run_others(me);
  raise_pending_cancel(me);
  // A task that only yields never sleeps on a timer: compare the clock itself.
  if (me->scope_deadline >= 0 && refresh_time() >= me->scope_deadline) throw_scope_expiry(me);
}

}  // namespace detail
}  // namespace asyncio
