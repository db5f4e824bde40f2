// The stall detector and the task dump on a signal (Linux port; docs/using.md#observing-the-loop).
//
// The stall detector samples the loop thread with a timer signal, as Seastar's reactor does:
// the loop counts its picks anyway (LoopStats), so the sampler sees a task that has not let
// the loop pick for a whole threshold without the switch path doing any extra work.
#include "monitor.hpp"

#include <execinfo.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string>

#include "asyncio/linux/debug_signal.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/introspect.hpp"
#include "log.hpp"

namespace asyncio::detail {

namespace {

// The registry a dump request walks: slots of monitors, each with a count of handlers
// reading it, so that a monitor leaving waits for a handler on another thread to finish.
constexpr int kSlots = 256;
std::atomic<LoopMonitor*> registry[kSlots];
std::atomic<int> readers[kSlots];

int register_monitor(LoopMonitor* monitor) noexcept {
  for (int slot = 0; slot < kSlots; ++slot) {
    LoopMonitor* empty = nullptr;
    if (registry[slot].compare_exchange_strong(empty, monitor)) return slot;
  }
  return -1;  // more loops than slots: this one does not dump on a signal
}

void unregister_monitor(int slot) noexcept {
  if (slot < 0) return;
  registry[slot].store(nullptr);
  while (readers[slot].load() != 0) sched_yield();
}

/// The signal that samples the loop thread (a real-time one, so that it queues per timer).
int sample_signal() { return SIGRTMIN + 6; }

void write_text(const char* text) noexcept {
  std::size_t length = std::strlen(text);
  while (length > 0) {
    const ssize_t written = ::write(STDERR_FILENO, text, length);
    if (written <= 0) {
      if (written < 0 && errno == EINTR) continue;
      return;
    }
    text += written;
    length -= static_cast<std::size_t>(written);
  }
}

/// Appends `text` to `buffer` (bounded), for messages composed inside a signal handler.
void append(char* buffer, std::size_t size, std::size_t& used, const char* text) noexcept {
  while (*text && used + 1 < size) buffer[used++] = *text++;
  buffer[used] = '\0';
}

void append_number(char* buffer, std::size_t size, std::size_t& used, std::int64_t value) noexcept {
  char digits[24];
  int count = 0;
  if (value < 0) value = 0;
  do {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && count < 23);
  char text[24];
  for (int i = 0; i < count; ++i) text[i] = digits[count - 1 - i];
  text[count] = '\0';
  append(buffer, size, used, text);
}

Micros stall_threshold_from_environment() {
  const char* text = std::getenv("ASYNCIO_STALL_MS");
  if (!text || !*text) return 0;
  char* end = nullptr;
  const long ms = std::strtol(text, &end, 10);
  if (*end != '\0' || ms < 0 || ms > 3'600'000) {
    port::log_error(("asyncio: ASYNCIO_STALL_MS must be a number of milliseconds (0 to 3600000), "
                     "not '" + std::string(text) + "'; the stall detector stays off")
                        .c_str());
    return 0;
  }
  return static_cast<Micros>(ms) * 1000;
}

}  // namespace

LoopMonitor::LoopMonitor(Loop& loop) : loop_(loop), slot_(register_monitor(this)) {
  if (const Micros threshold = stall_threshold_from_environment(); threshold > 0) {
    try {
      set_stall_threshold(threshold);
    } catch (const std::exception& error) {
      port::log_error(error.what());
    }
  }
}

LoopMonitor::~LoopMonitor() {
  stop_timer();
  unregister_monitor(slot_);
  // Normally the loop unmarked its signalled flags already; a request that raced with its
  // end must not leave our nodes on its stack.
  if (dump_node_.queued.load()) scheduler_of(loop_).forget_flag(&dump_node_);
  if (stall_node_.queued.load()) scheduler_of(loop_).forget_flag(&stall_node_);
}

void LoopMonitor::stop_timer() noexcept {
  if (timer_made_) timer_delete(timer_);
  timer_made_ = false;
}

void LoopMonitor::set_stall_threshold(Micros us) {
  static std::once_flag installed;
  std::call_once(installed, [] {
    // backtrace() loads libgcc on its first call, which allocates: never first in a handler.
    void* frames[2];
    (void)backtrace(frames, 2);
    struct sigaction action {};
    action.sa_sigaction = &LoopMonitor::on_sample;
    action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(sample_signal(), &action, nullptr);
  });
  stop_timer();
  threshold_us_ = us;
  reported_ = false;
  if (us == 0) return;
  sigevent event{};
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = sample_signal();
  event.sigev_value.sival_ptr = this;
  event._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
  if (timer_create(CLOCK_MONOTONIC, &event, &timer_) != 0) {
    throw OSError(errno, "set_stall_threshold: timer_create");
  }
  timer_made_ = true;
  // Four samples per threshold: a stall is seen at most a quarter threshold late.
  const Micros period = std::max<Micros>(us / 4, 250);
  itimerspec spec{};
  spec.it_interval.tv_sec = static_cast<time_t>(period / 1'000'000);
  spec.it_interval.tv_nsec = static_cast<long>(period % 1'000'000 * 1000);
  spec.it_value = spec.it_interval;
  timer_settime(timer_, 0, &spec, nullptr);
}

void LoopMonitor::on_sample(int /*signal_number*/, siginfo_t* info, void* /*context*/) {
  const int saved_errno = errno;
  if (info && info->si_code == SI_TIMER) {
    static_cast<LoopMonitor*>(info->si_value.sival_ptr)->sample();
  }
  errno = saved_errno;
}

void LoopMonitor::sample() noexcept {
  if (threshold_us_ == 0) return;
  const Micros now = port::now();
  const LoopStats& stats = loop_.stats();
  // Every pick polls once: a count that moved means the loop got control since the last sample.
  const std::uint64_t activity = stats.io_polls + stats.task_switches;
  const Scheduler& scheduler = scheduler_of(loop_);
  if (!loop_.is_running() || scheduler.blocked() || !scheduler.current() ||
      activity != last_activity_) {
    last_activity_ = activity;
    quiet_since_ = now;
    reported_ = false;
    return;
  }
  if (reported_ || now - quiet_since_ < threshold_us_) return;
  reported_ = true;
  std::size_t used = 0;
  const char* name = scheduler.current()->name.c_str();
  for (; name[used] && used + 1 < sizeof stalled_name_; ++used) stalled_name_[used] = name[used];
  stalled_name_[used] = '\0';
  stall_started_.store(quiet_since_, std::memory_order_relaxed);
  stall_limit_.store(threshold_us_, std::memory_order_relaxed);
  char message[200];
  used = 0;
  append(message, sizeof message, used, "asyncio: task '");
  append(message, sizeof message, used, stalled_name_);
  append(message, sizeof message, used, "' has run for over ");
  append_number(message, sizeof message, used, (now - quiet_since_) / 1000);
  append(message, sizeof message, used, " ms without suspending");
  // At most one backtrace a second: a program that stalls all the time must not drown in them.
  if (now - last_backtrace_ >= 1'000'000) {
    last_backtrace_ = now;
    append(message, sizeof message, used, "; the loop thread's stack:\n");
    write_text(message);
    void* frames[64];
    backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
  } else {
    append(message, sizeof message, used, "\n");
    write_text(message);
  }
  // The warning with the full duration, once it yields.
  scheduler_of(loop_).signal_flag(&stall_node_);
}

void LoopMonitor::StallNode::on_signalled() {
  const Micros ran = port::now() - monitor.stall_started_.load(std::memory_order_relaxed);
  try {
    char text[96];
    std::snprintf(text, sizeof text, "' ran for %.1f ms without suspending (stall threshold %.1f ms)",
                  static_cast<double>(ran) / 1000.0,
                  static_cast<double>(monitor.stall_limit_.load(std::memory_order_relaxed)) / 1000.0);
    log_message(LogLevel::warn, "task '" + std::string(monitor.stalled_name_) + text);
  } catch (...) {
  }
}

void LoopMonitor::request_dumps() noexcept {
  for (int slot = 0; slot < kSlots; ++slot) {
    readers[slot].fetch_add(1);
    if (LoopMonitor* monitor = registry[slot].load()) {
      scheduler_of(monitor->loop_).signal_flag(&monitor->dump_node_);
    }
    readers[slot].fetch_sub(1);
  }
}

void LoopMonitor::DumpNode::on_signalled() {
  try {
    std::ostringstream out;
    dump_tasks(out, monitor.loop_);
    write_text(out.str().c_str());
  } catch (...) {
    port::log_error("asyncio: could not dump the loop's tasks");
  }
}

}  // namespace asyncio::detail

namespace asyncio {

namespace {
int dump_signal = 0;

void on_dump_signal(int /*signal_number*/) {
  const int saved_errno = errno;
  detail::LoopMonitor::request_dumps();
  errno = saved_errno;
}
}  // namespace

void dump_tasks_on_signal(int signal) {
  if (signal < 0 || signal >= NSIG || signal == SIGKILL || signal == SIGSTOP) {
    throw ValueError("dump_tasks_on_signal: " + std::to_string(signal) +
                     " is not a signal that can be caught");
  }
  if (dump_signal != 0) {
    std::signal(dump_signal, SIG_DFL);
    dump_signal = 0;
  }
  if (signal == 0) return;
  struct sigaction action {};
  action.sa_handler = &on_dump_signal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  if (sigaction(signal, &action, nullptr) != 0) {
    throw OSError(errno, "dump_tasks_on_signal: sigaction");
  }
  dump_signal = signal;
}

}  // namespace asyncio
