// TCP for streams: name resolution off the loop, open_connection(), start_server() (Linux).
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "asyncio/detail/port.hpp"
#include "asyncio/funcs.hpp"
#include "asyncio/linux/io.hpp"
#include "asyncio/linux/net.hpp"
#include "asyncio/task.hpp"
#include "linux_backend.hpp"
#include "log.hpp"

namespace asyncio {

namespace detail {
std::atomic<int> resolver_test_delay_ms{0};
}

namespace {

/// Closes a descriptor unless released: every early exit (an error, a cancellation) of the
/// code below leaves no descriptor behind.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string endpoint(const std::string& host, std::uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

ResolvedAddress to_address(const sockaddr* address, socklen_t length) {
  ResolvedAddress out{address->sa_family, {}};
  const auto* bytes = reinterpret_cast<const std::byte*>(address);
  out.address.assign(bytes, bytes + length);
  return out;
}

/// A numeric IPv4/IPv6 address needs no resolver: parsed in place, on the loop.
bool parse_numeric(const std::string& host, std::uint16_t port, std::vector<ResolvedAddress>& out) {
  sockaddr_in v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    out.push_back(to_address(reinterpret_cast<sockaddr*>(&v4), sizeof v4));
    return true;
  }
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    out.push_back(to_address(reinterpret_cast<sockaddr*>(&v6), sizeof v6));
    return true;
  }
  return false;
}

/// One getaddrinfo() on a resolver thread. The thread and the waiting task share this by
/// reference count, so a task cancelled mid-lookup simply leaves and the thread finishes
/// alone. The thread reports through a pipe it closes as its very last act, after dropping its
/// reference: when the task sees the end of the pipe, nothing of the lookup is left on the
/// thread's side (no descriptor outlives the call that made it).
struct Lookup {
  std::string host;
  std::uint16_t port = 0;
  bool passive = false;
  int read_end = -1;
  int write_end = -1;
  std::atomic<bool> done{false};
  int gai_error = 0;
  int system_error = 0;
  std::vector<ResolvedAddress> addresses;

  Lookup() {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
      read_end = fds[0];
      write_end = fds[1];
    }
  }
  ~Lookup() {
    if (read_end >= 0) ::close(read_end);
  }
  void run() {
    if (const int delay = detail::resolver_test_delay_ms.load(); delay > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG | (passive ? AI_PASSIVE : 0);
    addrinfo* list = nullptr;
    const std::string service = std::to_string(port);
    gai_error = getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
    system_error = gai_error == EAI_SYSTEM ? errno : 0;
    for (addrinfo* item = list; item; item = item->ai_next) {
      addresses.push_back(to_address(item->ai_addr, item->ai_addrlen));
    }
    if (list) freeaddrinfo(list);
    done.store(true, std::memory_order_release);
  }
  /// The task's side: suspends until the thread has closed its end of the pipe.
  void wait() const {
    char byte;
    for (;;) {
      const ssize_t n = ::read(read_end, &byte, 1);
      if (n == 0 && done.load(std::memory_order_acquire)) return;
      if (n < 0 && errno != EAGAIN && errno != EINTR) throw OSError(errno, "resolve: pipe");
      wait_io(read_end, POLL_RD);
    }
  }
};

/// A few threads run every lookup of the process, so that thousands of concurrent lookups
/// cost a queue, not thousands of threads. Started on first use and never stopped (detached,
/// on an object never destroyed: a static one could be destroyed under a thread at exit).
class ResolverPool {
 public:
  static constexpr int kThreads = 4;

  void submit(std::shared_ptr<Lookup> lookup) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (threads_ < kThreads && idle_ == 0) {
        std::thread([this] { serve(); }).detach();  // throws std::system_error
        ++threads_;
      }
      queue_.push_back(std::move(lookup));
    }
    ready_.notify_one();
  }

 private:
  void serve() {
    for (;;) {
      std::shared_ptr<Lookup> lookup;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ++idle_;
        ready_.wait(lock, [this] { return !queue_.empty(); });
        --idle_;
        lookup = std::move(queue_.front());
        queue_.pop_front();
      }
      // Nobody waits for it any more (its task was cancelled): skip the lookup itself.
      if (lookup.use_count() > 1) lookup->run();
      const int write_end = lookup->write_end;
      lookup.reset();
      ::close(write_end);
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::shared_ptr<Lookup>> queue_;
  int threads_ = 0;
  int idle_ = 0;
};

