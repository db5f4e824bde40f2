// Waiting on file descriptors, shared by both backends; the backend choice (docs/design.md).
#include <sys/eventfd.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "asyncio/detail/virtual_backend.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/io.hpp"
#include "asyncio/net.hpp"
#include "asyncio/loop.hpp"
#include "linux_backend.hpp"
#include "log.hpp"

namespace asyncio {
namespace detail {

std::atomic<unsigned> LinuxBackend::fork_generation{0};

LinuxBackend::LinuxBackend(Loop& loop) : loop_(loop) {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
    return true;
  }();
  (void)registered;
  generation_ = fork_generation.load(std::memory_order_relaxed);
}

void LinuxBackend::throw_forked() {
  throw RuntimeError(
      "asyncio: this loop belongs to the parent process; a forked child cannot use it (exec or "
      "_exit in the child, or replace the loop: new_event_loop() after the old one is dropped)");
}

void LinuxBackend::start_wait(int fd, unsigned events, TaskRecord* task) {
  check_process();
  FdWaiters& entry = waiters(fd);
  TaskRecord*& slot = events == kPollRead ? entry.reader : entry.writer;
  if (slot) {
    throw RuntimeError("wait_io: task '" + slot->name + "' is already waiting to " +
                       (events == kPollRead ? "read" : "write") + " fd " + std::to_string(fd));
  }
  slot = task;
  try {
    (events == kPollRead ? entry.reader_token : entry.writer_token) = arm(fd, entry, events);
  } catch (...) {
    slot = nullptr;
    throw;
  }
  ++waiters_;
}

void LinuxBackend::cancel_wait(int fd, unsigned events, TaskRecord* task) {
  FdWaiters& entry = waiters(fd);
  TaskRecord*& slot = events == kPollRead ? entry.reader : entry.writer;
  if (slot != task) return;  // already delivered
  slot = nullptr;
  --waiters_;
  disarm(fd, entry, events, events == kPollRead ? entry.reader_token : entry.writer_token);
}

void LinuxBackend::abort(int fd, int error) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
  FdWaiters& entry = fds_[static_cast<std::size_t>(fd)];
  for (const unsigned direction : {kPollRead, kPollWrite}) {
    TaskRecord* task = direction == kPollRead ? entry.reader : entry.writer;
    if (!task) continue;
    cancel_wait(fd, direction, task);
    task->io_error = error;
    loop_.wake_io(task, kPollError);
  }
}

void LinuxBackend::deliver(int fd, unsigned directions, unsigned ready, int error) {
  FdWaiters& entry = waiters(fd);
  for (TaskRecord** slot : {&entry.reader, &entry.writer}) {
    const unsigned direction = slot == &entry.reader ? kPollRead : kPollWrite;
    TaskRecord* task = *slot;
    if (!task || !(directions & direction)) continue;
    *slot = nullptr;
    --waiters_;
    task->io_error = error;
    loop_.wake_io(task, ready);
  }
}

void LinuxBackend::wait(Micros deadline) {
  check_process();
  if (busy_wait(deadline)) return;
  block(deadline);
  adapt_busy_poll();
}

bool LinuxBackend::busy_wait(Micros deadline) {
  wait_started_ = -1;
  if (busy_poll_us_ <= 0 || waiters_ == 0 || low_power_) return false;
  wait_started_ = port::now();
  if (window_us_ <= 0) return false;  // adaptive, after a long wait: block at once
  Micros until = wait_started_ + window_us_;
  if (deadline >= 0 && deadline < until) until = deadline;
  do {
    if (peek()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    asm volatile("yield");
#endif
  } while (port::now() < until);
  return false;
}

// 1 ms: 5 % of the 20 ms slot, enough for the kernel to coalesce our wake-ups with others, and
// also what an event arriving just after a wake-up may wait beyond the slot (a smaller slack
// did not lower bench/power's latencies: the machine's wake-up jitter dominates).
//
// Only some of the loop's sleeps take the slack: clock_nanosleep (the batching sleeps) and
// epoll_pwait2 do, io_uring's wait timeout does not, so on io_uring the loop's waits for a due
// timer end at the boundary itself.
constexpr long kLowPowerTimerSlackNs = 1'000'000;

// The adaptive window's first step, as KVM's halt_poll_ns_grow_start (10 µs).
constexpr Micros kAdaptiveWindowStartUs = 10;

void LinuxBackend::adapt_busy_poll() {
  if (!adaptive_ || wait_started_ < 0) return;
  const Micros waited = port::now() - wait_started_;
  wait_started_ = -1;
  if (waited > busy_poll_us_) {
    // No spin within the ceiling would have caught it: halve the window (KVM's shrink of 2),
    // so that one late reply on a noisy machine does not undo what the others taught.
    window_us_ = window_us_ / 2 >= kAdaptiveWindowStartUs ? window_us_ / 2 : 0;
  } else if (waited > window_us_) {
    // A spin a little longer would have caught it: double the window, up to the ceiling.
    const Micros grown = window_us_ > 0 ? window_us_ * 2 : kAdaptiveWindowStartUs;
    window_us_ = grown < busy_poll_us_ ? grown : busy_poll_us_;
  }
}

void LinuxBackend::sleep_without_io(Micros deadline, bool timer_due) {
  // The kernel ends a sleep anywhere from its expiry to expiry + slack, and on a quiet machine
  // at the far end. Without a timer to serve, expire one slack early, so that the coalescing
  // window ends at the slot boundary and I/O batched here waits at most the slot, not the slot
  // plus the slack. A due timer must not run early (docs/semantics.md#run-order), so then the
  // sleep expires at the boundary itself.
  if (!timer_due && low_power_) deadline -= kLowPowerTimerSlackNs / 1000;
  timespec until{};
  until.tv_sec = deadline / 1'000'000;
  until.tv_nsec = (deadline % 1'000'000) * 1000;
  // The port clock is CLOCK_MONOTONIC in µs. A signal (EINTR) does not end the slot early: a
  // ThreadSafeFlag it set is picked up at the slot boundary like the rest.
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) {
  }
}

