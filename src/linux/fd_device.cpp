// FdDevice: a socket, pipe or terminal as a StreamDevice (Linux port).
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

#include <algorithm>
#include <cstring>
#include <utility>

#include "asyncio/linux/io.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/linux/net.hpp"
#include "linux_backend.hpp"

namespace asyncio {
namespace detail {
/// Tests only: recv() and send() system calls made by socket devices (none on io_uring).
std::atomic<unsigned long> socket_system_calls{0};
std::atomic<bool> receive_pool{false};
}  // namespace detail

void set_receive_pool(bool on) { detail::receive_pool = on; }

namespace {

/// A write to a pipe or terminal whose reader is gone raises SIGPIPE, which kills the process
/// by default. Sockets avoid it per call (MSG_NOSIGNAL); other descriptors cannot, so the
/// first FdDevice over one ignores the signal process-wide, as CPython does at start-up.
/// A handler the application installed itself is left alone.
void ignore_sigpipe_once() {
  static const bool done = [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      signal(SIGPIPE, SIG_IGN);
    }
    return true;
  }();
  (void)done;
}

OSError fd_error(int error, const char* operation, int fd) {
  return OSError(error, std::string(operation) + " (fd " + std::to_string(fd) + ")");
}

// The most one send copies: a bulk transfer is not slowed by an extra round trip every 64 KiB.
constexpr std::size_t kSendLimit = 64 * 1024;

/// The running loop's native stream I/O (io_uring), or null (epoll, or no loop running).
detail::StreamIo* native_io() {
  Loop* loop = Loop::running();
  if (!loop) return nullptr;
  // Only the Linux backends offer descriptor waits in this port; a virtual-time loop has none.
  detail::DescriptorWaits* waits = detail::scheduler_of(*loop).backend().descriptor_waits();
  return waits ? static_cast<detail::LinuxBackend*>(waits)->stream_io() : nullptr;
}

/// Throws the errno a completed operation left, once.
void report_error(detail::StreamOp& op, const char* operation, int fd) {
  if (const int error = std::exchange(op.error, 0)) throw fd_error(error, operation, fd);
}

/// Gives `op` back: freed now, or by its backend once the kernel is done with its buffers.
void dispose(detail::StreamOp* op) {
  if (!op) return;
  // A destroyed backend has cleared the owner of every op it ran.
  if (op->owner) {
    op->owner->release(op);
  } else {
    delete op;
  }
}

/// Copies what `op` received into `buf`, oldest first: the count.
std::size_t take_input(detail::StreamOp& op, std::span<std::byte> buf) {
  std::size_t copied = 0;
  while (copied < buf.size() && op.held_head < op.held.size()) {
    detail::HeldChunk& chunk = op.held[op.held_head];
    const std::size_t n = std::min<std::size_t>(buf.size() - copied, chunk.end - chunk.begin);
    std::memcpy(buf.data() + copied, chunk.data + chunk.begin, n);
    chunk.begin += static_cast<std::uint32_t>(n);
    op.held_bytes -= n;
    copied += n;
    if (chunk.begin == chunk.end) op.owner->give_back(op);
  }
  if (copied < buf.size() && op.begin < op.end) {
    const std::size_t n = std::min(buf.size() - copied, op.end - op.begin);
    std::memcpy(buf.data() + copied, op.buffer.get() + op.begin, n);
    op.begin += n;
    copied += n;
  }
  return copied;
}

}  // namespace

FdDevice::FdDevice(int fd, bool own) : fd_(fd), own_(own), socket_(false) {
  struct stat info {};
  if (fd < 0 || fstat(fd, &info) != 0) throw fd_error(EBADF, "FdDevice", fd);
  socket_ = S_ISSOCK(info.st_mode);
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)) {
    throw fd_error(errno, "FdDevice: making the descriptor non-blocking", fd);
  }
  if (!socket_) ignore_sigpipe_once();
}

FdDevice::~FdDevice() { close(); }

std::ptrdiff_t FdDevice::read_some(std::span<std::byte> buf) {
  if (fd_ < 0) throw fd_error(EBADF, "read", fd_);
  if (socket_ && native_io()) return receive_natively(buf);
  for (;;) {
    if (socket_) detail::socket_system_calls.fetch_add(1, std::memory_order_relaxed);
    const ssize_t n = socket_ ? recv(fd_, buf.data(), buf.size(), 0) : ::read(fd_, buf.data(), buf.size());
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return kWouldBlock;
    if (errno != EINTR) throw fd_error(errno, "read", fd_);
  }
}

