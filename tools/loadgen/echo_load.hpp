// The echo load generator, shared by tools/loadgen/echo_client and bench/echo so that
// every server is measured by the same client. It runs on the calling thread, without asyncio,
// so the client shares no scheduler, allocator pattern or backend code with the server under
// test.
//
// Each connection runs closed-loop: it sends one request (random bytes of a random size in
// [min_size, max_size]), waits until every byte has come back and checks each one against what
// was sent, records the round trip, optionally pauses (think time), then sends the next. Any
// missing, extra, reordered or corrupted byte, a reset or an early end of stream throws.
//
// Two engines move the bytes; class Load holds everything else (requests, checks, window,
// pauses). The io_uring engine is the default: one system call per pass of its loop submits
// every send and recv the pass queued and waits for the next completions, where the epoll
// engine (level-triggered, send and recv) makes about two a request plus the wait. epoll stays
// as the fallback where io_uring is unavailable. Measured on the project's 2-vCPU VM (64-byte
// requests, 100 connections) both engines cost the client ~9 us of CPU a request: a system
// call is ~0.25 us there, and ~95 % of the client's time is the kernel's TCP work, two thirds
// of it in tcp_sendmsg, which on loopback also delivers each segment to the server's socket
// and wakes the server.

#pragma once

#include <fcntl.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <queue>
#include <span>
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
  /// Never block: every wait for I/O is a poll with a zero timeout, so the client's own
  /// wake-up (multi-millisecond tails on an idle vCPU of a VM) is not part of the round trips
  /// it measures. Costs a whole vCPU.
  bool spin = false;
  /// A connection that gets no byte for this long fails the run (a lost wake-up in a server).
  double stall_timeout_s = 10;
  /// Timed runs: called on the client's thread when it sees the measured window open and
  /// close (within a millisecond), e.g. to read CPU clocks.
  std::function<void()> on_window_start;
  std::function<void()> on_window_end;
  /// How the client moves bytes: "uring" (io_uring), "epoll", or "auto": io_uring unless the
  /// kernel refuses a ring (too old, or disabled by the io_uring_disabled sysctl), then epoll.
  std::string engine = "auto";
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

/// A file descriptor closed with its owner.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

struct Connection {
  enum class State { kConnecting, kIdle, kBusy, kThinking, kFinished };
  Fd fd;
  State state = State::kConnecting;
  std::size_t size = 0;   // the request in flight
  std::size_t start = 0;  // its offset in the pattern
  std::size_t sent = 0;   // bytes handed to the socket
  std::size_t received = 0;
  std::int64_t sent_at_ns = 0;
  std::int64_t completed = 0;  // round trips done
};

/// The engine-independent part of a run: the connections and their requests, the check of
/// every echoed byte, the measured window and the think-time queue. An engine (below) only
/// moves bytes: it sends what start_request() asks for, hands each received chunk to echoed()
/// and calls tick() once per pass of its loop.
class Load {
 public:
  explicit Load(const Options& options)
      : options_(options),
        pattern_(make_pattern(options.max_size, options.seed)),
        random_(options.seed) {}

  const Options& options() const { return options_; }
  std::size_t size() const { return connections_.size(); }
  int fd(std::size_t index) const { return connections_[index].fd.get(); }
  bool done() const { return finished_ == connections_.size(); }
  bool finished(std::size_t index) const { return connections_[index].state == State::kFinished; }

