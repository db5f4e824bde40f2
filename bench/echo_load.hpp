// The echo load generator of issue 3, shared by examples/echo_client and bench/echo so that
// every server is measured by the same client: plain epoll (level-triggered) on the calling
// thread, no asyncio, so the client shares no scheduler, allocator pattern or backend with the
// server under test.
//
// Each connection runs closed-loop: it sends one request (random bytes of a random size in
// [min_size, max_size]), waits until every byte has come back and checks each one against what
// was sent, records the round trip, optionally pauses (think time), then sends the next. Any
// missing, extra, reordered or corrupted byte, a reset or an early end of stream throws.
#pragma once

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <queue>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace echo_load {

/// What one run asks of the client.
struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  int connections = 1;
  /// Requests per connection. 0: run for warmup_s + duration_s instead and measure only the
  /// requests that complete inside the window after the warm-up.
  std::int64_t requests = 100;
  double warmup_s = 0;
  double duration_s = 0;
  std::size_t min_size = 64;
  std::size_t max_size = 64;
  /// After each reply a connection pauses a random think_min_us..think_us µs before its next
  /// request, so that requests reach a busy server at random points of its work (think_us 0:
  /// no pause).
  std::int64_t think_us = 0;
  std::int64_t think_min_us = 0;
  std::uint32_t seed = 1;
  /// A connection that gets no byte for this long fails the run (a lost wake-up in a server).
  double stall_timeout_s = 10;
  /// Timed runs: called on the client's thread when it sees the measured window open and
  /// close (within a millisecond), e.g. to read CPU clocks.
  std::function<void()> on_window_start;
  std::function<void()> on_window_end;
};

/// What one run measured.
struct Result {
  std::int64_t requests = 0;       // round trips measured
  std::int64_t bytes = 0;          // bytes echoed and checked, warm-up included
  double seconds = 0;              // the measured window
  std::vector<double> latency_us;  // one round trip per measured request

  double requests_per_sec() const {
    return seconds > 0 ? static_cast<double>(requests) / seconds : 0;
  }
  /// Nearest-rank percentile (an observed value), as bench_util.hpp; NaN without samples.
  double percentile_us(double p) const {
    if (latency_us.empty()) return std::nan("");
    std::vector<double> sorted = latency_us;
    std::sort(sorted.begin(), sorted.end());
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
  }
};

/// The largest request the client sends (the payload pattern is this much longer).
constexpr std::size_t kMaxRequestSize = 16 * 1024 * 1024;

namespace detail {

inline std::int64_t now_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

[[noreturn]] inline void fail_errno(const std::string& what, int error) {
  throw std::runtime_error(what + ": " + std::strerror(error));
}

/// xorshift32: cheap, and a fixed seed makes runs repeatable.
class Random {
 public:
  explicit Random(std::uint32_t seed) : state_(seed ? seed : 2463534242u) {}
  std::uint32_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_;
  }
  /// Uniform enough in [low, high] for sizes and pauses.
  std::uint64_t between(std::uint64_t low, std::uint64_t high) {
    return low + (high > low ? next() % (high - low + 1) : 0);
  }

 private:
  std::uint32_t state_;
};

/// The request bytes: a request of n bytes is pattern[start, start + n) for a random start,
/// so sending needs no copy and checking is one memcmp per received chunk.
constexpr std::size_t kPatternPeriod = 64 * 1024;

inline std::vector<char> make_pattern(std::size_t max_size, std::uint32_t seed) {
  std::vector<char> pattern(kPatternPeriod + max_size);
  Random random(seed ^ 0x9e3779b9u);
  for (auto& byte : pattern) byte = static_cast<char>(random.next() >> 24);
  return pattern;
}

/// The first resolved address of host:port (the client's own thread may block on it).
inline std::pair<sockaddr_storage, socklen_t> resolve(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int error = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); error != 0) {
    throw std::runtime_error("cannot resolve " + host + ": " + gai_strerror(error));
  }
  std::pair<sockaddr_storage, socklen_t> address{};
  std::memcpy(&address.first, found->ai_addr, found->ai_addrlen);
  address.second = found->ai_addrlen;
  freeaddrinfo(found);
  return address;
}

