// The epoll backend.
//
// The seed polls I/O at every task switch (docs/semantics.md#fast-io). On epoll that is a system call (0.25 µs
// on a host without page-table isolation, ~1.2 µs with it: 10-50x a fiber switch), so the
// per-switch poll is rate-limited: it only happens while tasks wait on descriptors, and at
// most once per kPollIntervalUs (a clock read, ~25 ns, per switch). That bounds the latency
// it adds to I/O at 50 µs while a busy loop switches (docs/semantics.md#io-polling). ThreadSafeFlags
// do not go through here at all: the loop sees them through its lock-free stack at every
// switch, and the eventfd only wakes a blocked wait.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "asyncio/errors.hpp"
#include "linux_backend.hpp"

namespace asyncio::detail {
namespace {

constexpr Micros kPollIntervalUs = 50;  // the core issue's bound on added I/O latency
constexpr std::uint64_t kWakeTag = ~std::uint64_t{0};
constexpr int kMaxEvents = 128;

unsigned to_poll_bits(std::uint32_t events) {
  unsigned bits = 0;
  if (events & EPOLLIN) bits |= kPollRead;
  if (events & EPOLLOUT) bits |= kPollWrite;
  if (events & EPOLLERR) bits |= kPollError;
  if (events & EPOLLHUP) bits |= kPollHangup;
  return bits;
}

class EpollBackend final : public LinuxBackend {
 public:
  explicit EpollBackend(Loop& loop) : LinuxBackend(loop), epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (epoll_fd_ < 0) throw OSError(errno, "epoll_create1");
    epoll_event event{};
    event.events = EPOLLIN | EPOLLET;
    event.data.u64 = kWakeTag;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_.fd(), &event) < 0) {
      const int error = errno;
      close(epoll_fd_);
      throw OSError(error, "epoll_ctl(eventfd)");
    }
  }
  ~EpollBackend() override { close(epoll_fd_); }

  const char* name() const override { return "epoll"; }

  void poll_if_ready() override {  // only while a task waits (needs_poll)
    if (port::now() - last_poll_ < kPollIntervalUs) return;
    collect(0);
  }

  void wake() noexcept override { wake_fd_.signal(); }

 protected:
  bool peek() override { return collect(0) > 0; }

  void block(Micros deadline) override {
    Micros timeout = -1;
    if (deadline >= 0) {
      timeout = deadline - port::now();
      if (timeout < 0) timeout = 0;
    }
    collect(timeout);
  }

 private:
  /// One epoll_pwait2 with a µs timeout (-1 = forever); delivers what it returns. Returns the
  /// number of events (0 on a timeout or a signal).
  int collect(Micros timeout) {
    check_process();
    epoll_event events[kMaxEvents];
    timespec ts{};
    if (timeout >= 0) {
      ts.tv_sec = timeout / 1'000'000;
      ts.tv_nsec = (timeout % 1'000'000) * 1000;
    }
    const int count = epoll_pwait2(epoll_fd_, events, kMaxEvents, timeout >= 0 ? &ts : nullptr, nullptr);
    last_poll_ = port::now();
    if (count < 0) {
      if (errno == EINTR) return 0;  // a signal (maybe a ThreadSafeFlag set by its handler)
      throw OSError(errno, "epoll_pwait2");
    }
    for (int i = 0; i < count; ++i) {
      if (events[i].data.u64 == kWakeTag) continue;
      const int fd = static_cast<int>(events[i].data.u64);
      const unsigned ready = to_poll_bits(events[i].events);
      unsigned directions = ready & (kPollRead | kPollWrite);
      if (ready & (kPollError | kPollHangup)) directions = kPollRead | kPollWrite;
      FdWaiters& entry = waiters(fd);
      deliver(fd, directions, ready);
      if (!entry.reader && !entry.writer) continue;
      try {
        register_fd(fd, entry);
      } catch (const OSError& error) {
        deliver(fd, kPollRead | kPollWrite, kPollError, error.error());
      }
    }
    return count;
  }

  /// (Re)registers `fd` for the directions that still have a waiter, one shot.
  void register_fd(int fd, FdWaiters& entry) {
    epoll_event event{};
    event.events = EPOLLONESHOT | (entry.reader ? EPOLLIN : 0u) | (entry.writer ? EPOLLOUT : 0u);
    event.data.u64 = static_cast<std::uint64_t>(fd);
    // MOD when we registered it before; the kernel forgets a descriptor when it is closed,
    // and the number may have been reused since, so fall back from one to the other.
    int op = entry.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int result = epoll_ctl(epoll_fd_, op, fd, &event);
    if (result < 0 && (errno == ENOENT || errno == EEXIST)) {
      op = errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
      result = epoll_ctl(epoll_fd_, op, fd, &event);
    }
    if (result < 0) {
      const int error = errno;
      if (error == EPERM) {
        throw OSError(error, "wait_io: fd " + std::to_string(fd) +
                                 " cannot be polled (a regular file or directory?)");
      }
      throw OSError(error, "wait_io: epoll_ctl on fd " + std::to_string(fd));
    }
    entry.registered = true;
  }

  std::uint64_t arm(int fd, FdWaiters& entry, unsigned /*events*/) override {
    register_fd(fd, entry);
    return 0;
  }

  void disarm(int fd, FdWaiters& entry, unsigned /*events*/, std::uint64_t /*token*/) override {
    if (entry.reader || entry.writer) {
      register_fd(fd, entry);
    } else if (entry.registered) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);  // fails harmlessly if fd was closed
      entry.registered = false;
    }
  }

  int epoll_fd_;
  WakeFd wake_fd_;
  Micros last_poll_ = 0;
};

}  // namespace

IoBackend* make_epoll_backend(Loop& loop) { return new EpollBackend(loop); }

}  // namespace asyncio::detail
