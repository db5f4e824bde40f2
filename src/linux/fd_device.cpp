// FdDevice: a socket, pipe or terminal as a StreamDevice (Linux port).
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "asyncio/io.hpp"
#include "asyncio/net.hpp"

namespace asyncio {
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
  for (;;) {
    const ssize_t n = socket_ ? recv(fd_, buf.data(), buf.size(), 0) : ::read(fd_, buf.data(), buf.size());
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return kWouldBlock;
    if (errno != EINTR) throw fd_error(errno, "read", fd_);
  }
}

std::ptrdiff_t FdDevice::write_some(std::span<const std::byte> buf) {
  if (fd_ < 0) throw fd_error(EBADF, "write", fd_);
  for (;;) {
    const ssize_t n = socket_ ? send(fd_, buf.data(), buf.size(), MSG_NOSIGNAL)
                              : ::write(fd_, buf.data(), buf.size());
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return kWouldBlock;
    if (errno != EINTR) throw fd_error(errno, "write", fd_);
  }
}

void FdDevice::wait(unsigned events) {
  if (fd_ < 0) throw fd_error(EBADF, "wait", fd_);
  wait_io(fd_, events);
}

void FdDevice::write_eof() {
  if (fd_ < 0) throw fd_error(EBADF, "write_eof", fd_);
  if (!socket_) throw RuntimeError("write_eof: fd " + std::to_string(fd_) + " is not a socket");
  if (shutdown(fd_, SHUT_WR) != 0) throw fd_error(errno, "write_eof", fd_);
}

void FdDevice::close() {
  if (fd_ < 0) return;
  abort_io(fd_, EBADF);
  if (own_) ::close(fd_);
  fd_ = -1;
}

Stream open_fd(int fd, bool own) { return Stream(std::make_unique<FdDevice>(fd, own)); }

}  // namespace asyncio