struct Connection {
  enum class State { kConnecting, kIdle, kBusy, kThinking, kFinished };
  int fd = -1;
  State state = State::kConnecting;
  bool watching_output = false;  // EPOLLOUT registered: a request is partly sent
  std::size_t size = 0;          // the request in flight
  std::size_t start = 0;         // its offset in the pattern
  std::size_t sent = 0;
  std::size_t received = 0;
  std::int64_t sent_at_ns = 0;
  std::int64_t completed = 0;  // round trips done
};

/// One run: connect every connection, drive them, close them.
class Client {
 public:
  explicit Client(const Options& options)
      : options_(options),
        pattern_(make_pattern(options.max_size, options.seed)),
        random_(options.seed),
        receive_buffer_(256 * 1024) {
    poller_ = epoll_create1(EPOLL_CLOEXEC);
    if (poller_ < 0) fail_errno("epoll_create1", errno);
  }
  ~Client() {
    for (auto& connection : connections_) {
      if (connection.fd >= 0) ::close(connection.fd);
    }
    ::close(poller_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Result run() {
    connect_all();
    const std::int64_t start = now_ns();
    measure_from_ = start + static_cast<std::int64_t>(options_.warmup_s * 1e9);
    measure_until_ =
        timed() ? measure_from_ + static_cast<std::int64_t>(options_.duration_s * 1e9) : INT64_MAX;
    if (timed()) result_.latency_us.reserve(1 << 16);
    for (std::size_t i = 0; i < connections_.size(); ++i) start_request(i);
    drive();
    result_.seconds =
        timed() ? options_.duration_s : static_cast<double>(last_completion_ns_ - start) / 1e9;
    return std::move(result_);
  }

 private:
  using State = Connection::State;
  bool timed() const { return options_.requests == 0; }

  void connect_all() {
    const auto [address, length] = resolve(options_.host, options_.port);
    connections_.resize(static_cast<std::size_t>(options_.connections));
    for (std::size_t i = 0; i < connections_.size(); ++i) {
      Connection& connection = connections_[i];
      connection.fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (connection.fd < 0) fail_errno("socket", errno);
      // One write per request: never hold a partial segment back waiting for an ACK.
      int one = 1;
      setsockopt(connection.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (connect(connection.fd, reinterpret_cast<const sockaddr*>(&address), length) != 0 &&
          errno != EINPROGRESS) {
        fail_errno("connect to " + options_.host + ":" + std::to_string(options_.port), errno);
      }
      epoll_event interest{};
      interest.events = EPOLLOUT;
      interest.data.u64 = i;
      if (epoll_ctl(poller_, EPOLL_CTL_ADD, connection.fd, &interest) != 0) {
        fail_errno("epoll_ctl", errno);
      }
    }
    // Wait until every connect has completed, so that the measured window has no handshakes.
    std::size_t pending = connections_.size();
    const std::int64_t deadline =
        now_ns() + static_cast<std::int64_t>(options_.stall_timeout_s * 1e9);
    std::vector<epoll_event> events(256);
    while (pending > 0) {
      if (now_ns() > deadline) {
        throw std::runtime_error(std::to_string(pending) +
                                 " connection(s) not established in time");
      }
      const int ready = epoll_wait(poller_, events.data(), static_cast<int>(events.size()), 100);
      if (ready < 0 && errno != EINTR) fail_errno("epoll_wait", errno);
      for (int e = 0; e < ready; ++e) {
        Connection& connection = connections_[events[static_cast<std::size_t>(e)].data.u64];
        if (connection.state != State::kConnecting) continue;
        int error = 0;
        socklen_t size = sizeof error;
        getsockopt(connection.fd, SOL_SOCKET, SO_ERROR, &error, &size);
        if (error != 0)
          fail_errno("connect to " + options_.host + ":" + std::to_string(options_.port), error);
        connection.state = State::kIdle;
        watch(events[static_cast<std::size_t>(e)].data.u64, false);
        --pending;
      }
    }
  }

  /// Registers interest in input, and in output while a request is partly sent.
  void watch(std::size_t index, bool output) {
    Connection& connection = connections_[index];
    epoll_event interest{};
    interest.events = EPOLLIN | (output ? EPOLLOUT : 0u);
    interest.data.u64 = index;
    if (epoll_ctl(poller_, EPOLL_CTL_MOD, connection.fd, &interest) != 0)
      fail_errno("epoll_ctl", errno);
    connection.watching_output = output;
  }

  bool stopping(std::int64_t now) const { return now >= measure_until_; }

  void start_request(std::size_t index) {
    Connection& connection = connections_[index];
    const std::int64_t now = now_ns();
    if (stopping(now) || (!timed() && connection.completed >= options_.requests)) {
      connection.state = State::kFinished;
      ++finished_;
      return;
    }
    connection.state = State::kBusy;
    connection.size = random_.between(options_.min_size, options_.max_size);
    connection.start = random_.next() % kPatternPeriod;
    connection.sent = connection.received = 0;
    connection.sent_at_ns = now;
    send_more(index);
  }

  void send_more(std::size_t index) {
    Connection& connection = connections_[index];
    while (connection.sent < connection.size) {
      const ssize_t n = send(connection.fd, pattern_.data() + connection.start + connection.sent,
                             connection.size - connection.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        fail_errno(where(index) + ": send", errno);
      }
      connection.sent += static_cast<std::size_t>(n);
    }
    const bool more = connection.sent < connection.size;
    if (more != connection.watching_output) watch(index, more);
  }

  std::string where(std::size_t index) const {
    return "connection " + std::to_string(index) + ", request " +
           std::to_string(connections_[index].completed);
  }

  /// One recv per readiness report: level-triggered epoll reports the rest.
  void receive(std::size_t index) {
    Connection& connection = connections_[index];
    const std::size_t wanted =
        connection.state == State::kBusy
            ? std::min(receive_buffer_.size(), connection.size - connection.received)
            : receive_buffer_.size();
    const ssize_t n =
        recv(connection.fd, receive_buffer_.data(), std::max<std::size_t>(wanted, 1), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      fail_errno(where(index) + ": recv", errno);
    }
    if (n == 0) throw std::runtime_error(where(index) + ": the server closed the connection");
    if (connection.state != State::kBusy) {
      throw std::runtime_error(where(index) + ": " + std::to_string(n) +
                               " byte(s) nobody asked for");
    }
    const auto count = static_cast<std::size_t>(n);
    if (connection.received + count > connection.sent) {
      throw std::runtime_error(where(index) + ": more bytes echoed than sent");
    }
    if (std::memcmp(receive_buffer_.data(),
                    pattern_.data() + connection.start + connection.received, count) != 0) {
      throw std::runtime_error(where(index) + ": echoed bytes differ from those sent, at offset " +
                               std::to_string(connection.received) + " of " +
                               std::to_string(connection.size));
    }
    connection.received += count;
    result_.bytes += n;
    last_progress_ns_ = now_ns();
    if (connection.received == connection.size) complete(index, last_progress_ns_);
  }

  void complete(std::size_t index, std::int64_t now) {
    Connection& connection = connections_[index];
    ++connection.completed;
    last_completion_ns_ = now;
    if (!timed() || (connection.sent_at_ns >= measure_from_ && now <= measure_until_)) {
      result_.latency_us.push_back(static_cast<double>(now - connection.sent_at_ns) / 1e3);
      ++result_.requests;
    }
    if (options_.think_us > 0 && !stopping(now)) {
      connection.state = State::kThinking;
      const auto pause = static_cast<std::int64_t>(random_.between(
          static_cast<std::uint64_t>(std::min(options_.think_min_us, options_.think_us)),
          static_cast<std::uint64_t>(options_.think_us)));
      thinking_.push({now + pause * 1000, index});
    } else {
      start_request(index);
    }
  }

  /// The wait's timeout: the next think deadline, the window's end, or a stall check. In
  /// nanoseconds, not epoll_wait's milliseconds: rounding each pause up to a whole millisecond
  /// tick phase-locked the requests to the server's 1 ms busy blocks in echo_under_load (each
  /// reply leaves at a block's start, so every next request landed just after one began and
  /// waited nearly a whole block: p50 0.94 ms where random arrivals give ~0.5 ms).
  timespec wait_timeout(std::int64_t now) const {
    std::int64_t until = now + 100'000'000;
    if (!thinking_.empty()) until = std::min(until, thinking_.top().first);
    if (measure_from_ > now) until = std::min(until, measure_from_);
    if (measure_until_ > now) until = std::min(until, measure_until_);
    const std::int64_t wait = std::max<std::int64_t>(0, until - now);
    return timespec{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
  }

  void drive() {
    std::vector<epoll_event> events(1024);
    last_progress_ns_ = now_ns();
    const auto stall_ns = static_cast<std::int64_t>(options_.stall_timeout_s * 1e9);
    while (finished_ < connections_.size()) {
      const timespec timeout = wait_timeout(now_ns());
      const int ready = epoll_pwait2(poller_, events.data(), static_cast<int>(events.size()),
                                     &timeout, nullptr);
      if (ready < 0 && errno != EINTR) fail_errno("epoll_pwait2", errno);
      for (int e = 0; e < ready; ++e) {
        const epoll_event& event = events[static_cast<std::size_t>(e)];
        const auto index = static_cast<std::size_t>(event.data.u64);
        if (event.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) receive(index);
        if ((event.events & EPOLLOUT) && connections_[index].state == State::kBusy)
          send_more(index);
      }
      const std::int64_t now = now_ns();
      notify_window(now);
      while (!thinking_.empty() && (thinking_.top().first <= now || stopping(now))) {
        const std::size_t index = thinking_.top().second;
        thinking_.pop();
        start_request(index);
      }
      if (now - last_progress_ns_ > stall_ns) {
        throw std::runtime_error("no echo for " + std::to_string(options_.stall_timeout_s) +
                                 " s with " + std::to_string(connections_.size() - finished_) +
                                 " request(s) in flight");
      }
    }
  }

  void notify_window(std::int64_t now) {
    if (!timed()) return;
    if (!window_opened_ && now >= measure_from_) {
      window_opened_ = true;
      if (options_.on_window_start) options_.on_window_start();
    }
    if (!window_closed_ && now >= measure_until_) {
      window_closed_ = true;
      if (options_.on_window_end) options_.on_window_end();
    }
  }

  Options options_;
  std::vector<char> pattern_;
  Random random_;
  std::vector<char> receive_buffer_;
  int poller_ = -1;
  std::vector<Connection> connections_;
  std::size_t finished_ = 0;
  bool window_opened_ = false;
  bool window_closed_ = false;
  std::int64_t measure_from_ = 0;
  std::int64_t measure_until_ = INT64_MAX;
  std::int64_t last_progress_ns_ = 0;
  std::int64_t last_completion_ns_ = 0;
  using Wake = std::pair<std::int64_t, std::size_t>;  // (when, connection)
  std::priority_queue<Wake, std::vector<Wake>, std::greater<Wake>> thinking_;
  Result result_;
};

}  // namespace detail

/// Runs the load described by `options` on the calling thread and closes its connections
/// (cleanly: every reply is read before a socket closes, so the server sees end of stream,
/// never a reset). Throws std::runtime_error on a bad option, a network error or a wrong byte.
inline Result run(const Options& options) {
  if (options.connections < 1) throw std::invalid_argument("connections must be at least 1");
  if (options.min_size < 1 || options.min_size > options.max_size ||
      options.max_size > kMaxRequestSize) {
    throw std::invalid_argument("sizes must satisfy 1 <= min <= max <= 16 MiB");
  }
  if (options.requests < 0 || (options.requests == 0 && options.duration_s <= 0)) {
    throw std::invalid_argument("give a number of requests or a duration");
  }
  detail::Client client(options);
  return client.run();
}

}  // namespace echo_load
