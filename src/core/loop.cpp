// The scheduler: MicroPython's core.py run loop on fibers, with asyncio_alt's policies.
//
// A task that waits calls suspend(); suspend() picks the next task and switches straight to
// it. Picking polls every event source first (docs/semantics.md#fast-io), moves expired timers to the ready
// queue, and blocks in the backend only when nothing is ready (docs/semantics.md#waiting).
#include "asyncio/loop.hpp"

#include <algorithm>
#include <memory>
#include <new>
#include <string>

#include "asyncio/detail/duration.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/pollable.hpp"
#include "asyncio/task.hpp"

namespace asyncio {

using detail::Fiber;
using detail::FlagNode;
using detail::PollableWait;
using detail::TaskRecord;
using detail::TaskState;
using detail::WakeReason;

namespace {
thread_local std::shared_ptr<Loop> thread_loop;
// The loop running on this thread, if any: tasks find their loop through it, even while the
// thread's default loop is being replaced or destroyed.
thread_local Loop* running_loop = nullptr;
// asyncio_alt's module-level modes: every loop the thread makes starts in them.
thread_local bool default_roundrobin = true;
thread_local bool default_low_power = false;

struct RunningScope {
  explicit RunningScope(Loop* loop) : previous(running_loop) { running_loop = loop; }
  ~RunningScope() { running_loop = previous; }
  RunningScope(const RunningScope&) = delete;
  RunningScope& operator=(const RunningScope&) = delete;
  Loop* previous;
};

std::string describe(const std::exception_ptr& error) {
  if (!error) return "no exception";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (const CancelledError& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}
}  // namespace

Loop::Loop() : Loop(Options{}) {}

Loop::Loop(Options options) : Loop(detail::port::make_backend(*this, options.backend.c_str())) {}

Loop::Loop(std::unique_ptr<detail::IoBackend> backend) : backend_(std::move(backend)) {
  now_ = detail::port::now();
  ready_.set_fast_io(!default_roundrobin);
  if (default_low_power) power_mode(true);
}

Loop::~Loop() {
  try {
    close();
  } catch (...) {
    detail::port::log_error("asyncio: error while closing a loop in its destructor");
  }
  // Flags still signalled outlive us: unmark them so that their destructors do not look for
  // this loop. (A flag set() after its loop is gone is a use-after-free; see threadsafe_flag.hpp.)
  for (FlagNode* flag = signalled_flags_.exchange(nullptr); flag;) {
    FlagNode* next = flag->next_signalled;
    flag->next_signalled = nullptr;
    flag->queued.store(false);
    flag = next;
  }
}

// ---- Running ----

void Loop::run_forever() {
  if (running_) throw RuntimeError("run_forever: the loop is already running");
  main_task_ = nullptr;
  run_loop();
}

void Loop::run_until_task_done(TaskRecord* task) {
  if (running_) throw RuntimeError("run_until_complete: the loop is already running");
  if (task->state == TaskState::kDone) return;
  if (task->loop != this) throw RuntimeError("run_until_complete: task belongs to another loop");
  main_task_ = task;
  run_loop();
  main_task_ = nullptr;
  if (deadlocked_) {
    deadlocked_ = false;
    throw RuntimeError(
        "run: task '" + task->name +
        "' can never finish: every remaining task waits on an Event, Lock or task that no "
        "running task, timer, I/O or ThreadSafeFlag can complete (deadlock)");
  }
}

void Loop::run_loop() {
  if (running_) throw RuntimeError("run: the loop is already running");
  owner_thread_ = detail::port::thread_id();
  {
    RunningScope scope(this);
    running_ = true;
    stop_requested_ = false;
    deadlocked_ = false;
    refresh_time();
    if (TaskRecord* next = pick_next()) switch_to(next, false);
    running_ = false;
    stop_requested_ = false;
  }
  if (escaping_) [[unlikely]] propagate_escape();
}

void Loop::escape(TaskRecord* task) {
  task->retrieved = true;  // it goes to the caller of run(), not to the exception handler
  if (!escaping_) escaping_ = task->error;
  stop_requested_ = true;
}

void Loop::propagate_escape() {
  // MicroPython lets a KeyboardInterrupt or SystemExit out of run() from any task; we do the
  // same for any exception that is not a std::exception, once the other tasks have unwound
  // (docs/semantics.md#exceptions).
  std::exception_ptr error = std::exchange(escaping_, nullptr);
  main_task_ = nullptr;
  cancel_live_tasks();
  escaping_ = nullptr;  // the first one out wins; one raised while unwinding is dropped
  std::rethrow_exception(error);
}

bool Loop::cancel_live_tasks() {
  // Cancel every task and let each unwind so that its destructors run; a task that ignores
  // the cancellation and waits again is given up on after a few rounds.
  for (int round = 0; round < 3 && live_tasks_ > 0; ++round) {
    for (auto* node = live_tasks_list_.front(); node; node = live_tasks_list_.next(node)) {
      cancel(static_cast<detail::LiveLink*>(node)->task);
    }
    run_until_idle();
  }
  return live_tasks_ == 0;
}

void Loop::close() {
  if (running_) throw RuntimeError("close: the loop is running");
  cancel_live_tasks();
  while (auto* node = live_tasks_list_.pop_front()) {
    TaskRecord* task = static_cast<detail::LiveLink*>(node)->task;
    detail::port::log_error(("asyncio: abandoning task '" + task->name +
                             "' that did not finish when cancelled at close()")
                                .c_str());
    if (detail::TimerHeap::contains(task)) timers_.remove(task);
    task->state = TaskState::kDone;
    task->cancelled = true;
    detail::port::release_stack(task->stack);
    task->stack = {};
    --live_tasks_;
    detail::drop_reference(task);
  }
  // What is left are finished tasks waiting to report an exception: report it now rather than
  // lose it.
  while (TaskRecord* task = ready_.pop()) {
    if (task->state == TaskState::kDone) report_if_unretrieved(task);
  }
}

void Loop::renew(Options options) {
  if (running_) throw RuntimeError("new_event_loop: the current loop is running");
  close();
  // Made before anything is torn down: if it throws, this loop stays as it was.
  std::unique_ptr<detail::IoBackend> backend =
      detail::port::make_backend(*this, options.backend.c_str());
  // MicroPython's handler belongs to the Loop class, so a new loop keeps it.
  ExceptionHandler handler = std::move(exception_handler_);
  // Same type, same storage: every pointer and reference to this loop now names the new one.
  std::destroy_at(this);
  ::new (static_cast<void*>(this)) Loop(std::move(backend));
  exception_handler_ = std::move(handler);
}

void Loop::run_until_idle() {
  RunningScope scope(this);
  stop_when_idle_ = true;
  main_task_ = nullptr;
  running_ = true;
  refresh_time();
  if (TaskRecord* next = pick_next()) switch_to(next, false);
  running_ = false;
  stop_when_idle_ = false;
}

// ---- Picking the next task ----

TaskRecord* Loop::pick_next() {
  // sleep_ms() read the clock a moment ago to compute its deadline (refresh_time); the first
  // pass uses that reading: one clock read per timer wake-up instead of two.
  bool clock_fresh = clock_fresh_;
  clock_fresh_ = false;
  for (;;) {
    if (stop_requested_) return nullptr;
    poll_sources();
    if (!timers_.empty()) {
      if (clock_fresh) {
        expire_timers();
      } else {
        advance_timers();
      }
    }
    clock_fresh = false;
    if (TaskRecord* task = ready_.pop()) {
      if (task->state == TaskState::kDone) [[unlikely]] {
        report_if_unretrieved(task);
        continue;
      }
      prefetch_next();
      return task;
    }
    if (stop_when_idle_) return nullptr;
    if (nothing_can_happen()) {
      deadlocked_ = main_task_ != nullptr;
      return nullptr;
    }
    wait_for_events();
  }
}

inline void Loop::prefetch_next() const {
  // With many tasks, each switch misses the cache on the next task's record and on the frames
  // saved at the top of its stack (bench/switch, N = 1000). Fetch ahead without ever waiting
  // on a miss here: the record of the task after next is only prefetched (reading its saved
  // stack pointer to prefetch its stack too would stall on that record); the stack of the next
  // task is prefetched through its record, which the previous switch prefetched.
  if (const TaskRecord* next = ready_.peek()) {
    const char* top = static_cast<const char*>(next->context);
    for (int line = 0; line < 4; ++line) __builtin_prefetch(top + 64 * line);
    if (const TaskRecord* upcoming = next->ready_next) {
      __builtin_prefetch(upcoming);
      __builtin_prefetch(reinterpret_cast<const char*>(upcoming) + 64);
    }
  }
}

inline void Loop::poll_sources() {
  const std::uint64_t deliveries_before = io_deliveries_;
  backend_->poll_if_ready();
  if (signalled_flags_.load(std::memory_order_relaxed)) drain_signalled_flags();
  if (!pollables_.empty()) poll_pollables();
  ++stats_.io_polls;
  stats_.empty_io_polls += io_deliveries_ == deliveries_before ? 1 : 0;
}

void Loop::advance_timers() {
  now_ = detail::port::now();
  expire_timers();
}

void Loop::expire_timers() {
  while (!timers_.empty() && timers_.top_due() <= now_) {
    TaskRecord* task = timers_.pop();
    __builtin_prefetch(task);  // its saved stack pointer, read when it nears the queue's head
    task->wake_reason = WakeReason::kTimeout;
    ++stats_.task_wakeups;
    // Keep the task's own due time: it is older than anything queued since the last clock
    // reading, so the FIFO stays in due order (see ready_queue.hpp).
    ready_.push_due(task, task->due);
  }
}

inline void Loop::stamp_time() {
  // Without a fresh reading, a task queued after a long stretch without a clock read (a task
  // that blocked for longer than the I/O priority bound) would carry a stale due time and jump
  // ahead of I/O-woken tasks. Only fast-I/O mode compares due times of queued tasks; in
  // round-robin mode the FIFO alone decides (docs/semantics.md#fast-io). Nor can it matter
  // while no task waits on I/O or a flag: then no task can be queued as I/O-woken, and the
  // read stays off the plain switch path.
  if (ready_.fast_io() && (external_waiters_ != 0 || !pollables_.empty() || backend_->has_waiters())) {
    now_ = std::max(now_, detail::port::coarse_now());
  }
  // Timers that fell due queue ahead of what is enqueued now (docs/semantics.md#run-order).
  if (!timers_.empty()) advance_timers();
}

Micros Loop::refresh_time() {
  advance_timers();
  clock_fresh_ = true;  // the next pick uses this reading (see pick_next)
  return now_;
}

bool Loop::nothing_can_happen() const {
  return ready_.empty() && timers_.empty() && pollables_.empty() && external_waiters_ == 0 &&
         !backend_->has_waiters() &&
         signalled_flags_.load(std::memory_order_relaxed) == nullptr;
}

void Loop::wait_for_events() {
  // Low power serves timers on the 20 ms grid (every task due in a slot runs on one wake-up);
  // normal mode on a fine grid that only batches timers due within microseconds of each other,
  // never finer than the backend can wake (a board's 1 ms tick).
  const Micros grid = low_power_ ? kLowPowerSliceUs
                                 : std::max({timer_resolution_, backend_->timer_resolution(), Micros{1}});
  const std::uint64_t deliveries_before = io_deliveries_;
  Micros deadline = -1;
  if (!timers_.empty()) {
    // Never earlier than the first deadline (docs/semantics.md#run-order); later by at most one grid slot.
    deadline = (timers_.top_due() + grid - 1) / grid * grid;
  }
  if (!pollables_.empty()) {
    // A fresh reading: without timers nothing else refreshes now_, and a stale one would put
    // poll_at in the past, so that the loop spins instead of waiting.
    now_ = detail::port::now();
    const Micros poll_at = now_ + (low_power_ ? kLowPowerSliceUs : kPollableIntervalUs);
    if (deadline < 0 || poll_at < deadline) deadline = poll_at;
  }
  Micros slot_end = 0;  // the boundary a batching sleep went to, even if it ended a bit early
  if (low_power_ && now_ < batch_until_) {
    // Interrupt mitigation: I/O or a flag woke us in this slot; let what follows accumulate
    // until the slot ends, then take it all at once.
    const bool timer_due = deadline >= 0 && deadline <= batch_until_;
    slot_end = timer_due ? deadline : batch_until_;
    const Micros start = detail::port::now();
    blocked_ = true;
    backend_->sleep_without_io(slot_end, timer_due);
    note_blocked(start);
    ++stats_.low_power_batches;
    backend_->wait(0);  // poll everything without blocking
  } else {
    // Publish that we may block before the last look at the flags: signal_flag() pushes, then
    // reads sleeping_; we store sleeping_, then read the stack. One of us sees the other.
    sleeping_.store(true);
    if (signalled_flags_.load() == nullptr) {
      const Micros start = detail::port::now();
      blocked_ = true;
      backend_->wait(deadline);
      note_blocked(start);
    }
    sleeping_.store(false, std::memory_order_relaxed);
  }
  if (low_power_) note_low_power_wake(grid, deliveries_before, slot_end);
}

void Loop::note_blocked(Micros start) {
  blocked_ = false;
  ++stats_.blocking_waits;
  stats_.time_blocked_us += detail::port::now() - start;
}

void Loop::note_low_power_wake(Micros grid, std::uint64_t deliveries_before, Micros slot_end) {
  poll_sources();  // flags are delivered here, not by the backend
  now_ = detail::port::now();
  // While I/O keeps arriving, wait on it only at slot boundaries; a quiet slot ends that, so
  // an idle loop goes back to blocking with no wake-ups at all. A batching sleep that ended a
  // little before its boundary has still closed that slot: the next batch runs to the one after.
  const Micros at = now_ > slot_end ? now_ : slot_end;
  batch_until_ = io_deliveries_ != deliveries_before ? (at / grid + 1) * grid : 0;
}

// ---- Switching ----

void Loop::switch_to(Fiber* next, bool finished) {
  Fiber* from = running_fiber_;
  if (current_ && !current_->stack.intact()) report_stack_overflow(current_->name.c_str());
  running_fiber_ = next;
  current_ = next == &loop_fiber_ ? nullptr : static_cast<TaskRecord*>(next);
  if (current_) current_->state = TaskState::kRunning;
  if (from != next) {
    ++stats_.task_switches;
    detail::port::switch_fiber(from, next, finished);
  }
  after_switch();
}

void Loop::report_stack_overflow(const char* task_name) {
  // The overflowed stack is what we stand on, and the heap may be damaged: compose the
  // message in static storage, without allocating.
  static char message[160];
  const char* parts[] = {"asyncio: stack overflow in task '", task_name,
                         "'; give it a larger TaskOptions::stack_size"};
  std::size_t length = 0;
  for (const char* part : parts) {
    while (*part && length + 1 < sizeof message) message[length++] = *part++;
  }
  message[length] = '\0';
  detail::port::fatal(message);
}

void Loop::after_switch() {
  if (TaskRecord* task = finished_) {
    finished_ = nullptr;
    detail::port::release_stack(task->stack);
    task->stack = {};
    detail::drop_reference(task);  // the loop's reference, taken in spawn()
  }
}

void Loop::fiber_main(Fiber* fiber) {
  auto* task = static_cast<TaskRecord*>(fiber);
  Loop& loop = *task->loop;
  loop.after_switch();
  task->started = true;
  if (task->cancel_pending) {
    // Cancelled before it ever ran: MicroPython throws into the coroutine at its start.
    task->cancel_pending = false;
    task->cancelled = true;
    task->error = std::make_exception_ptr(CancelledError{});
  } else {
    try {
      task->invoke();
    } catch (const CancelledError&) {
      task->cancelled = true;
      task->error = std::current_exception();
    } catch (const std::exception&) {
      task->error = std::current_exception();
    } catch (...) {
      task->error = std::current_exception();
      loop.escape(task);
    }
  }
  loop.finish_task(task);
}

void Loop::finish_task(TaskRecord* task) {
  task->state = TaskState::kDone;
  task->live_link.unlink();
  --live_tasks_;
  // run()/run_until_complete() read the main task's outcome themselves.
  const bool awaited = !task->done_callbacks.empty() || task == main_task_;
  while (auto* node = task->done_callbacks.pop_front()) {
    auto* callback = static_cast<detail::DoneCallback*>(node);
    callback->fn(callback, task);
  }
  if (!awaited && task->error && !task->cancelled && !task->retrieved) {
    // As MicroPython: the finished task gets one more turn in the queue, and the handler hears
    // of its exception then, unless somebody retrieved it meanwhile
    // (docs/semantics.md#exceptions). The queue holds a reference until that turn.
    detail::add_reference(task);
    stamp_time();
    ready_.push_done(task, now_);
  }
  finished_ = task;  // its stack is released by whoever runs next: we are standing on it
  Fiber* next = &loop_fiber_;
  if (task != main_task_) {
    if (TaskRecord* ready = pick_next()) next = ready;
  }
  switch_to(next, true);
  detail::port::fatal("asyncio: a finished task was resumed");
}

// ---- Task-facing primitives ----

void Loop::spawn(TaskRecord* task) {
  check_thread("create_task");
  task->loop = this;
  task->id = next_task_id_++;
  if (task->name.empty()) task->name = "task-" + std::to_string(task->id);
  task->stack = detail::port::allocate_stack(task->stack.size);
  task->entry = &Loop::fiber_main;
  detail::port::make_fiber(task);
  detail::add_reference(task);
  task->live_link.task = task;
  live_tasks_list_.push_back(&task->live_link);
  ++live_tasks_;
  // Timers that fell due run first: the new task is due now, behind them
  // (docs/semantics.md#run-order).
  stamp_time();
  ready_.push_due(task, now_);
}

inline void Loop::raise_pending_cancel(TaskRecord* me) {
  if (!me->cancel_pending) return;
  me->cancel_pending = false;
  throw CancelledError{};
}

/// A timeout() scope's deadline passed while `me` waited (or yielded). The scope is disarmed
/// until the scope that set it has seen the expiry: unwinding and cleanup may wait again.
[[noreturn]] static void raise_scope_expiry(TaskRecord* me) {
  const Micros deadline = me->scope_deadline;
  me->scope_deadline = -1;
  throw detail::DeadlineExpired(deadline);
}

inline void Loop::run_others(TaskRecord* me) {
  TaskRecord* next = pick_next();
  if (next != me) {
    switch_to(next ? next : &loop_fiber_, false);
  } else {
    me->state = TaskState::kRunning;  // woken during the pick itself: no switch needed
  }
}

WakeReason Loop::suspend(Micros deadline) {
  TaskRecord* me = current_;
  if (!me) throw RuntimeError("asyncio: a task-only call was made outside a task");
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
  if (scope_first && me->wake_reason == WakeReason::kTimeout) raise_scope_expiry(me);
  return me->wake_reason;
}

void Loop::yield_now(bool as_io) {
  TaskRecord* me = current_;
  if (!me) throw RuntimeError("sleep: called outside a task");
  raise_pending_cancel(me);
  // Timers that fell due must queue ahead of us: we go behind every task already due
  // (docs/semantics.md#run-order).
  stamp_time();
  if (as_io) {
    ready_.push_io(me, now_);
  } else {
    ready_.push_due(me, now_);
  }
  run_others(me);
  raise_pending_cancel(me);
  // A task that only yields never sleeps on a timer: compare the clock itself.
  if (me->scope_deadline >= 0 && refresh_time() >= me->scope_deadline) raise_scope_expiry(me);
}

void Loop::wake(TaskRecord* task, WakeReason reason) {
  if (task->state != TaskState::kSuspended) return;
  if (detail::TimerHeap::contains(task)) timers_.remove(task);
  task->wake_reason = reason;
  ++stats_.task_wakeups;
  stamp_time();  // as in spawn(): expired timers queue first
  ready_.push_due(task, now_);
}

void Loop::wake_io(TaskRecord* task, unsigned events) {
  if (task->state != TaskState::kSuspended) return;
  if (detail::TimerHeap::contains(task)) timers_.remove(task);
  task->wake_reason = WakeReason::kIo;
  task->io_events = events;
  ++io_deliveries_;
  ++stats_.task_wakeups;
  // A fresh clock keeps the starvation bound honest while the loop is busy (docs/semantics.md#fast-io): the key
  // now - bound is compared with the keys of tasks already queued. With no task queued and
  // no timer pending, tasks queued later get later keys whatever the clock says, so an idle
  // loop woken by a flag or I/O skips the reading (bench/wake).
  if (!timers_.empty() || !ready_.empty()) advance_timers();
  ready_.push_io(task, now_);
}

bool Loop::cancel(TaskRecord* task) {
  check_thread("Task.cancel");
  if (task->state == TaskState::kDone) return false;
  // As MicroPython's Task.cancel: a task awaiting another passes the cancellation down to the
  // innermost awaited task; its CancelledError then ends every awaiter on the way up.
  while (task->awaiting && task->awaiting->state != TaskState::kDone) task = task->awaiting;
  task->cancel_pending = true;
  if (task->state == TaskState::kSuspended) wake(task, WakeReason::kCancel);
  return true;
}

void Loop::throw_wrong_thread(const char* what) {
  throw RuntimeError(std::string(what) +
                     ": called from a thread that does not run this loop; only ThreadSafeFlag.set() "
                     "may be called from other threads");
}

// ---- ThreadSafeFlag delivery ----

void Loop::signal_flag(FlagNode* flag) noexcept {
  if (flag->queued.exchange(true)) return;  // already on the stack: the loop will see it
  FlagNode* head = signalled_flags_.load(std::memory_order_relaxed);
  do {
    flag->next_signalled = head;
  } while (!signalled_flags_.compare_exchange_weak(head, flag));
  if (sleeping_.load()) backend_->wake();
}

void Loop::forget_flag(FlagNode* flag) noexcept {
  // Only the loop thread pops, so taking the whole stack is safe; setters on other threads
  // may push meanwhile, and the survivors are pushed back on top of what they add.
  FlagNode* stack = signalled_flags_.exchange(nullptr, std::memory_order_acquire);
  while (stack) {
    FlagNode* next = stack->next_signalled;
    if (stack != flag) {
      FlagNode* head = signalled_flags_.load(std::memory_order_relaxed);
      do {
        stack->next_signalled = head;
      } while (!signalled_flags_.compare_exchange_weak(head, stack));
    }
    stack = next;
  }
  flag->next_signalled = nullptr;
  flag->queued.store(false);
}

void Loop::drain_signalled_flags() {
  FlagNode* stack = signalled_flags_.exchange(nullptr, std::memory_order_acquire);
  // The stack is last-in first-out; serve flags in the order they were set.
  FlagNode* in_order = nullptr;
  while (stack) {
    FlagNode* next = stack->next_signalled;
    stack->next_signalled = in_order;
    in_order = stack;
    stack = next;
  }
  while (in_order) {
    FlagNode* next = in_order->next_signalled;
    in_order->next_signalled = nullptr;
    // Clear before looking at the flag: a set() racing with us then queues it again.
    in_order->queued.store(false);
    in_order->on_signalled();
    in_order = next;
  }
}

// ---- Pollable devices ----

void Loop::poll_pollables() {
  for (auto* node = pollables_.front(); node;) {
    auto* wait = static_cast<PollableWait*>(node);
    node = pollables_.next(node);
    unsigned ready = 0;
    try {
      ready = wait->device->poll(wait->events);
    } catch (...) {
      wait->error = std::current_exception();
      ready = detail::kPollError;
    }
    if (ready == 0) continue;
    wait->unlink();
    wake_io(wait->task, ready);
  }
}

unsigned Loop::wait_pollable(Pollable& device, unsigned events, Micros deadline) {
  PollableWait wait;
  wait.device = &device;
  wait.events = events;
  wait.task = current_;
  if (!wait.task) throw RuntimeError("wait_pollable: called outside a task");
  pollables_.push_back(&wait);
  detail::note_wait(wait.task, "Pollable.poll", &device, -1, events);
  try {
    suspend(deadline);
  } catch (...) {
    wait.unlink();
    throw;
  }
  wait.unlink();
  if (wait.error) std::rethrow_exception(wait.error);
  return wait.task->io_events;
}

// ---- Modes and the exception handler ----

void Loop::power_mode(bool on) {
  if (on && !detail::port::low_power_supported()) {
    throw ValueError("power_mode(true): low-power mode is not supported on this platform");
  }
  if (on != low_power_) backend_->set_low_power(on);
  low_power_ = on;
  batch_until_ = 0;
}

void Loop::set_io_priority_bound(Micros bound) {
  if (bound < 0) throw ValueError("set_io_priority_bound: the bound must be >= 0");
  // Saturated: the queue subtracts it from the clock.
  ready_.set_io_priority_bound(std::min(bound, detail::kForever));
}

void Loop::set_timer_resolution(Micros resolution) {
  if (resolution < 0) throw ValueError("set_timer_resolution: the resolution must be >= 0");
  // Saturated: a deadline is rounded up to the grid, which must not overflow.
  timer_resolution_ = std::min(resolution, detail::kForever);
}

void Loop::set_busy_poll(Micros us, BusyPoll mode) {
  if (us < 0 || us > 1'000'000) {
    throw ValueError("set_busy_poll: the window must be 0 to 1,000,000 us (got " +
                     std::to_string(us) + ")");
  }
  if (mode != BusyPoll::kFixed && mode != BusyPoll::kAdaptive) {
    throw ValueError("set_busy_poll: the mode must be BusyPoll::kFixed or BusyPoll::kAdaptive");
  }
  busy_poll_us_ = us;
  busy_poll_mode_ = mode;
  backend_->set_busy_poll(us, mode == BusyPoll::kAdaptive);
}

void Loop::set_stall_threshold(Micros us) {
  if (us < 0) throw ValueError("set_stall_threshold: the threshold must be >= 0 (0: off)");
  check_thread("set_stall_threshold");
  backend_->set_stall_threshold(us);
}

void Loop::set_exception_handler(ExceptionHandler handler) {
  exception_handler_ = std::move(handler);
}

void Loop::call_exception_handler(const ExceptionContext& context) {
  try {
    if (exception_handler_) {
      exception_handler_(*this, context);
    } else {
      default_exception_handler(*this, context);
    }
  } catch (...) {
    detail::port::log_error("asyncio: the exception handler itself raised an exception");
  }
}

void Loop::default_exception_handler(Loop& /*loop*/, const ExceptionContext& context) {
  std::string line = context.message;
  if (!context.task.empty()) line += " (task '" + context.task + "')";
  if (context.exception) line += ": " + describe(context.exception);
  detail::port::log_error(line.c_str());
}

void Loop::report_if_unretrieved(TaskRecord* task) {
  if (!task->retrieved) {
    task->retrieved = true;  // at most once
    call_exception_handler({"Task exception wasn't retrieved", task->error, task->name});
  }
  detail::drop_reference(task);  // the queue's, taken in finish_task()
}

// ---- Console interrupts ----

bool Loop::interrupt() noexcept {
  if (interrupt_requested_.exchange(true)) return false;
  signal_flag(&interrupt_node_);
  return true;
}

bool Loop::take_interrupt() noexcept {
  forget_flag(&interrupt_node_);  // one that came after the run must not cancel the next one
  const bool was = interrupted_;
  interrupted_ = false;
  interrupt_requested_.store(false);
  return was;
}

void Loop::InterruptNode::on_signalled() {
  loop.interrupted_ = true;
  if (loop.main_task_) {
    loop.cancel(loop.main_task_);
  } else {
    loop.stop();
  }
}

// ---- The thread's loop ----

Loop& Loop::current_thread_loop() {
  if (!thread_loop) thread_loop = std::make_shared<Loop>();
  return *thread_loop;
}

void Loop::set_current_thread_loop(std::shared_ptr<Loop> loop) {
  if (thread_loop && thread_loop->is_running()) {
    throw RuntimeError("new_event_loop: the current loop is running");
  }
  // Close while still installed, so that unwinding tasks find their own loop.
  if (thread_loop) thread_loop->close();
  thread_loop = std::move(loop);
  if (thread_loop) thread_loop->owner_thread_ = detail::port::thread_id();
}

Loop* Loop::running() noexcept { return running_loop; }

Loop& get_event_loop() { return running_loop ? *running_loop : Loop::current_thread_loop(); }

Loop& new_event_loop(Loop::Options options) {
  if (!thread_loop) {
    thread_loop = std::make_shared<Loop>(std::move(options));
  } else {
    thread_loop->renew(std::move(options));
  }
  return *thread_loop;
}

bool roundrobin() { return get_event_loop().roundrobin(); }

void roundrobin(bool on) {
  get_event_loop().roundrobin(on);
  default_roundrobin = on;
}

bool power_mode() { return get_event_loop().power_mode(); }

void power_mode(bool on) {
  get_event_loop().power_mode(on);  // ValueError where unsupported: the default stays
  default_low_power = on;
}

}  // namespace asyncio
