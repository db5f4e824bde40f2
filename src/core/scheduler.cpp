// The scheduler's out-of-line half: running and closing, picking the next task, idling,
// finishing tasks, ThreadSafeFlag delivery and pollables. The code around the switch is inline
// in asyncio/detail/scheduler.hpp.
#include "asyncio/detail/scheduler.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "asyncio/errors.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/pollable.hpp"
#include "asyncio/detail/registry.hpp"

namespace asyncio::detail {

void throw_cancelled() { throw CancelledError{}; }

/// A timeout() scope's deadline passed while `me` waited (or yielded). The scope is disarmed
/// until the scope that set it has seen the expiry: unwinding and cleanup may wait again.
void throw_scope_expiry(TaskRecord* me) {
  const Micros deadline = me->scope_deadline;
  me->scope_deadline = -1;
  throw DeadlineExpired(deadline);
}

Scheduler::Scheduler(Loop& loop, std::unique_ptr<IoBackend> backend)
    : backend_(std::move(backend)), loop_(loop) {
  virtual_clock_ = backend_->virtual_clock();
  now_ = read_clock();
}

Scheduler::~Scheduler() {
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

bool Scheduler::run(TaskRecord* main) {
  if (running_) throw RuntimeError("run: the loop is already running");
  owner_thread_ = port::thread_id();
  main_task_ = main;
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
  main_task_ = nullptr;
  if (escaping_) [[unlikely]] propagate_escape();
  return !std::exchange(deadlocked_, false);
}

void Scheduler::escape(TaskRecord* task) {
  task->retrieved = true;  // it goes to the caller of run(), not to the exception handler
  if (!escaping_) escaping_ = task->error;
  stop_requested_ = true;
}

void Scheduler::propagate_escape() {
  // MicroPython lets a KeyboardInterrupt or SystemExit out of run() from any task; we do the
  // same for any exception that is not a std::exception, once the other tasks have unwound
  // (docs/semantics.md#exceptions).
  std::exception_ptr error = std::exchange(escaping_, nullptr);
  main_task_ = nullptr;
  cancel_live_tasks();
  escaping_ = nullptr;  // the first one out wins; one raised while unwinding is dropped
  std::rethrow_exception(error);
}

bool Scheduler::cancel_live_tasks() {
  // Cancel every task and let each unwind so that its destructors run; a task that ignores
  // the cancellation and waits again is given up on after a few rounds.
  for (int round = 0; round < 3 && live_tasks_ > 0; ++round) {
    for (auto* node = live_tasks_list_.front(); node; node = live_tasks_list_.next(node)) {
      cancel(static_cast<LiveLink*>(node)->task);
    }
    run_until_idle();
  }
  return live_tasks_ == 0;
}

void Scheduler::close() {
  if (running_) throw RuntimeError("close: the loop is running");
  cancel_live_tasks();
  while (auto* node = live_tasks_list_.pop_front()) {
    TaskRecord* task = static_cast<LiveLink*>(node)->task;
    port::log_error(("asyncio: abandoning task '" + task->name +
                     "' that did not finish when cancelled at close()")
                        .c_str());
    if (TimerHeap::contains(task)) timers_.remove(task);
    task->state = TaskState::kDone;
    task->cancelled = true;
    port::release_stack(task->stack);
    task->stack = {};
    --live_tasks_;
    drop_reference(task);
  }
  // What is left are finished tasks waiting to report an exception: report it now rather than
  // lose it.
  while (TaskRecord* task = ready_.pop()) {
    if (task->state == TaskState::kDone) report_if_unretrieved(task);
  }
}

void Scheduler::run_until_idle() {
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

TaskRecord* Scheduler::pick_next() {
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
      // A task not woken by I/O may run for long: written bytes must not wait behind it.
      if (backend_->holds_output() && task->wake_reason != WakeReason::kIo) [[unlikely]] {
        backend_->submit_held_output();
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

void Scheduler::prefetch_next() const {
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

void Scheduler::expire_timers() {
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

void Scheduler::advance_timers() {
  now_ = read_clock();
  expire_timers();
}

// ---- Idling ----

bool Scheduler::nothing_can_happen() const {
  return ready_.empty() && timers_.empty() && pollables_.empty() && external_waiters_ == 0 &&
         !backend_->has_waiters() && signalled_flags_.load(std::memory_order_relaxed) == nullptr;
}

void Scheduler::set_low_power(bool on) {
  IdlePolicy* const policy = on ? static_cast<IdlePolicy*>(&low_power_idle_) : &normal_idle_;
  if (policy != idle_) {
    idle_->leave(*backend_);
    idle_ = policy;
    idle_->enter(*backend_);
  }
  low_power_idle_.reset();
}

void Scheduler::wait_for_events() {
  const Micros deadline = next_wake_deadline();
  const std::uint64_t deliveries_before = io_deliveries_;
  idle_->wait(*this, deadline);
  idle_->after_wake(*this, io_deliveries_ != deliveries_before);
}

Micros Scheduler::next_wake_deadline() {
  Micros deadline = -1;
  if (!timers_.empty()) {
    // Never earlier than the first deadline (docs/semantics.md#run-order); later by at most
    // one grid slot.
    const Micros grid = idle_->grid(timer_resolution_, backend_->timer_resolution());
    deadline = (timers_.top_due() + grid - 1) / grid * grid;
  }
  if (!pollables_.empty()) {
    // A fresh reading: without timers nothing else refreshes now_, and a stale one would put
    // poll_at in the past, so that the loop spins instead of waiting.
    const Micros poll_at = refresh_clock() + idle_->pollable_interval();
    if (deadline < 0 || poll_at < deadline) deadline = poll_at;
  }
  return deadline;
}

void Scheduler::block(Micros deadline, BusyPoller* spin_first) {
  // Publish that we may block before the last look at the flags: signal_flag() pushes, then
  // reads sleeping_; we store sleeping_, then read the stack. One of us sees the other.
  sleeping_.store(true);
  if (signalled_flags_.load() == nullptr) {
    const Micros start = read_clock();
    blocked_ = true;
    if (!spin_first || !spin_first->spin(*backend_, deadline)) {
      backend_->wait(deadline);
      if (spin_first) spin_first->adapt();
    }
    note_blocked(start);
  }
  sleeping_.store(false, std::memory_order_relaxed);
}

void Scheduler::sleep_without_io(Micros until, bool timer_due) {
  const Micros start = read_clock();
  blocked_ = true;
  backend_->sleep_without_io(until, timer_due);
  note_blocked(start);
  ++stats_.low_power_batches;
}

void Scheduler::note_blocked(Micros start) {
  blocked_ = false;
  ++stats_.blocking_waits;
  stats_.time_blocked_us += read_clock() - start;
}

// ---- Switching and finishing ----

void Scheduler::report_stack_overflow(const char* task_name) {
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
  port::fatal(message);
}

void Scheduler::release_finished() {
  TaskRecord* task = std::exchange(finished_, nullptr);
  port::release_stack(task->stack);
  task->stack = {};
  drop_reference(task);  // the loop's reference, taken in spawn()
}

void Scheduler::fiber_main(Fiber* fiber) {
  auto* task = static_cast<TaskRecord*>(fiber);
  Scheduler& scheduler = *task->scheduler;
  scheduler.after_switch();
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
      scheduler.escape(task);
    }
  }
  scheduler.finish_task(task);
}

void Scheduler::finish_task(TaskRecord* task) {
  task->state = TaskState::kDone;
  task->live_link.unlink();
  --live_tasks_;
  // run()/run_until_complete() read the main task's outcome themselves.
  const bool awaited = !task->done_callbacks.empty() || task == main_task_;
  while (auto* node = task->done_callbacks.pop_front()) {
    auto* callback = static_cast<DoneCallback*>(node);
    callback->fn(callback, task);
  }
  if (!awaited && task->error && !task->cancelled && !task->retrieved) {
    // As MicroPython: the finished task gets one more turn in the queue, and the handler hears
    // of its exception then, unless somebody retrieved it meanwhile
    // (docs/semantics.md#exceptions). The queue holds a reference until that turn.
    add_reference(task);
    stamp_time();
    ready_.push_done(task, now_);
  }
  finished_ = task;  // its stack is released by whoever runs next: we are standing on it
  Fiber* next = &loop_fiber_;
  if (task != main_task_) {
    if (TaskRecord* ready = pick_next()) next = ready;
  }
  switch_to(next, true);
  port::fatal("asyncio: a finished task was resumed");
}

// ---- Task-facing primitives ----

void Scheduler::spawn(TaskRecord* task) {
  check_thread("create_task");
  task->scheduler = this;
  task->id = next_task_id_++;
  if (task->name.empty()) task->name = "task-" + std::to_string(task->id);
  task->stack = port::allocate_stack(task->stack.size);
  task->entry = &Scheduler::fiber_main;
  port::make_fiber(task);
  add_reference(task);
  task->live_link.task = task;
  live_tasks_list_.push_back(&task->live_link);
  ++live_tasks_;
  // Timers that fell due run first: the new task is due now, behind them
  // (docs/semantics.md#run-order).
  stamp_time();
  ready_.push_due(task, now_);
}

void Scheduler::wake_io(TaskRecord* task, unsigned events) {
  if (task->state != TaskState::kSuspended) return;
  if (TimerHeap::contains(task)) timers_.remove(task);
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

bool Scheduler::cancel(TaskRecord* task) {
  check_thread("Task.cancel");
  if (task->state == TaskState::kDone) return false;
  // As MicroPython's Task.cancel: a task awaiting another passes the cancellation down to the
  // innermost awaited task; its CancelledError then ends every awaiter on the way up.
  while (task->awaiting && task->awaiting->state != TaskState::kDone) task = task->awaiting;
  task->cancel_pending = true;
  if (task->state == TaskState::kSuspended) wake(task, WakeReason::kCancel);
  return true;
}

void Scheduler::throw_wrong_thread(const char* what) {
  throw RuntimeError(std::string(what) +
                     ": called from a thread that does not run this loop; only ThreadSafeFlag.set() "
                     "may be called from other threads");
}

// ---- Stall check ----

namespace {
// Writes `us` as milliseconds with one decimal ("32.9 ms"): by hand, because printf's floating
// point support would add kilobytes to a board's image.
void append_ms(std::string& out, Micros us) {
  const Micros tenths = us / 100;
  out += std::to_string(tenths / 10);
  out += '.';
  out += static_cast<char>('0' + tenths % 10);
  out += " ms";
}
}  // namespace

void Scheduler::check_stall() noexcept {
  const Micros now = read_clock();
  const Micros ran = now - turn_started_;
  turn_started_ = now;
  // One report a second at most: a program that stalls all the time must not drown in them.
  if (!current_ || ran <= stall_threshold_ || now - last_stall_report_ < 1'000'000) return;
  last_stall_report_ = now;
  try {
    std::string message = "asyncio: task '" + current_->name + "' ran for ";
    append_ms(message, ran);
    message += " without suspending (stall threshold ";
    append_ms(message, stall_threshold_);
    message += ')';
    port::log_error(message.c_str());
  } catch (...) {
    port::log_error("asyncio: a task ran without suspending longer than the stall threshold");
  }
}

// ---- ThreadSafeFlag delivery ----

namespace {
// Scopes in progress, counted by the parity of the epoch they began in: a waiter moves the
// epoch on and waits for the old parity to drain, while new scopes count under the new one.
std::atomic<unsigned> access_epoch{0};
std::atomic<unsigned> accesses_in_progress[2] = {0, 0};
std::atomic_flag epoch_writer = ATOMIC_FLAG_INIT;
}  // namespace

ExternalAccess::ExternalAccess() noexcept {
  for (;;) {
    const unsigned epoch = access_epoch.load();
    parity_ = epoch & 1U;
    accesses_in_progress[parity_].fetch_add(1);
    // Counted under a parity a waiter has already drained: count again under the current one.
    if (access_epoch.load() == epoch) return;
    accesses_in_progress[parity_].fetch_sub(1);
  }
}

ExternalAccess::~ExternalAccess() { accesses_in_progress[parity_].fetch_sub(1); }

void ExternalAccess::wait_for_earlier() noexcept {
  // One waiter at a time: a second flip would send new scopes back to the parity being drained.
  while (epoch_writer.test_and_set(std::memory_order_acquire)) {
  }
  const unsigned old_parity = access_epoch.fetch_add(1) & 1U;
  while (accesses_in_progress[old_parity].load() != 0) {
  }
  epoch_writer.clear(std::memory_order_release);
}

void Scheduler::signal_flag(FlagNode* flag) noexcept {
  if (flag->queued.exchange(true)) return;  // already on the stack: the loop will see it
  FlagNode* head = signalled_flags_.load(std::memory_order_relaxed);
  do {
    flag->next_signalled = head;
  } while (!signalled_flags_.compare_exchange_weak(head, flag));
  if (sleeping_.load()) backend_->wake();
}

void Scheduler::forget_flag(FlagNode* flag) noexcept {
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

void Scheduler::drain_signalled_flags() {
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

void Scheduler::poll_pollables() {
  for (auto* node = pollables_.front(); node;) {
    auto* wait = static_cast<PollableWait*>(node);
    node = pollables_.next(node);
    unsigned ready = 0;
    try {
      ready = wait->device->poll(wait->events);
    } catch (...) {
      wait->error = std::current_exception();
      ready = kPollError;
    }
    if (ready == 0) continue;
    wait->unlink();
    wake_io(wait->task, ready);
  }
}

unsigned Scheduler::wait_pollable(Pollable& device, unsigned events, Micros deadline) {
  PollableWait wait;
  wait.device = &device;
  wait.events = events;
  wait.task = current_;
  if (!wait.task) throw RuntimeError("wait_pollable: called outside a task");
  pollables_.push_back(&wait);
  note_wait(wait.task, "Pollable.poll", &device, -1, events);
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

void Scheduler::report_if_unretrieved(TaskRecord* task) {
  if (!task->retrieved) {
    task->retrieved = true;  // at most once
    loop_.call_exception_handler({"Task exception wasn't retrieved", task->error, task->name});
  }
  drop_reference(task);  // the queue's, taken in finish_task()
}

}  // namespace asyncio::detail
