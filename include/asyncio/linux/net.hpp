// Streams over file descriptors, TCP connections and servers (Linux port; docs/semantics.md#streams, docs/semantics.md#errors).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "asyncio/stream.hpp"

namespace asyncio {

namespace detail {
struct StreamOp;
}

/// A socket, pipe, FIFO or terminal as a StreamDevice. The descriptor is made non-blocking.
/// Sockets are written with MSG_NOSIGNAL; for other descriptors SIGPIPE is ignored process-wide
/// the first time one is wrapped (as CPython does at start-up), so a closed peer is always
/// OSError(EPIPE), never a signal.
class FdDevice final : public StreamDevice {
 public:
  /// `own`: close the descriptor on close(). Throws OSError(EBADF) on a bad descriptor.
  explicit FdDevice(int fd, bool own = true);
  ~FdDevice() override;
  FdDevice(const FdDevice&) = delete;
  FdDevice& operator=(const FdDevice&) = delete;

  std::ptrdiff_t read_some(std::span<std::byte> buf) override;
  std::ptrdiff_t write_some(std::span<const std::byte> buf) override;
  void wait(unsigned events) override;
  void write_eof() override;
  void close() override;

  /// The descriptor, or -1 once closed.
  int fd() const noexcept { return fd_; }
  /// True if the descriptor is a socket (on io_uring, its I/O then goes through the ring).
  bool is_socket() const noexcept { return socket_; }

 private:
  std::ptrdiff_t receive_natively(std::span<std::byte> buf);
  std::ptrdiff_t send_natively(std::span<const std::byte> buf);

  int fd_;
  bool own_;
  bool socket_;
  // A socket on io_uring receives and sends through the ring into these (src/linux/).
  detail::StreamOp* receiving_ = nullptr;
  detail::StreamOp* sending_ = nullptr;
};

/// A Stream over a descriptor (see FdDevice): `open_fd(pipe_fds[0])`.
Stream open_fd(int fd, bool own = true);

/// Wakes any task waiting on `fd` (wait_io, a Stream's read or drain) with OSError(`error`)
/// and withdraws its wait; call it before closing a descriptor another task may wait on.
void abort_io(int fd, int error);

/// Connects to host:port (IPv4 or IPv6; a name is resolved on a resolver thread while the loop
/// runs other tasks) and returns the stream twice, as `reader, writer = await
/// open_connection(...)`: `auto [reader, writer] = asyncio::open_connection("localhost", 80);`.
/// Tries each resolved address in turn; raises OSError (ECONNREFUSED, ETIMEDOUT…) from the
/// last one, or resolve()'s error.
std::pair<Stream, Stream> open_connection(const std::string& host, std::uint16_t port);

/// One address resolve() found.
struct ResolvedAddress {
  /// AF_INET or AF_INET6.
  int family;
  /// A sockaddr_in or sockaddr_in6, as connect() and bind() take it.
  std::vector<std::byte> address;
};
/// Resolves host:port for a stream socket without blocking the loop; numeric addresses are
/// parsed in place, names on one of a few resolver threads shared by the process (lookups
/// beyond that queue: thousands of them never start thousands of threads). A failure is
/// OSError with gai_strerror's text and an errno to test: ENOENT (no such name), EAGAIN (try
/// again later), EINVAL (anything else), or the system's errno.
std::vector<ResolvedAddress> resolve(const std::string& host, std::uint16_t port,
                                     bool passive = false);

/// What start_server() returns: MicroPython's Server.
class Server {
 public:
  Server() = default;
  /// Stops accepting: the listening sockets close now; connections already accepted go on.
  void close();
  /// Returns once the accepting task has ended (after close()).
  void wait_closed();
  /// The bound port (useful with port 0).
  std::uint16_t port() const;
  /// The listening descriptors (one per address).
  std::vector<int> fds() const;
  /// Connections accepted so far.
  std::uint64_t connections() const;

  struct State;

 private:
  friend Server start_server(std::function<void(Stream, Stream)>, const std::string&,
                             std::uint16_t, int, bool);
  std::shared_ptr<State> state_;
};

/// Listens on host:port and runs `callback(reader, writer)` in a new task for each connection
/// (both arguments are the same Stream). host "" listens on every address, IPv6 and IPv4;
/// port 0 picks a free port (Server::port()). The stream closes when the callback returns and
/// the last copy of it is gone. An exception from a callback goes to the loop's exception
/// handler; the server goes on. Address in use and the like raise OSError here.
/// `backlog` defaults to 4096, as Boost.Asio's SOMAXCONN (the kernel caps it at
/// net.core.somaxconn): with a short queue, a burst of connects overflows it and the kernel
/// answers with SYN cookies or drops, which a client sees as resets or 1 s retries.
/// `reuse_port` (SO_REUSEPORT): several loops (run_threads) each start a server on the same
/// port, and the kernel spreads the connections among them.
Server start_server(std::function<void(Stream reader, Stream writer)> callback,
                    const std::string& host, std::uint16_t port, int backlog = 4096,
                    bool reuse_port = false);

/// For loops created afterwards on this process: on io_uring, where the kernel has multishot
/// receive (Linux 6.0+), every socket receives through one long-lived request into a pool of
/// buffers its loop shares, instead of one receive at a time into a buffer of its own. An idle
/// connection then holds no receive buffer (about 3 KB less each: bench/memory --wait read),
/// with requests/s within 5-8% of the default (bench/echo's uring_pool). The pool's 4 MiB are
/// committed as its buffers are used, so it pays from about a thousand mostly idle
/// connections; off by default. Streams behave the same either way
/// (docs/semantics.md#streams).
void set_receive_pool(bool on);

/// Thread per core: runs `main(i)` as the main task of its own loop on each of `threads`
/// threads (i = 0 .. threads-1), and returns when every one has returned. The first exception
/// any of them raised is raised here, after all have ended. With start_server(...,
/// reuse_port = true) every loop serves one port.
void run_threads(int threads, const std::function<void(int index)>& main);

}  // namespace asyncio