void LinuxBackend::set_low_power(bool on) {
  low_power_ = on;
  if (on) {
    saved_timer_slack_ns_ = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, kLowPowerTimerSlackNs, 0, 0, 0);
  } else if (saved_timer_slack_ns_ >= 0) {
    prctl(PR_SET_TIMERSLACK, saved_timer_slack_ns_, 0, 0, 0);
    saved_timer_slack_ns_ = -1;
  }
}

WakeFd::WakeFd() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw OSError(errno, "eventfd");
}

WakeFd::~WakeFd() { close(fd_); }

void WakeFd::signal() const noexcept {
  // Registered edge-triggered (epoll) or multishot (io_uring): every write is an event, so the
  // loop never needs to read the counter back; it cannot reach its 2^64-2 limit in practice.
  const std::uint64_t one = 1;
  ssize_t ignored = write(fd_, &one, sizeof one);
  (void)ignored;
}

namespace port {

std::unique_ptr<IoBackend> make_backend(Loop& loop, const char* requested) {
  std::string name = requested && *requested ? requested : "";
  if (name.empty()) {
    const char* environment = std::getenv("ASYNCIO_BACKEND");
    name = environment && *environment ? environment : "auto";
  }
  if (name == "epoll") return std::unique_ptr<IoBackend>(make_epoll_backend(loop));
  if (name == "virtual") return make_virtual_backend(loop);
  if (name == "uring" || name == "io_uring") {
    return std::unique_ptr<IoBackend>(make_uring_backend(loop));
  }
  if (name != "auto") {
    throw ValueError("unknown backend '" + name + "': expected auto, uring, epoll or virtual");
  }
  try {
    return std::unique_ptr<IoBackend>(make_uring_backend(loop));
  } catch (const OSError& error) {
    // What a kernel without io_uring, io_uring_disabled=1|2 or a seccomp filter answer;
    // ENOMEM: the locked-memory limit of kernels before 5.12; EACCES: an LSM (SELinux).
    const int code = error.error();
    if (code != EPERM && code != ENOSYS && code != EINVAL && code != ENOMEM && code != EACCES) {
      throw;
    }
    static bool told = false;
    if (!told) {
      told = true;
      log_message(LogLevel::info,
                  std::string("io_uring unavailable (") + error.what() + "); using epoll");
    }
    return std::unique_ptr<IoBackend>(make_epoll_backend(loop));
  }
}

}  // namespace port
}  // namespace detail

unsigned wait_io(int fd, unsigned events) {
  Loop& loop = get_event_loop();
  detail::TaskRecord* me = loop.current();
  if (!me) throw RuntimeError("wait_io: called outside a task");
  if (fd < 0) throw OSError(EBADF, "wait_io: bad file descriptor " + std::to_string(fd));
  if (events != POLL_RD && events != POLL_WR) {
    throw ValueError("wait_io: events must be POLL_RD or POLL_WR");
  }
  detail::DescriptorWaits* waits = loop.backend().descriptor_waits();
  if (!waits) throw RuntimeError("wait_io: the loop's backend cannot wait on descriptors");
  detail::DescriptorWaits& backend = *waits;
  backend.start_wait(fd, events, me);
  me->io_error = 0;
  detail::note_wait(me, "wait_io", nullptr, fd, events);
  try {
    loop.suspend();
  } catch (...) {
    backend.cancel_wait(fd, events, me);
    throw;
  }
  if (me->io_error) throw OSError(me->io_error, "wait_io: fd " + std::to_string(fd));
  return me->io_events;
}

void abort_io(int fd, int error) {
  Loop* loop = Loop::running();
  if (!loop) return;  // no loop runs on this thread, so no task of it can wait
  if (detail::DescriptorWaits* waits = loop->backend().descriptor_waits()) waits->abort(fd, error);
}

}  // namespace asyncio
