// bench/echo's reference server: Boost.Asio's classic echo server (the shape of Asio's own
// example async_tcp_echo_server.cpp) on one io_context run by one thread. Each connection
// loops async_read_some into its buffer, then async_write of what it read; TCP_NODELAY and the
// buffer size are the same as in the asyncio server it is compared with.
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility> (seen with
// g++ 12 in C++20 mode): include it first.
#include <utility>
// (blank line: keeps clang-format from sorting <utility> below Boost)

#include <pthread.h>
#include <time.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

namespace echo_bench {

/// Bytes a connection reads at most per call, in every server bench/echo compares.
constexpr std::size_t kEchoBufferSize = 16 * 1024;
/// Listen backlog of every server: 1,000 connections arrive at once; a backlog below that
/// drops SYNs, and a dropped SYN costs the client a 1 s retransmission.
constexpr int kBacklog = 1024;

class AsioEchoServer {
 public:
  /// How the server thread runs the context: blocking in run() (the reference server), or
  /// spinning on poll() (echo_under_load's floor: a thread as busy as the loaded asyncio
  /// server's, that answers each request the moment it arrives).
  enum class Mode { kRun, kBusyPoll };

  /// Listens on 127.0.0.1, a free port, and serves on its own thread until destroyed.
  explicit AsioEchoServer(Mode mode = Mode::kRun)
      : context_(1),  // one thread runs it
        acceptor_(context_) {
    using boost::asio::ip::tcp;
    const tcp::endpoint endpoint(boost::asio::ip::address_v4::loopback(), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(kBacklog);
    port_ = acceptor_.local_endpoint().port();
    accept();
    if (mode == Mode::kBusyPoll) {
      thread_ = std::thread([this] {
        while (!stopping_.load(std::memory_order_relaxed)) context_.poll();
      });
    } else {
      thread_ = std::thread([this] { context_.run(); });
    }
  }
  ~AsioEchoServer() {
    stopping_.store(true);
    context_.stop();
    thread_.join();
  }
  AsioEchoServer(const AsioEchoServer&) = delete;
  AsioEchoServer& operator=(const AsioEchoServer&) = delete;

  std::uint16_t port() const { return port_; }
  /// Connections accepted and not yet closed.
  int active_connections() const { return active_.load(); }
  /// CPU time the server's thread has used so far.
  std::int64_t cpu_ns() { return thread_cpu_ns(thread_); }

  static std::int64_t thread_cpu_ns(std::thread& thread) {
    clockid_t clock{};
    timespec used{};
    if (pthread_getcpuclockid(thread.native_handle(), &clock) != 0) return 0;
    clock_gettime(clock, &used);
    return std::int64_t{used.tv_sec} * 1'000'000'000 + used.tv_nsec;
  }

 private:
  class Session : public std::enable_shared_from_this<Session> {
   public:
    Session(boost::asio::ip::tcp::socket socket, std::atomic<int>& active)
        : socket_(std::move(socket)), active_(active) {
      ++active_;
    }
    ~Session() { --active_; }
    void start() {
      socket_.set_option(boost::asio::ip::tcp::no_delay(true));
      read();
    }

   private:
    void read() {
      socket_.async_read_some(
          boost::asio::buffer(data_),
          [self = shared_from_this()](boost::system::error_code error, std::size_t length) {
            if (!error) self->write(length);
          });
    }
    void write(std::size_t length) {
      boost::asio::async_write(
          socket_, boost::asio::buffer(data_, length),
          [self = shared_from_this()](boost::system::error_code error, std::size_t) {
            if (!error) self->read();
          });
    }

    boost::asio::ip::tcp::socket socket_;
    std::atomic<int>& active_;
    std::array<char, kEchoBufferSize> data_;
  };

  void accept() {
    acceptor_.async_accept(
        [this](boost::system::error_code error, boost::asio::ip::tcp::socket socket) {
          if (error == boost::asio::error::operation_aborted) return;
          if (!error) std::make_shared<Session>(std::move(socket), active_)->start();
          accept();
        });
  }

  // Before the context: sessions still owned by pending handlers die with the context and
  // decrement it.
  std::atomic<int> active_{0};
  boost::asio::io_context context_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace echo_bench