ResolverPool& resolver_pool() {
  static auto* pool = new ResolverPool;
  return *pool;
}

OSError resolve_error(const Lookup& lookup) {
  const std::string what = "resolve " + endpoint(lookup.host, lookup.port) + ": ";
  if (lookup.gai_error == EAI_SYSTEM) return OSError(lookup.system_error, what + "getaddrinfo");
  // errno values a caller can test: the name does not exist, try later, or anything else.
  const int error = lookup.gai_error == EAI_NONAME || lookup.gai_error == EAI_NODATA ? ENOENT
                    : lookup.gai_error == EAI_AGAIN                                    ? EAGAIN
                                                                                       : EINVAL;
  return OSError(error, what + gai_strerror(lookup.gai_error));
}

void set_option(int fd, int level, int name, int value) {
  setsockopt(fd, level, name, &value, sizeof value);  // best effort: tuning, not correctness
}

/// The running loop's multishot accept (io_uring, 5.19+), or null: readiness plus accept4.
detail::AcceptIo* native_accept() {
  Loop* loop = Loop::running();
  if (!loop) return nullptr;
  detail::DescriptorWaits* waits = detail::scheduler_of(*loop).backend().descriptor_waits();
  return waits ? static_cast<detail::LinuxBackend*>(waits)->accept_io() : nullptr;
}

