// The event loop's user API: running, closing and renewing, modes and settings, the exception
// handler and console interrupts. The scheduler itself is detail::Scheduler.
#include "asyncio/loop.hpp"

#include <algorithm>
#include <memory>
#include <new>
#include <string>

#include "asyncio/detail/duration.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/task.hpp"
#include "registry_modes.hpp"

namespace asyncio {

namespace {
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

Loop::Loop(std::unique_ptr<detail::IoBackend> backend) : scheduler_(*this, std::move(backend)) {
  roundrobin(detail::default_roundrobin());
  if (detail::default_low_power()) power_mode(true);
}

Loop::~Loop() {
  // A thread that has just set a flag of ours may still be on its way out of signal_flag().
  detail::ExternalAccess::wait_for_earlier();
  try {
    close();
  } catch (...) {
    detail::port::log_error("asyncio: error while closing a loop in its destructor");
  }
}

// ---- Running ----

void Loop::run_forever() {
  if (is_running()) throw RuntimeError("run_forever: the loop is already running");
  scheduler_.run(nullptr);
}

void detail::run_until_done(Loop& loop, TaskRecord* task) {
  if (loop.is_running()) throw RuntimeError("run_until_complete: the loop is already running");
  if (task->state == TaskState::kDone) return;
  Scheduler& scheduler = scheduler_of(loop);
  if (task->scheduler != &scheduler) {
    throw RuntimeError("run_until_complete: task belongs to another loop");
  }
  if (!scheduler.run(task)) {
    throw RuntimeError(
        "run: task '" + task->name +
        "' can never finish: every remaining task waits on an Event, Lock or task that no "
        "running task, timer, I/O or ThreadSafeFlag can complete (deadlock)");
  }
}

void Loop::close() { scheduler_.close(); }

void Loop::renew(Options options) {
  if (is_running()) throw RuntimeError("new_event_loop: the current loop is running");
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

// ---- Modes and settings ----

void Loop::power_mode(bool on) {
  if (on && !detail::port::low_power_supported()) {
    throw ValueError("power_mode(true): low-power mode is not supported on this platform");
  }
  scheduler_.set_low_power(on);
}

void Loop::set_io_priority_bound(Micros bound) {
  if (bound < 0) throw ValueError("set_io_priority_bound: the bound must be >= 0");
  // Saturated: the queue subtracts it from the clock.
  scheduler_.ready_queue().set_io_priority_bound(std::min(bound, detail::kForever));
}

void Loop::set_timer_resolution(Micros resolution) {
  if (resolution < 0) throw ValueError("set_timer_resolution: the resolution must be >= 0");
  // Saturated: a deadline is rounded up to the grid, which must not overflow.
  scheduler_.set_timer_resolution(std::min(resolution, detail::kForever));
}

void Loop::set_busy_poll(Micros us, BusyPoll mode) {
  if (us < 0 || us > 1'000'000) {
    throw ValueError("set_busy_poll: the window must be 0 to 1,000,000 us (got " +
                     std::to_string(us) + ")");
  }
  if (mode != BusyPoll::kFixed && mode != BusyPoll::kAdaptive) {
    throw ValueError("set_busy_poll: the mode must be BusyPoll::kFixed or BusyPoll::kAdaptive");
  }
  scheduler_.busy_poller().configure(us, mode == BusyPoll::kAdaptive);
}

void Loop::set_stall_threshold(Micros us) {
  if (us < 0) throw ValueError("set_stall_threshold: the threshold must be >= 0 (0: off)");
  scheduler_.check_thread("set_stall_threshold");
  // A port without its own detector gets the core's, which reports when the task suspends.
  const bool port_watches = scheduler_.backend().set_stall_threshold(us);
  scheduler_.set_stall_threshold(port_watches ? 0 : us);
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

// ---- Console interrupts ----

bool Loop::interrupt() noexcept {
  const detail::ExternalAccess access;  // from a signal handler on any thread
  if (interrupt_requested_.exchange(true)) return false;
  scheduler_.signal_flag(&interrupt_node_);
  return true;
}

bool detail::take_interrupt(Loop& loop) noexcept {
  // One that came after the run must not cancel the next one.
  loop.scheduler_.forget_flag(&loop.interrupt_node_);
  const bool was = loop.interrupted_;
  loop.interrupted_ = false;
  loop.interrupt_requested_.store(false);
  return was;
}

void Loop::InterruptNode::on_signalled() {
  loop.interrupted_ = true;
  if (detail::TaskRecord* main = loop.scheduler_.main_task()) {
    loop.scheduler_.cancel(main);
  } else {
    loop.stop();
  }
}

}  // namespace asyncio