  /// Opens every connection and waits until each has connected, so that the measured window
  /// has no handshakes. The sockets stay non-blocking.
  void connect_all() {
    const auto [address, length] = resolve(options_.host, options_.port);
    const Fd poller(epoll_create1(EPOLL_CLOEXEC));
    if (poller.get() < 0) fail_errno("epoll_create1", errno);
    connections_.resize(static_cast<std::size_t>(options_.connections));
    for (std::size_t i = 0; i < connections_.size(); ++i) {
      connections_[i].fd = open_socket(address, length);
      epoll_event interest{};
      interest.events = EPOLLOUT;
      interest.data.u64 = i;
      if (epoll_ctl(poller.get(), EPOLL_CTL_ADD, fd(i), &interest) != 0) {
        fail_errno("epoll_ctl", errno);
      }
    }
    std::size_t pending = connections_.size();
    const std::int64_t deadline =
        now_ns() + static_cast<std::int64_t>(options_.stall_timeout_s * 1e9);
    std::vector<epoll_event> events(256);
    while (pending > 0) {
      if (now_ns() > deadline) {
        throw std::runtime_error(std::to_string(pending) +
                                 " connection(s) not established in time");
      }
      const int ready =
          epoll_wait(poller.get(), events.data(), static_cast<int>(events.size()), 100);
      if (ready < 0 && errno != EINTR) fail_errno("epoll_wait", errno);
      for (int e = 0; e < ready; ++e) {
        const auto index = static_cast<std::size_t>(events[static_cast<std::size_t>(e)].data.u64);
        Connection& connection = connections_[index];
        if (connection.state != State::kConnecting) continue;
        int error = 0;
        socklen_t size = sizeof error;
        getsockopt(fd(index), SOL_SOCKET, SO_ERROR, &error, &size);
        if (error != 0) fail_errno(destination(), error);
        connection.state = State::kIdle;
        epoll_ctl(poller.get(), EPOLL_CTL_DEL, fd(index), nullptr);
        --pending;
      }
    }
  }

  /// Starts the clock: the warm-up, then the measured window of a timed run.
  void open_window(std::int64_t now) {
    started_ns_ = last_progress_ns_ = now;
    measure_from_ = now + static_cast<std::int64_t>(options_.warmup_s * 1e9);
    measure_until_ =
        timed() ? measure_from_ + static_cast<std::int64_t>(options_.duration_s * 1e9) : INT64_MAX;
    if (timed()) result_.latency_us.reserve(1 << 16);
  }

  /// Starts connection `index`'s next request, or finishes the connection when its requests
  /// are done or the run is ending. True when the engine is to send unsent().
  bool start_request(std::size_t index, std::int64_t now) {
    Connection& connection = connections_[index];
    if (stopping(now) || (!timed() && connection.completed >= options_.requests)) {
      connection.state = State::kFinished;
      ++finished_;
      return false;
    }
    connection.state = State::kBusy;
    connection.size = random_.between(options_.min_size, options_.max_size);
    connection.start = random_.next() % kPatternPeriod;
    connection.sent = connection.received = 0;
    connection.sent_at_ns = now;
    return true;
  }

  /// The bytes of the request in flight not yet handed to the socket.
  std::span<const char> unsent(std::size_t index) const {
    const Connection& connection = connections_[index];
    return {pattern_.data() + connection.start + connection.sent,
            connection.size - connection.sent};
  }
  void sent(std::size_t index, std::size_t count) { connections_[index].sent += count; }

  /// How many more bytes the request in flight awaits (0 when none is).
  std::size_t awaited(std::size_t index) const {
    const Connection& connection = connections_[index];
    return connection.state == State::kBusy ? connection.size - connection.received : 0;
  }

  /// Checks `count` echoed bytes of connection `index` against what it sent (throws on any
  /// difference). True when they complete its request and the next is due now (no pause).
  bool echoed(std::size_t index, const char* data, std::size_t count, std::int64_t now) {
    Connection& connection = connections_[index];
    if (connection.state != State::kBusy) {
      throw std::runtime_error(where(index) + ": " + std::to_string(count) +
                               " byte(s) nobody asked for");
    }
    if (connection.received + count > connection.sent) {
      throw std::runtime_error(where(index) + ": more bytes echoed than sent");
    }
    if (std::memcmp(data, pattern_.data() + connection.start + connection.received, count) != 0) {
      throw std::runtime_error(where(index) + ": echoed bytes differ from those sent, at offset " +
                               std::to_string(connection.received) + " of " +
                               std::to_string(connection.size));
    }
    connection.received += count;
    result_.bytes += static_cast<std::int64_t>(count);
    last_progress_ns_ = now;
    return connection.received == connection.size && complete(index, now);
  }