std::uint16_t bound_port(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  return ntohs(address.ss_family == AF_INET6
                   ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                   : reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

void set_port(ResolvedAddress& address, std::uint16_t port) {
  auto* base = reinterpret_cast<sockaddr*>(address.address.data());
  if (base->sa_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(base)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(base)->sin_port = htons(port);
  }
}

/// Connects one socket; returns its descriptor or the errno of the failure.
int connect_one(const ResolvedAddress& address, int& error) {
  FdGuard fd(socket(address.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    error = errno;
    return -1;
  }
  // Small request/response exchanges are what asyncio streams carry: no Nagle delay (CPython
  // asyncio sets TCP_NODELAY too).
  set_option(fd.get(), IPPROTO_TCP, TCP_NODELAY, 1);
  const auto* target = reinterpret_cast<const sockaddr*>(address.address.data());
  if (connect(fd.get(), target, static_cast<socklen_t>(address.address.size())) != 0) {
    if (errno != EINPROGRESS) {
      error = errno;
      return -1;
    }
    wait_io(fd.get(), POLL_WR);
    socklen_t length = sizeof error;
    if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error != 0) return -1;
  }
  error = 0;
  return fd.release();
}

/// A listening socket bound to `address`, or -1 with `error` set.
int listen_one(const ResolvedAddress& address, bool dual_stack, int backlog, bool reuse_port,
               int& error) {
  FdGuard fd(socket(address.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    error = errno;
    return -1;
  }
  set_option(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1);
  if (reuse_port) set_option(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1);
  if (address.family == AF_INET6) set_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? 0 : 1);
  const auto* local = reinterpret_cast<const sockaddr*>(address.address.data());
  if (bind(fd.get(), local, static_cast<socklen_t>(address.address.size())) != 0 ||
      listen(fd.get(), backlog) != 0) {
    error = errno;
    return -1;
  }
  return fd.release();
}

}  // namespace

std::vector<ResolvedAddress> resolve(const std::string& host, std::uint16_t port, bool passive) {
  std::vector<ResolvedAddress> out;
  if (parse_numeric(host, port, out)) return out;
  auto lookup = std::make_shared<Lookup>();
  if (lookup->read_end < 0) throw OSError(errno, "resolve: pipe");
  lookup->host = host;
  lookup->port = port;
  lookup->passive = passive;
  try {
    resolver_pool().submit(lookup);
  } catch (const std::system_error& error) {
    ::close(lookup->write_end);
    throw OSError(error.code().value(), "resolve: starting a resolver thread");
  }
  lookup->wait();
  if (lookup->gai_error != 0) throw resolve_error(*lookup);
  if (lookup->addresses.empty()) {
    throw OSError(ENOENT, "resolve " + endpoint(host, port) + ": no stream address");
  }
  return std::move(lookup->addresses);
}

std::pair<Stream, Stream> open_connection(const std::string& host, std::uint16_t port) {
  if (host.empty()) throw ValueError("open_connection: empty host");
  int error = 0;
  for (const ResolvedAddress& address : resolve(host, port)) {
    const int fd = connect_one(address, error);
    if (fd >= 0) {
      Stream stream = open_fd(fd);
      return {stream, stream};
    }
  }
  throw OSError(error, "open_connection " + endpoint(host, port));
}

// ---- servers ----

struct Server::State {
  std::function<void(Stream, Stream)> callback;
  std::vector<int> fds;
  // Per listening socket, its multishot accept (null: the socket is served by readiness).
  std::vector<std::shared_ptr<detail::AcceptOp>> accepts;
  std::vector<Task<void>> acceptors;
  std::uint16_t port = 0;
  std::uint64_t connections = 0;
  bool closed = false;
  Micros last_failure_log = -1;          // when an accept failure was last logged
  std::uint64_t unreported_failures = 0;  // failures since then

  // A Server dropped without close() stops serving: the acceptors capture this state by
  // pointer, so they must end with it.
  ~State() {
    for (auto& task : acceptors) task.cancel();
    close_sockets();
  }
  void close_sockets() {
    for (auto& op : accepts) {
      if (!op) continue;
      op->released = true;
      if (op->owner) op->owner->release(*op);
      for (const int fd : op->accepted) ::close(fd);
      op->accepted.clear();
      op.reset();
    }
    for (int& fd : fds) {
      if (fd < 0) continue;
      abort_io(fd, ECANCELED);
      ::close(fd);
      fd = -1;
    }
  }
  /// What both accept loops do about a failed accept of `listener`: true to go on (the
  /// connection is gone, or the process is out of descriptors or memory: logged, and the
  /// server waits 100 ms for some to free rather than stop), false once the server is closed;
  /// any other error is raised.
  bool survive_accept_error(int error, int listener) {
    if (error == EINTR || error == ECONNABORTED || error == EPROTO) return true;
    if (is_out_of_resources(error)) {
      log_accept_failure(error);
      sleep_ms(100);
      return true;
    }
    if (closed) return false;
    throw OSError(error, "start_server: accept on fd " + std::to_string(listener));
  }
  static bool is_out_of_resources(int error) {
    return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
  }
  /// At most one line a second while accept keeps failing (it retries 10 times a second), with
  /// the number of failures the last line did not report.
  void log_accept_failure(int error) {
    ++unreported_failures;
    const Micros now = detail::port::now();
    if (last_failure_log >= 0 && now - last_failure_log < 1'000'000) return;
    std::string line = "start_server: accept failed (" + std::string(std::strerror(error)) +
                       "; out of descriptors or memory); retrying every 100 ms";
    if (unreported_failures > 1) {
      line += " (" + std::to_string(unreported_failures - 1) + " more since the last report)";
    }
    detail::port::log_error(line.c_str());
    last_failure_log = now;
    unreported_failures = 0;
  }
  /// Each connection runs the callback in its own task, on a Stream that owns the socket.
  void serve(int connection) {
    FdGuard fd(connection);
    set_option(fd.get(), IPPROTO_TCP, TCP_NODELAY, 1);
    ++connections;
    try {
      create_task(TaskOptions{"connection-" + std::to_string(connections), 0},
                  [callback = callback, fd = fd.get()] {
                    Stream stream = open_fd(fd);
                    callback(stream, stream);
                  });
      fd.release();
    } catch (const std::exception& error) {
      // No task for this connection (out of memory or stacks): drop it, keep serving.
      detail::port::log_error(("start_server: connection dropped: " + std::string(error.what())).c_str());
    }
  }
  /// Serves what the multishot accept queues. Returns false if the kernel refused the request
  /// (the caller falls back to readiness), true once the server is closed.
  bool accept_natively(detail::AcceptIo& io, std::shared_ptr<detail::AcceptOp> op) {
    bool served = false;
    for (;;) {
      while (!op->accepted.empty() && !op->released) {
        const int fd = op->accepted.front();
        op->accepted.pop_front();
        served = true;
        serve(fd);
      }
      if (op->released) return true;
      if (const int error = std::exchange(op->error, 0); error != 0 && error != EAGAIN) {
        if (error == EINVAL && !served) {
          detail::log_message(LogLevel::debug,
                              "start_server: multishot accept refused (EINVAL); using readiness");
          return false;
        }
        if (!survive_accept_error(error, op->fd)) return true;
        if (is_out_of_resources(error)) continue;  // serve what queued during the pause first
      }
      if (!op->armed) io.start(op);
      if (io.wait(*op) != 0) return true;  // released
    }
  }
  void accept_loop(std::size_t index) {
    const int listener = fds[index];
    if (const std::shared_ptr<detail::AcceptOp> op = accepts[index]) {
      detail::AcceptIo* io = native_accept();
      if (io && accept_natively(*io, op)) return;
      op->released = true;
      if (op->owner) op->owner->release(*op);
      for (const int fd : op->accepted) serve(fd);
      op->accepted.clear();
      accepts[index].reset();
    }
    for (;;) {
      const int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        serve(fd);
        continue;
      }
      if (errno == EAGAIN) {
        wait_io(listener, POLL_RD);
      } else if (!survive_accept_error(errno, listener)) {
        return;
      }
    }
  }
};