std::ptrdiff_t FdDevice::write_some(std::span<const std::byte> buf) {
  if (fd_ < 0) throw fd_error(EBADF, "write", fd_);
  if (socket_ && native_io()) return send_natively(buf);
  for (;;) {
    if (socket_) detail::socket_system_calls.fetch_add(1, std::memory_order_relaxed);
    const ssize_t n = socket_ ? send(fd_, buf.data(), buf.size(), MSG_NOSIGNAL)
                              : ::write(fd_, buf.data(), buf.size());
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return kWouldBlock;
    if (errno != EINTR) throw fd_error(errno, "write", fd_);
  }
}

// What was received stays in the operation's buffer until read: a reader cancelled while
// the receive is in flight loses nothing (docs/semantics.md#streams).
std::ptrdiff_t FdDevice::receive_natively(std::span<std::byte> buf) {
  if (!receiving_) receiving_ = new detail::StreamOp(detail::StreamOp::Kind::kReceive);
  detail::StreamOp& op = *receiving_;
  if (op.in_flight) native_io()->collect();
  if (op.has_input()) return static_cast<std::ptrdiff_t>(take_input(op, buf));
  report_error(op, "read", fd_);
  if (op.eof) return 0;
  if (!op.in_flight) {
    op.begin = op.end = 0;
    native_io()->start(op, fd_);
  }
  return kWouldBlock;
}

// The bytes are copied into the operation's buffer and count as written, as bytes the kernel
// takes into a socket buffer do; one send at a time is the back-pressure. A send's error is
// raised by the next write.
std::ptrdiff_t FdDevice::send_natively(std::span<const std::byte> buf) {
  if (!sending_) sending_ = new detail::StreamOp(detail::StreamOp::Kind::kSend);
  detail::StreamOp& op = *sending_;
  if (op.in_flight) {
    native_io()->collect();
    if (op.in_flight) return kWouldBlock;
  }
  report_error(op, "write", fd_);
  const std::size_t n = std::min(buf.size(), kSendLimit);
  if (n == 0) return 0;
  if (op.capacity < n) {
    const std::size_t capacity = std::min(kSendLimit, std::max({n, op.capacity * 2, std::size_t{4096}}));
    op.buffer = std::make_unique_for_overwrite<std::byte[]>(capacity);
    op.capacity = capacity;
  }
  std::memcpy(op.buffer.get(), buf.data(), n);
  op.begin = 0;
  op.end = n;
  native_io()->start(op, fd_);
  return static_cast<std::ptrdiff_t>(n);
}

void FdDevice::wait(unsigned events) {
  if (fd_ < 0) throw fd_error(EBADF, "wait", fd_);
  detail::StreamIo* io = socket_ ? native_io() : nullptr;
  if (!io) return (void)wait_io(fd_, events);
  if (!detail::scheduler_of(*Loop::running()).current()) {
    throw RuntimeError("wait: called outside a task");
  }
  if (events != POLL_RD && events != POLL_WR) {
    throw ValueError("wait: events must be POLL_RD or POLL_WR");
  }
  if (events == POLL_RD) {
    // Something to read already (data, the end, an error), or a receive to start first.
    if (receiving_ && receiving_->in_flight) io->collect();
    const detail::StreamOp* op = receiving_;
    if (op && (op->has_input() || op->error != 0 || op->eof)) return;
    if (!op || !op->in_flight) receive_natively({});
  }
  detail::StreamOp* op = events == POLL_RD ? receiving_ : sending_;
  if (!op || !op->in_flight) return;  // no send in flight: a write is taken at once
  if (op->waiter) {
    throw RuntimeError(std::string("wait: another task is already waiting to ") +
                       (events == POLL_RD ? "read" : "write") + " fd " + std::to_string(fd_));
  }
  if (const int error = io->wait(*op)) throw fd_error(error, "wait", fd_);
}

void FdDevice::write_eof() {
  if (fd_ < 0) throw fd_error(EBADF, "write_eof", fd_);
  if (!socket_) throw RuntimeError("write_eof: fd " + std::to_string(fd_) + " is not a socket");
  // A send still in flight goes first: the shutdown would otherwise overtake it.
  while (sending_ && sending_->in_flight && native_io()) wait(POLL_WR);
  if (sending_) report_error(*sending_, "write_eof", fd_);
  if (shutdown(fd_, SHUT_WR) != 0) throw fd_error(errno, "write_eof", fd_);
}

void FdDevice::close() {
  if (fd_ < 0) return;
  dispose(std::exchange(receiving_, nullptr));
  dispose(std::exchange(sending_, nullptr));
  abort_io(fd_, EBADF);
  if (own_) ::close(fd_);
  fd_ = -1;
}

Stream open_fd(int fd, bool own) { return Stream(std::make_unique<FdDevice>(fd, own)); }

}  // namespace asyncio
