// bench/echo's ceiling peer: an echo server written straight on liburing, with no library
// between it and the ring. One thread, one ring (SINGLE_ISSUER | DEFER_TASKRUN where the
// kernel has them, registered ring descriptor), a multishot accept, and per connection one
// multishot receive into a provided buffer ring; each received buffer is sent back from where
// it landed and returned to the ring once the send has completed. It is the most a
// single-threaded io_uring server can do here, so asyncio's figures are read against it.
#pragma once

#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "echo_asio.hpp"

namespace echo_bench {

class RawUringEchoServer {
 public:
  /// Listens on 127.0.0.1, a free port, and serves on its own thread until destroyed.
  /// Throws std::runtime_error when io_uring (or one of the features above) is unavailable.
  RawUringEchoServer() {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0) fail("socket", errno);
    const int on = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        listen(listener_, kBacklog) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      const int error = errno;
      ::close(listener_);
      fail("bind/listen", error);
    }
    port_ = ntohs(address.sin_port);
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    std::promise<void> started;
    auto ready = started.get_future();
    thread_ = std::thread([this, &started] { serve(started); });
    try {
      ready.get();
    } catch (...) {
      thread_.join();
      release();
      throw;
    }
  }
  ~RawUringEchoServer() {
    const std::uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof one) < 0) std::abort();
    thread_.join();
    release();
  }
  RawUringEchoServer(const RawUringEchoServer&) = delete;
  RawUringEchoServer& operator=(const RawUringEchoServer&) = delete;

  std::uint16_t port() const { return port_; }
  int active_connections() const { return active_.load(); }
  std::int64_t cpu_ns() { return AsioEchoServer::thread_cpu_ns(thread_); }

 private:
  static constexpr unsigned kEntries = 4096;
  static constexpr unsigned kBuffers = 4096;  // a power of two
  static constexpr unsigned kBufferSize = 4096;
  static constexpr int kGroup = 0;
  enum Operation : std::uint64_t { kAccept, kReceive, kSend, kStop };

  /// A received buffer waiting to be (or being) sent back.
  struct Outgoing {
    std::uint16_t id;
    std::uint32_t offset;
    std::uint32_t length;
  };
  struct Connection {
    std::deque<Outgoing> output;
    bool open = false;
    bool sending = false;
    bool receiving = false;  // a multishot receive is armed
    bool ended = false;      // the peer closed (or an error): close once the output is sent
  };

  [[noreturn]] static void fail(const char* what, int error) {
    throw std::runtime_error(std::string("raw io_uring echo server: ") + what + ": " +
                             std::strerror(error));
  }

  static std::uint64_t tag(int fd, Operation operation) {
    return static_cast<std::uint64_t>(fd) << 8 | operation;
  }

  void serve(std::promise<void>& started) {
    try {
      setup();
    } catch (...) {
      started.set_exception(std::current_exception());
      return;
    }
    started.set_value();
    run();
    io_uring_queue_exit(&ring_);  // cancels what is in flight before the sockets close
    for (std::size_t fd = 0; fd < connections_.size(); ++fd) {
      if (connections_[fd].open) ::close(static_cast<int>(fd));
    }
  }

  void setup() {
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int result = io_uring_queue_init_params(kEntries, &ring_, &params);
    if (result == -EINVAL) result = io_uring_queue_init(kEntries, &ring_, 0);
    if (result < 0) fail("io_uring_queue_init", -result);
    io_uring_register_ring_fd(&ring_);  // an optimisation: fine without it
    const std::size_t ring_bytes = kBuffers * sizeof(io_uring_buf);
    void* memory =
        mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (memory == MAP_FAILED) {
      const int error = errno;
      io_uring_queue_exit(&ring_);
      fail("mmap", error);
    }
    buffer_ring_ = static_cast<io_uring_buf_ring*>(memory);
    io_uring_buf_ring_init(buffer_ring_);
    io_uring_buf_reg registration{};
    registration.ring_addr = reinterpret_cast<std::uint64_t>(buffer_ring_);
    registration.ring_entries = kBuffers;
    registration.bgid = kGroup;
    if (const int error = io_uring_register_buf_ring(&ring_, &registration, 0); error < 0) {
      io_uring_queue_exit(&ring_);
      fail("io_uring_register_buf_ring", -error);
    }
    buffers_.resize(std::size_t{kBuffers} * kBufferSize);
    for (unsigned id = 0; id < kBuffers; ++id) {
      io_uring_buf_ring_add(buffer_ring_, buffer(id), kBufferSize, static_cast<unsigned short>(id),
                            io_uring_buf_ring_mask(kBuffers), static_cast<int>(id));
    }
    io_uring_buf_ring_advance(buffer_ring_, kBuffers);
    accept();
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_read(sqe, stop_fd_, &stop_value_, sizeof stop_value_, 0);
    io_uring_sqe_set_data64(sqe, tag(0, kStop));
  }

  void release() {
    if (buffer_ring_) munmap(buffer_ring_, kBuffers * sizeof(io_uring_buf));
    buffer_ring_ = nullptr;
    ::close(listener_);
    ::close(stop_fd_);
  }

  char* buffer(unsigned id) { return buffers_.data() + std::size_t{id} * kBufferSize; }

  io_uring_sqe* next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    if (!sqe) fail("io_uring_get_sqe", EBUSY);
    return sqe;
  }

  void accept() {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_multishot_accept(sqe, listener_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag(0, kAccept));
  }

  void receive(int fd) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kGroup;
    io_uring_sqe_set_data64(sqe, tag(fd, kReceive));
    connections_[static_cast<std::size_t>(fd)].receiving = true;
  }

  void send(int fd) {
    Connection& connection = connections_[static_cast<std::size_t>(fd)];
    const Outgoing& next = connection.output.front();
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_send(sqe, fd, buffer(next.id) + next.offset, next.length - next.offset,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(fd, kSend));
    connection.sending = true;
  }

  void give_back(std::uint16_t id) {
    io_uring_buf_ring_add(buffer_ring_, buffer(id), kBufferSize, id,
                          io_uring_buf_ring_mask(kBuffers), 0);
    io_uring_buf_ring_advance(buffer_ring_, 1);
  }

  void run() {
    while (!stopping_) {
      io_uring_cqe* cqe = nullptr;
      const int result = io_uring_submit_and_wait(&ring_, 1);
      if (result < 0 && result != -EINTR && result != -ETIME)
        fail("io_uring_submit_and_wait", -result);
      unsigned head;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        handle(cqe->user_data, cqe->res, cqe->flags);
      }
      io_uring_cq_advance(&ring_, seen);
    }
  }

  void handle(std::uint64_t data, int result, unsigned flags) {
    const int fd = static_cast<int>(data >> 8);
    switch (static_cast<Operation>(data & 0xff)) {
      case kStop:
        stopping_ = true;
        return;
      case kAccept:
        if (!(flags & IORING_CQE_F_MORE)) accept();
        if (result >= 0) accepted(result);
        return;
      case kReceive:
        received(fd, result, flags);
        return;
      case kSend:
        sent(fd, result);
        return;
    }
  }

  void accepted(int fd) {
    const int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (connections_.size() <= static_cast<std::size_t>(fd)) {
      connections_.resize(static_cast<std::size_t>(fd) + 1);
    }
    connections_[static_cast<std::size_t>(fd)] = Connection{};
    connections_[static_cast<std::size_t>(fd)].open = true;
    ++active_;
    receive(fd);
  }

  void received(int fd, int result, unsigned flags) {
    Connection& connection = connections_[static_cast<std::size_t>(fd)];
    if (!(flags & IORING_CQE_F_MORE)) connection.receiving = false;
    if (result > 0 && connection.ended) {
      give_back(static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT));
    } else if (result > 0) {
      const auto id = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
      connection.output.push_back({id, 0, static_cast<std::uint32_t>(result)});
      if (!connection.sending) send(fd);
    } else if (result == -ENOBUFS) {
      // Every buffer is out: arm again; they come back as sends complete.
    } else {
      connection.ended = true;  // the end of the stream or an error
    }
    if (!connection.receiving && !connection.ended) receive(fd);
    close_if_done(fd);
  }

  void sent(int fd, int result) {
    Connection& connection = connections_[static_cast<std::size_t>(fd)];
    connection.sending = false;
    Outgoing& front = connection.output.front();
    if (result < 0) {
      connection.ended = true;
      for (const Outgoing& outgoing : connection.output) give_back(outgoing.id);
      connection.output.clear();
    } else {
      front.offset += static_cast<std::uint32_t>(result);
      if (front.offset == front.length) {
        give_back(front.id);
        connection.output.pop_front();
      }
      if (!connection.output.empty()) send(fd);
    }
    close_if_done(fd);
  }

  void close_if_done(int fd) {
    Connection& connection = connections_[static_cast<std::size_t>(fd)];
    if (!connection.ended || connection.receiving || connection.sending) return;
    for (const Outgoing& outgoing : connection.output) give_back(outgoing.id);
    connection.output.clear();
    connection.open = false;
    ::close(fd);
    --active_;
  }

  int listener_ = -1;
  int stop_fd_ = -1;
  std::uint64_t stop_value_ = 0;
  std::uint16_t port_ = 0;
  io_uring ring_{};
  io_uring_buf_ring* buffer_ring_ = nullptr;
  std::vector<char> buffers_;
  std::vector<Connection> connections_;  // by descriptor
  bool stopping_ = false;
  std::atomic<int> active_{0};
  std::thread thread_;  // last: it uses the members above
};

}  // namespace echo_bench