void Server::close() {
  if (!state_ || state_->closed) return;
  state_->closed = true;
  for (auto& task : state_->acceptors) task.cancel();
  state_->close_sockets();
}

void Server::wait_closed() {
  if (!state_) return;
  const auto keep = state_;
  for (auto& task : keep->acceptors) {
    // Not forwarded: cancelling the caller must raise CancelledError in the caller and leave
    // the server serving (a forwarded cancel ended the acceptor and was then swallowed here,
    // leaving an open listening socket that nobody accepted on).
    detail::await_task(task.record_pointer(), -1, false);
    try {
      task.result();
    } catch (const CancelledError&) {
      // The acceptor ended by Server::close().
    }
  }
}

std::uint16_t Server::port() const { return state_ ? state_->port : 0; }

std::vector<int> Server::fds() const { return state_ ? state_->fds : std::vector<int>{}; }

std::uint64_t Server::connections() const { return state_ ? state_->connections : 0; }

Server start_server(std::function<void(Stream reader, Stream writer)> callback,
                    const std::string& host, std::uint16_t port, int backlog, bool reuse_port) {
  if (!callback) throw ValueError("start_server: empty callback");
  if (backlog < 0) throw ValueError("start_server: negative backlog");
  auto state = std::make_shared<Server::State>();
  state->callback = std::move(callback);
  std::vector<ResolvedAddress> addresses;
  const bool any = host.empty();
  // "" listens on everything: one dual-stack IPv6 socket, or IPv4 where IPv6 is missing.
  if (any) {
    parse_numeric("::", port, addresses);
    parse_numeric("0.0.0.0", port, addresses);
  } else {
    addresses = resolve(host, port, true);
  }
  int error = 0;
  for (ResolvedAddress& address : addresses) {
    if (state->port != 0) set_port(address, state->port);  // port 0: every socket on one port
    const int fd = listen_one(address, any, backlog, reuse_port, error);
    if (fd < 0) {
      if (error == EAFNOSUPPORT || error == EADDRNOTAVAIL) continue;  // no such stack here
      throw OSError(error, "start_server " + endpoint(host, port));
    }
    state->fds.push_back(fd);
    state->port = bound_port(fd);
    if (any) break;  // the dual-stack socket serves IPv4 as well
  }
  if (state->fds.empty()) throw OSError(error, "start_server " + endpoint(host, port));
  // Armed here, so that connections are accepted before the acceptor tasks first run.
  detail::AcceptIo* io = native_accept();
  for (const int fd : state->fds) {
    std::shared_ptr<detail::AcceptOp> op;
    if (io) {
      op = std::make_shared<detail::AcceptOp>();
      op->fd = fd;
      io->start(op);
    }
    state->accepts.push_back(std::move(op));
  }
  for (std::size_t index = 0; index < state->fds.size(); ++index) {
    state->acceptors.push_back(
        create_task(TaskOptions{"server-" + std::to_string(state->port), 0},
                    [raw = state.get(), index] { raw->accept_loop(index); }));
  }
  Server server;
  server.state_ = std::move(state);
  return server;
}

void run_threads(int threads, const std::function<void(int index)>& main) {
  if (threads < 1) throw ValueError("run_threads: at least one thread, not " + std::to_string(threads));
  if (!main) throw ValueError("run_threads: empty function");
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  auto serve = [&](int index) {
    try {
      run(main, index);
      get_event_loop().close();
    } catch (...) {
      errors[static_cast<std::size_t>(index)] = std::current_exception();
    }
  };
  try {
    for (int i = 0; i < threads; ++i) workers.emplace_back(serve, i);
  } catch (...) {
    for (auto& worker : workers) worker.join();
    throw;
  }
  for (auto& worker : workers) worker.join();
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

}  // namespace asyncio