  /// Throws for a failed send or recv on connection `index`.
  [[noreturn]] void fail(std::size_t index, const char* operation, int error) const {
    fail_errno(where(index) + ": " + operation, error);
  }
  [[noreturn]] void closed_by_server(std::size_t index) const {
    throw std::runtime_error(where(index) + ": the server closed the connection");
  }

  /// How long an engine may wait for I/O: until the next think deadline, the window's edge or
  /// a stall check. In nanoseconds, not epoll_wait's milliseconds: rounding each pause up to
  /// a whole millisecond tick phase-locked the requests to the server's 1 ms busy blocks in
  /// echo_under_load (each reply leaves at a block's start, so every next request landed just
  /// after one began and waited nearly a whole block: p50 0.94 ms where random arrivals give
  /// ~0.5 ms).
  std::int64_t wait_ns(std::int64_t now) const {
    if (options_.spin) return 0;
    std::int64_t until = now + 100'000'000;
    if (!thinking_.empty()) until = std::min(until, thinking_.top().first);
    if (measure_from_ > now) until = std::min(until, measure_from_);
    if (measure_until_ > now) until = std::min(until, measure_until_);
    return std::max<std::int64_t>(0, until - now);
  }

  /// Once per pass of an engine's loop: reports the window's edges, calls `start(index)` for
  /// each connection whose pause is over (or all of them once the run ends) and throws when
  /// no byte has come back for stall_timeout_s.
  template <class Start>
  void tick(std::int64_t now, Start&& start) {
    notify_window(now);
    while (!thinking_.empty() && (thinking_.top().first <= now || stopping(now))) {
      const std::size_t index = thinking_.top().second;
      thinking_.pop();
      start(index);
    }
    if (now - last_progress_ns_ > static_cast<std::int64_t>(options_.stall_timeout_s * 1e9)) {
      throw std::runtime_error("no echo for " + std::to_string(options_.stall_timeout_s) +
                               " s with " + std::to_string(connections_.size() - finished_) +
                               " request(s) in flight");
    }
  }

  Result finish() {
    result_.seconds = timed() ? options_.duration_s
                              : static_cast<double>(last_completion_ns_ - started_ns_) / 1e9;
    return std::move(result_);
  }

 private:
  using State = Connection::State;
  bool timed() const { return options_.requests == 0; }
  bool stopping(std::int64_t now) const { return now >= measure_until_; }

  std::string destination() const {
    return "connect to " + options_.host + ":" + std::to_string(options_.port);
  }

