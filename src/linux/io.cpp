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
#include "asyncio/linux/io.hpp"
#include "asyncio/linux/net.hpp"
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
    scheduler_of(loop_).wake_io(task, kPollError);
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
    scheduler_of(loop_).wake_io(task, ready);
  }
}

void LinuxBackend::sleep_without_io(Micros deadline, bool timer_due) {
  // The kernel ends a sleep anywhere from its expiry to expiry + slack, and on a quiet machine
  // at the far end. Without a timer to serve, expire one slack early, so that the coalescing
  // window ends at the deadline and I/O batched meanwhile waits at most until then, not a
  // slack longer. A due timer must not run early (docs/semantics.md#run-order), so then the
  // sleep expires at the deadline itself.
  if (!timer_due) deadline -= timer_slack_us_;
  timespec until{};
  until.tv_sec = deadline / 1'000'000;
  until.tv_nsec = (deadline % 1'000'000) * 1000;
  // The port clock is CLOCK_MONOTONIC in µs. A signal (EINTR) does not end the sleep early: a
  // ThreadSafeFlag it set is picked up by the poll that follows, like the rest.
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) {
  }
}

// Only some of the loop's sleeps take the slack: clock_nanosleep (the batching sleeps) and
// epoll_pwait2 do, io_uring's wait timeout does not, so on io_uring the loop's waits for a due
// timer end at the deadline itself.
void LinuxBackend::set_timer_slack(Micros us) {
  if (us > 0) {
    if (saved_timer_slack_ns_ < 0) saved_timer_slack_ns_ = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, static_cast<unsigned long>(us) * 1000, 0, 0, 0);
  } else if (saved_timer_slack_ns_ >= 0) {
    prctl(PR_SET_TIMERSLACK, saved_timer_slack_ns_, 0, 0, 0);
    saved_timer_slack_ns_ = -1;
  }
  timer_slack_us_ = us > 0 ? us : 0;
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
  detail::Scheduler& scheduler = detail::scheduler_of(get_event_loop());
  detail::TaskRecord* me = scheduler.current();
  if (!me) throw RuntimeError("wait_io: called outside a task");
  if (fd < 0) throw OSError(EBADF, "wait_io: bad file descriptor " + std::to_string(fd));
  if (events != POLL_RD && events != POLL_WR) {
    throw ValueError("wait_io: events must be POLL_RD or POLL_WR");
  }
  detail::DescriptorWaits* waits = scheduler.backend().descriptor_waits();
  if (!waits) throw RuntimeError("wait_io: the loop's backend cannot wait on descriptors");
  detail::DescriptorWaits& backend = *waits;
  backend.start_wait(fd, events, me);
  me->io_error = 0;
  detail::note_wait(me, "wait_io", nullptr, fd, events);
  try {
    scheduler.suspend();
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
  detail::IoBackend& backend = detail::scheduler_of(*loop).backend();
  if (detail::DescriptorWaits* waits = backend.descriptor_waits()) waits->abort(fd, error);
}

}  // namespace asyncio