  Fd open_socket(const sockaddr_storage& address, socklen_t length) const {
    Fd socket_fd(socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (socket_fd.get() < 0) fail_errno("socket", errno);
    // One write per request: never hold a partial segment back waiting for an ACK.
    int one = 1;
    setsockopt(socket_fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(socket_fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0 &&
        errno != EINPROGRESS) {
      fail_errno(destination(), errno);
    }
    return socket_fd;
  }

  std::string where(std::size_t index) const {
    return "connection " + std::to_string(index) + ", request " +
           std::to_string(connections_[index].completed);
  }

  /// Records a round trip; true when the next request is due now, false when the connection
  /// pauses first.
  bool complete(std::size_t index, std::int64_t now) {
    Connection& connection = connections_[index];
    ++connection.completed;
    last_completion_ns_ = now;
    if (!timed() || (connection.sent_at_ns >= measure_from_ && now <= measure_until_)) {
      result_.latency_us.push_back(static_cast<double>(now - connection.sent_at_ns) / 1e3);
      ++result_.requests;
    }
    if (options_.think_us <= 0 || stopping(now)) return true;
    connection.state = State::kThinking;
    const auto pause = static_cast<std::int64_t>(random_.between(
        static_cast<std::uint64_t>(std::min(options_.think_min_us, options_.think_us)),
        static_cast<std::uint64_t>(options_.think_us)));
    thinking_.push({now + pause * 1000, index});
    return false;
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
  std::vector<Connection> connections_;
  std::size_t finished_ = 0;
  bool window_opened_ = false;
  bool window_closed_ = false;
  std::int64_t started_ns_ = 0;
  std::int64_t measure_from_ = 0;
  std::int64_t measure_until_ = INT64_MAX;
  std::int64_t last_progress_ns_ = 0;
  std::int64_t last_completion_ns_ = 0;
  using Wake = std::pair<std::int64_t, std::size_t>;  // (when, connection)
  std::priority_queue<Wake, std::vector<Wake>, std::greater<Wake>> thinking_;
  Result result_;
};

/// The fallback engine: level-triggered epoll, send() and recv() on the non-blocking sockets.
class EpollEngine {
 public:
  explicit EpollEngine(Load& load)
      : load_(load),
        poller_(epoll_create1(EPOLL_CLOEXEC)),
        receive_buffer_(256 * 1024),
        watching_output_(load.size(), false) {
    if (poller_.get() < 0) fail_errno("epoll_create1", errno);
    for (std::size_t i = 0; i < load_.size(); ++i) watch(i, EPOLL_CTL_ADD, false);
  }

  void run() {
    std::vector<epoll_event> events(1024);
    load_.open_window(now_ns());
    for (std::size_t i = 0; i < load_.size(); ++i) start(i);
    while (!load_.done()) {
      const std::int64_t wait = load_.wait_ns(now_ns());
      const timespec timeout{static_cast<time_t>(wait / 1'000'000'000),
                             static_cast<long>(wait % 1'000'000'000)};
      const int ready = epoll_pwait2(poller_.get(), events.data(), static_cast<int>(events.size()),
                                     &timeout, nullptr);
      if (ready < 0 && errno != EINTR) fail_errno("epoll_pwait2", errno);
      for (int e = 0; e < ready; ++e) {
        const epoll_event& event = events[static_cast<std::size_t>(e)];
        const auto index = static_cast<std::size_t>(event.data.u64);
        if (event.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) receive(index);
        if ((event.events & EPOLLOUT) && load_.awaited(index) > 0) send_more(index);
      }
      load_.tick(now_ns(), [this](std::size_t index) { start(index); });
    }
  }

 private:
  void start(std::size_t index) {
    if (load_.start_request(index, now_ns())) send_more(index);
  }

  /// Registers interest in input, and in output while a request is partly sent.
  void watch(std::size_t index, int operation, bool output) {
    epoll_event interest{};
    interest.events = EPOLLIN | (output ? EPOLLOUT : 0u);
    interest.data.u64 = index;
    if (epoll_ctl(poller_.get(), operation, load_.fd(index), &interest) != 0) {
      fail_errno("epoll_ctl", errno);
    }
    watching_output_[index] = output;
  }

  void send_more(std::size_t index) {
    for (auto rest = load_.unsent(index); !rest.empty(); rest = load_.unsent(index)) {
      const ssize_t n = send(load_.fd(index), rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        load_.fail(index, "send", errno);
      }
      load_.sent(index, static_cast<std::size_t>(n));
    }
    const bool more = !load_.unsent(index).empty();
    if (more != watching_output_[index]) watch(index, EPOLL_CTL_MOD, more);
  }

  /// One recv per readiness report: level-triggered epoll reports the rest. It asks for no
  /// more than the reply in flight, or a whole buffer to catch bytes nobody asked for.
  void receive(std::size_t index) {
    const std::size_t awaited = load_.awaited(index);
    const std::size_t wanted =
        awaited > 0 ? std::min(receive_buffer_.size(), awaited) : receive_buffer_.size();
    const ssize_t n = recv(load_.fd(index), receive_buffer_.data(), wanted, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      load_.fail(index, "recv", errno);
    }
    if (n == 0) load_.closed_by_server(index);
    if (load_.echoed(index, receive_buffer_.data(), static_cast<std::size_t>(n), now_ns())) {
      start(index);
    }
  }

  Load& load_;
  Fd poller_;
  std::vector<char> receive_buffer_;
  std::vector<bool> watching_output_;
};

/// The io_uring instance of one run.
class Ring {
 public:
  Ring() = default;
  ~Ring() {
    if (ready_) io_uring_queue_exit(&ring_);
  }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  /// Sets the ring up for `connections` connections: 0, or the negative errno. -ENOSYS also
  /// when the kernel (before 5.11) cannot wait with a timeout in the same call.
  int init(std::size_t connections) {
    io_uring_params params{};
    // Each connection has at most a recv and a send in flight, and a cancel of each at the
    // end: the completion queue holds all of them, so none ever waits in the kernel's
    // overflow list (CLAMP: the kernel caps a larger request at its maximum).
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SINGLE_ISSUER |
                   IORING_SETUP_DEFER_TASKRUN;
    params.cq_entries = static_cast<unsigned>(
        std::max<std::size_t>(2 * kEntries, std::bit_ceil(4 * connections + 64)));
    int result = io_uring_queue_init_params(kEntries, &ring_, &params);
    if (result == -EINVAL) {  // before 6.1: no DEFER_TASKRUN
      params.flags &= ~(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
      result = io_uring_queue_init_params(kEntries, &ring_, &params);
    }
    if (result < 0) return result;
    ready_ = true;
    if (!(params.features & IORING_FEAT_EXT_ARG)) return -ENOSYS;
    deferred_ = params.flags & IORING_SETUP_DEFER_TASKRUN;
    return 0;
  }

  io_uring* get() { return &ring_; }
  /// DEFER_TASKRUN was accepted: the kernel is 6.1 or later.
  bool deferred() const { return deferred_; }

 private:
  // The submission queue: 2 operations for each of 2048 connections before a pass has to
  // submit early (next_sqe).
  static constexpr unsigned kEntries = 4096;
  io_uring ring_{};
  bool ready_ = false;
  bool deferred_ = false;
};

/// The default engine. Each connection keeps one recv in flight into its own buffer, re-armed
/// after each completion, and a send whenever a request has bytes to go; one
/// io_uring_submit_and_wait_timeout per pass submits what the pass queued and waits for the
/// next completions (or the next deadline, to the nanosecond).
class UringEngine {
 public:
  UringEngine(Load& load, Ring& ring)
      : load_(load),
        ring_(ring.get()),
        buffer_size_(std::min<std::size_t>(load.options().max_size, 64 * 1024)),
        buffers_(std::make_unique_for_overwrite<char[]>(buffer_size_ * load.size())),
        in_flight_(load.size()),
        poll_first_(ring.deferred()) {}
  /// No operation may outlive the buffers and sockets it uses: a run that ends (or throws)
  /// cancels its operations and waits for their completions.
  ~UringEngine() { drain(); }
  UringEngine(const UringEngine&) = delete;
  UringEngine& operator=(const UringEngine&) = delete;

  void run() {
    now_ = now_ns();
    load_.open_window(now_);
    for (std::size_t i = 0; i < load_.size(); ++i) {
      receive(i);
      start(i);
    }
    while (!load_.done()) {
      wait(load_.wait_ns(now_ns()));
      reap();
      load_.tick(now_, [this](std::size_t index) { start(index); });
    }
  }

 private:
  // user_data: connection << 1 | operation; a cancel's is kCancel.
  static constexpr std::uint64_t kReceive = 0;
  static constexpr std::uint64_t kSend = 1;
  static constexpr std::uint64_t kCancel = UINT64_MAX - 1;  // UINT64_MAX is liburing's

  struct InFlight {
    bool receiving = false;
    bool sending = false;
    std::span<const char> sending_bytes;  // what the send in flight was given
  };
  struct Completion {
    std::uint64_t data;
    int result;
  };

  char* buffer(std::size_t index) { return buffers_.get() + index * buffer_size_; }

  /// A free submission entry, submitting the queued ones first when the queue is full; null
  /// when even that fails.
  io_uring_sqe* next_sqe() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(ring_);
    if (sqe == nullptr && io_uring_submit(ring_) >= 0) sqe = io_uring_get_sqe(ring_);
    if (sqe != nullptr) ++operations_;
    return sqe;
  }

  io_uring_sqe* checked_sqe() {
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) throw std::runtime_error("io_uring_submit failed on a full queue");
    return sqe;
  }

  /// Submits what was queued and waits up to `wait_ns` for a completion: 0, -ETIME or -EINTR,
  /// or another negative errno on failure.
  int submit_and_wait(std::int64_t wait_ns) noexcept {
    __kernel_timespec timeout{};
    timeout.tv_sec = wait_ns / 1'000'000'000;
    timeout.tv_nsec = wait_ns % 1'000'000'000;
    io_uring_cqe* cqe = nullptr;
    const int result = io_uring_submit_and_wait_timeout(ring_, &cqe, 1, &timeout, nullptr);
    return result > 0 ? 0 : result;
  }

  void start(std::size_t index) {
    if (!load_.start_request(index, now_)) return;
    // The whole request counts as sent once queued: the server may echo its start before the
    // send completes.
    const std::span<const char> bytes = load_.unsent(index);
    load_.sent(index, bytes.size());
    send(index, bytes);
  }

  void send(std::size_t index, std::span<const char> bytes) {
    io_uring_sqe* sqe = checked_sqe();
    // MSG_WAITALL: the kernel (5.19+) completes a partial send itself instead of returning it.
    io_uring_prep_send(sqe, load_.fd(index), bytes.data(), bytes.size(),
                       MSG_NOSIGNAL | MSG_WAITALL);
    io_uring_sqe_set_data64(sqe, index << 1 | kSend);
    in_flight_[index].sending = true;
    in_flight_[index].sending_bytes = bytes;
  }

  void receive(std::size_t index) {
    io_uring_sqe* sqe = checked_sqe();
    io_uring_prep_recv(sqe, load_.fd(index), buffer(index), buffer_size_, 0);
    // The reply cannot be there yet when the recv is armed: wait for readiness rather than
    // try a recv that fails (5.19+; a 6.1 ring implies it).
    if (poll_first_) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    io_uring_sqe_set_data64(sqe, index << 1 | kReceive);
    in_flight_[index].receiving = true;
  }

  /// Submits what this pass queued and waits up to `wait_ns` for a completion.
  void wait(std::int64_t wait_ns) {
    const int result = submit_and_wait(wait_ns);
    if (result < 0 && result != -ETIME && result != -EINTR) {
      fail_errno("io_uring_submit_and_wait_timeout", -result);
    }
    now_ = now_ns();
  }

  /// Handles every completion there is. Each batch is copied out and its bookkeeping done
  /// before any is handled, so that a handler that throws leaves no operation miscounted.
  void reap() {
    constexpr unsigned kBatch = 256;
    io_uring_cqe* cqes[kBatch];
    Completion batch[kBatch];
    for (unsigned count; (count = io_uring_peek_batch_cqe(ring_, cqes, kBatch)) > 0;) {
      for (unsigned c = 0; c < count; ++c) {
        batch[c] = {cqes[c]->user_data, cqes[c]->res};
        note_completion(batch[c].data);
      }
      io_uring_cq_advance(ring_, count);
      if (draining_) continue;
      for (unsigned c = 0; c < count; ++c) handle(batch[c]);
    }
  }

  void note_completion(std::uint64_t data) {
    --operations_;
    if (data == kCancel) return;
    InFlight& in_flight = in_flight_[data >> 1];
    ((data & 1) == kSend ? in_flight.sending : in_flight.receiving) = false;
  }

  void handle(const Completion& completion) {
    if (completion.data == kCancel) return;
    const auto index = static_cast<std::size_t>(completion.data >> 1);
    if ((completion.data & 1) == kSend) {
      sent(index, completion.result);
    } else {
      received(index, completion.result);
    }
  }

  static bool retry(int result) { return result == -EAGAIN || result == -EINTR; }

  void sent(std::size_t index, int result) {
    const std::span<const char> bytes = in_flight_[index].sending_bytes;
    if (retry(result)) return send(index, bytes);
    if (result < 0) load_.fail(index, "send", -result);
    // A short send queues the rest.
    const auto count = static_cast<std::size_t>(result);
    if (count < bytes.size()) send(index, bytes.subspan(count));
  }

  void received(std::size_t index, int result) {
    if (retry(result)) return receive(index);
    if (result < 0) load_.fail(index, "recv", -result);
    if (result == 0) {
      if (load_.finished(index)) return;
      load_.closed_by_server(index);
    }
    receive(index);
    if (load_.echoed(index, buffer(index), static_cast<std::size_t>(result), now_)) start(index);
  }

  /// Cancels every operation in flight and waits for all their completions (a few
  /// milliseconds; given up after a second, when io_uring_queue_exit cancels the rest).
  void drain() noexcept {
    draining_ = true;
    for (std::size_t i = 0; i < in_flight_.size(); ++i) {
      if (in_flight_[i].receiving) cancel(i << 1 | kReceive);
      if (in_flight_[i].sending) cancel(i << 1 | kSend);
    }
    const std::int64_t deadline = now_ns() + 1'000'000'000;
    while (operations_ > 0 && now_ns() < deadline) {
      const int result = submit_and_wait(100'000'000);
      if (result < 0 && result != -ETIME && result != -EINTR) return;
      reap();
    }
  }

  void cancel(std::uint64_t data) noexcept {
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) return;  // io_uring_queue_exit will cancel it
    io_uring_prep_cancel64(sqe, data, 0);
    io_uring_sqe_set_data64(sqe, kCancel);
  }

  Load& load_;
  io_uring* ring_;
  std::size_t buffer_size_;
  std::unique_ptr<char[]> buffers_;  // buffer_size_ bytes a connection, for its recv
  std::vector<InFlight> in_flight_;
  std::size_t operations_ = 0;  // submitted or queued, not yet completed
  bool poll_first_;
  bool draining_ = false;
  std::int64_t now_ = 0;  // when the last wait returned
};

/// Runs `load` on the engine `options.engine` names ("auto": io_uring if the kernel allows).
inline Result run_engine(const Options& options) {
  Ring ring;
  const bool want_uring = options.engine != "epoll";
  const int error = want_uring ? ring.init(static_cast<std::size_t>(options.connections)) : 0;
  const bool unavailable = error == -EPERM || error == -ENOSYS || error == -EINVAL;
  if (error < 0 && (options.engine == "uring" || !unavailable)) {
    fail_errno("io_uring_queue_init", -error);
  }
  Load load(options);
  load.connect_all();
  if (want_uring && error == 0) {
    UringEngine engine(load, ring);
    engine.run();
  } else {
    EpollEngine engine(load);
    engine.run();
  }
  return load.finish();
}

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
  if (options.engine != "auto" && options.engine != "uring" && options.engine != "epoll") {
    throw std::invalid_argument("engine must be auto, uring or epoll");
  }
  return detail::run_engine(options);
}

}  // namespace echo_load
