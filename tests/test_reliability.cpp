// Reliability under misuse and at the edges: a wake-up lost between a timeout and a finishing
// task, cancellation of Server::wait_closed(), several readers of one Stream, extreme
// durations, empty handles, waitables destroyed under their waiters, calls from foreign
// threads, fork(), allocation and thread counts that follow data rather than arguments, the
// io_uring fallback and a rate-limited accept-failure log.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <thread>

#include "test_support.hpp"

namespace asyncio::detail {
extern std::atomic<int> resolver_test_delay_ms;  // src/linux/net.cpp: slows lookups for tests
extern std::atomic<int> uring_test_init_error;   // src/linux/uring_backend.cpp: fails set-up
}  // namespace asyncio::detail

using namespace std::chrono_literals;

namespace {

/// A byte device fed by the test: readable while it holds data or has ended. Like a real
/// driver asked for zero bytes, read_some() returns 0 for an empty span, and counts it.
class ScriptedDevice final : public asyncio::PollableDevice {
 public:
  struct Shared {
    std::string data;
    bool ended = false;
    int empty_reads = 0;
    std::size_t largest_read = 0;
    std::size_t max_read = 0;  // at most this much per read_some (0: no limit)
  };
  explicit ScriptedDevice(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  unsigned poll(unsigned events) override {
    const bool readable = !shared_->data.empty() || shared_->ended;
    return (events & asyncio::POLL_RD) && readable ? asyncio::POLL_RD : 0;
  }
  std::ptrdiff_t read_some(std::span<std::byte> buf) override {
    shared_->largest_read = std::max(shared_->largest_read, buf.size());
    if (buf.empty()) {
      ++shared_->empty_reads;
      return 0;
    }
    if (shared_->data.empty()) return shared_->ended ? 0 : kWouldBlock;
    std::size_t n = std::min(buf.size(), shared_->data.size());
    if (shared_->max_read > 0) n = std::min(n, shared_->max_read);
    std::memcpy(buf.data(), shared_->data.data(), n);
    shared_->data.erase(0, n);
    return static_cast<std::ptrdiff_t>(n);
  }
  std::ptrdiff_t write_some(std::span<const std::byte> buf) override {
    return static_cast<std::ptrdiff_t>(buf.size());
  }

 private:
  std::shared_ptr<Shared> shared_;
};

int live_threads() {
  int count = 0;
  DIR* directory = opendir("/proc/self/task");
  REQUIRE(directory != nullptr);
  while (const dirent* entry = readdir(directory)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(directory);
  return count;
}

template <class E>
std::string message_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const E& error) {
    return error.what();
  }
  return "(no exception)";
}

}  // namespace

// ---- 1. timeout() around an await whose task finishes in the same step ----

TEST_CASE("a timeout around await(task) ends when the task finishes in the step the deadline passes") {
  for (const bool use_wait : {false, true}) {
    CAPTURE(use_wait);
    test::fresh_loop();
    std::string outcome;
    asyncio::run([&] {
      // The task's timer (10 ms) and the scope's (15 ms) both fall due while a blocker holds
      // the loop, so they are queued in one step: the task first. It finishes before the
      // awaiter runs, and its completion wake-up finds the awaiter already queued.
      auto task = asyncio::create_task([] {
        asyncio::sleep_ms(10);
        return 7;
      });
      asyncio::create_task([] { test::spin_for(40ms); });
      try {
        const int value = asyncio::timeout_ms(15, [&] {
          if (use_wait) {
            task.wait();
            return task.result();
          }
          return asyncio::await(task);
        });
        outcome = "value " + std::to_string(value);
      } catch (const asyncio::TimeoutError&) {
        outcome = "timeout";
      }
    });
    // The deadline passed before the awaiter saw the result: the scope's expiry stands.
    CHECK(outcome == "timeout");
  }
}

// ---- 2. Server::wait_closed() and the caller's cancellation ----

TEST_CASE("cancelling a task in Server::wait_closed() raises CancelledError there; the server serves on") {
  test::fresh_loop();
  bool cancelled = false;
  bool returned = false;
  std::string reply;
  asyncio::run([&] {
    asyncio::Server server = asyncio::start_server(
        [](asyncio::Stream reader, asyncio::Stream writer) {
          writer.write(reader.readline());
          writer.drain();
          writer.close();
        },
        "127.0.0.1", 0);
    auto waiter = asyncio::create_task([&] {
      try {
        server.wait_closed();
        returned = true;
      } catch (const asyncio::CancelledError&) {
        cancelled = true;
        throw;
      }
    });
    asyncio::sleep_ms(5);
    waiter.cancel();
    asyncio::sleep_ms(5);
    CHECK(waiter.done());
    // The listening socket still has its acceptor: a new connection is served.
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", server.port());
    writer.write("still there\n");
    writer.drain();
    reply = asyncio::wait_for_ms(asyncio::create_task([r = reader]() mutable { return r.readline(); }), 5000);
    server.close();
    server.wait_closed();
  });
  CHECK(cancelled);
  CHECK_FALSE(returned);
  CHECK(reply == "still there\n");
}

// ---- 3. two readers of one Stream over a PollableDevice ----

TEST_CASE("a second reader never reads with an empty span nor takes it for the end of the stream") {
  test::fresh_loop();
  auto shared = std::make_shared<ScriptedDevice::Shared>();
  std::string first;
  std::string line;
  asyncio::run([&] {
    asyncio::Stream stream(std::make_unique<ScriptedDevice>(shared));
    auto a = asyncio::create_task([&] { first = stream.readexactly(10); });
    auto b = asyncio::create_task([&] { line = stream.readline(); });
    asyncio::sleep_ms(2);
    // Exactly the input buffer's first size: the first reader fills it to the brim.
    shared->data = std::string(4096, 'x');
    asyncio::sleep_ms(5);
    shared->data = "\n";
    asyncio::wait_for_ms(b, 5000);
    a.wait();
  });
  CHECK(shared->empty_reads == 0);
  CHECK(first == std::string(10, 'x'));
  CHECK(line == std::string(4086, 'x') + "\n");
}

TEST_CASE("a reader woken after another buffered the input takes those bytes first") {
  test::fresh_loop();
  auto shared = std::make_shared<ScriptedDevice::Shared>();
  shared->max_read = 3;
  std::string first;
  std::string second;
  asyncio::run([&] {
    asyncio::Stream stream(std::make_unique<ScriptedDevice>(shared));
    auto a = asyncio::create_task([&] { first = stream.readexactly(5); });
    auto b = asyncio::create_task([&] {
      char buffer[16];
      second.assign(buffer, stream.readinto(std::span<char>(buffer)));
    });
    asyncio::sleep_ms(2);
    shared->data = "abcdef";  // the first reader takes "abcde" and leaves "f" buffered
    asyncio::sleep_ms(5);
    shared->data = "ghi";
    asyncio::wait_for_ms(b, 5000);
    a.wait();
  });
  CHECK(first == "abcde");
  CHECK(second == "f");
}

// ---- 4. extreme durations ----

TEST_CASE("durations too long for the clock sleep forever instead of returning at once") {
  test::fresh_loop();
  asyncio::run([] {
    std::vector<asyncio::Task<void>> sleepers;
    sleepers.push_back(asyncio::create_task([] { asyncio::sleep_ms(INT64_MAX); }));
    sleepers.push_back(asyncio::create_task([] { asyncio::sleep_us(INT64_MAX); }));
    sleepers.push_back(asyncio::create_task([] { asyncio::sleep(std::chrono::hours::max()); }));
    sleepers.push_back(asyncio::create_task([] { asyncio::sleep(std::numeric_limits<double>::infinity()); }));
    sleepers.push_back(asyncio::create_task([] { asyncio::sleep(1e300); }));
    sleepers.push_back(asyncio::create_task([] {
      asyncio::timeout_us(INT64_MAX, [] { asyncio::sleep_ms(INT64_MAX); });
    }));
    asyncio::sleep_ms(30);
    for (std::size_t i = 0; i < sleepers.size(); ++i) {
      CAPTURE(i);
      CHECK_FALSE(sleepers[i].done());
      sleepers[i].cancel();
    }
    asyncio::sleep_ms(1);
    for (auto& sleeper : sleepers) CHECK(sleeper.cancelled());
    // Saturated limits still let short work finish.
    auto quick = asyncio::create_task([] {
      asyncio::sleep_ms(2);
      return 3;
    });
    CHECK(asyncio::wait_for_ms(quick, INT64_MAX) == 3);
    CHECK(asyncio::timeout(std::chrono::hours::max(), [] {
      asyncio::sleep_ms(1);
      return 4;
    }) == 4);
  });
}

TEST_CASE("a NaN duration raises ValueError; the loop goes on") {
  test::fresh_loop();
  asyncio::run([] {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_AS(asyncio::sleep(nan), asyncio::ValueError);
    auto task = asyncio::create_task([] {
      asyncio::sleep_ms(5);
      return 1;
    });
    CHECK_THROWS_AS(asyncio::wait_for(task, nan), asyncio::ValueError);
    CHECK_THROWS_AS(asyncio::timeout(std::chrono::duration<double>(nan), [] {}), asyncio::ValueError);
    CHECK(asyncio::await(task) == 1);
  });
}

TEST_CASE("a huge timer resolution or I/O priority bound is saturated") {
  asyncio::Loop& loop = test::fresh_loop();
  loop.set_timer_resolution(INT64_MAX);
  CHECK(loop.timer_resolution() <= INT64_MAX / 4);
  loop.set_io_priority_bound(INT64_MAX);
  CHECK(loop.io_priority_bound() <= INT64_MAX / 4);
}

// ---- 5. empty task handles ----

TEST_CASE("every method of an empty task handle raises RuntimeError") {
  test::fresh_loop();
  asyncio::Task<int> empty;
  CHECK(message_of<asyncio::RuntimeError>([&] { empty.set_name("x"); }).find("empty task handle") !=
        std::string::npos);
  CHECK(message_of<asyncio::RuntimeError>([&] { asyncio::run_until_complete(empty); })
            .find("empty task handle") != std::string::npos);
  CHECK_THROWS_AS(empty.done(), asyncio::RuntimeError);
  CHECK(asyncio::run([] { return 5; }) == 5);
}

// ---- 6. a waitable destroyed while tasks wait on it ----

namespace {
/// Runs `wait(object)` in two tasks, destroys the object while they wait, and returns what
/// each waiter raised.
template <class T, class Make, class Wait>
std::vector<std::string> destroyed_under_waiters(Make make, Wait wait) {
  test::fresh_loop();
  std::vector<std::string> errors;
  asyncio::run([&] {
    std::unique_ptr<T> object = make();
    std::vector<asyncio::Task<void>> waiters;
    for (int i = 0; i < 2; ++i) {
      waiters.push_back(asyncio::create_task([&] {
        try {
          wait(*object);
          errors.push_back("returned");
        } catch (const asyncio::RuntimeError& error) {
          errors.push_back(error.what());
        }
      }));
    }
    asyncio::sleep_ms(2);
    object.reset();
    for (auto& waiter : waiters) asyncio::wait_for_ms(waiter, 5000);
  });
  return errors;
}

void check_named(const std::vector<std::string>& errors, const std::string& kind, std::size_t count = 2) {
  CAPTURE(kind);
  REQUIRE(errors.size() == count);
  for (const auto& error : errors) {
    CHECK(error.find(kind) != std::string::npos);
    CHECK(error.find("destroyed") != std::string::npos);
  }
}
}  // namespace

TEST_CASE("destroying a waitable wakes its waiters with RuntimeError naming it") {
  check_named(destroyed_under_waiters<asyncio::Event>([] { return std::make_unique<asyncio::Event>(); },
                                                      [](asyncio::Event& e) { e.wait(); }),
              "Event");
  check_named(destroyed_under_waiters<asyncio::Lock>(
                  [] {
                    auto lock = std::make_unique<asyncio::Lock>();
                    lock->acquire();
                    return lock;
                  },
                  [](asyncio::Lock& l) { l.acquire(); }),
              "Lock");
  check_named(destroyed_under_waiters<asyncio::Semaphore>(
                  [] { return std::make_unique<asyncio::Semaphore>(0); },
                  [](asyncio::Semaphore& s) { s.acquire(); }),
              "Semaphore");
  check_named(destroyed_under_waiters<asyncio::Queue<int>>(
                  [] { return std::make_unique<asyncio::Queue<int>>(); },
                  [](asyncio::Queue<int>& q) { q.get(); }),
              "Queue");
  check_named(destroyed_under_waiters<asyncio::Condition>(
                  [] { return std::make_unique<asyncio::Condition>(); },
                  [](asyncio::Condition& c) {
                    c.acquire();
                    c.wait();
                  }),
              "Condition");
  check_named(destroyed_under_waiters<asyncio::Barrier>([] { return std::make_unique<asyncio::Barrier>(3); },
                                                        [](asyncio::Barrier& b) { b.wait(); }),
              "Barrier");
  // One waiter at a time: the second gets "already waiting" at once.
  const auto flag_errors = destroyed_under_waiters<asyncio::ThreadSafeFlag>(
      [] { return std::make_unique<asyncio::ThreadSafeFlag>(); }, [](asyncio::ThreadSafeFlag& f) { f.wait(); });
  REQUIRE(flag_errors.size() == 2);
  CHECK(flag_errors[0].find("already waiting") != std::string::npos);
  CHECK(flag_errors[1].find("ThreadSafeFlag") != std::string::npos);
  CHECK(flag_errors[1].find("destroyed") != std::string::npos);
}

// ---- 7. loop-thread-only calls from another thread ----

TEST_CASE("Event.set and Task.cancel from a thread that does not run the loop raise RuntimeError") {
  test::fresh_loop();
  std::vector<std::string> errors;
  bool woken = false;
  asyncio::run([&] {
    asyncio::Event event;
    auto waiter = asyncio::create_task([&] {
      event.wait();
      woken = true;
    });
    asyncio::sleep_ms(2);
    asyncio::Loop& loop = asyncio::get_event_loop();
    std::thread foreign([&] {
      for (auto* call : {+[](asyncio::Event& e, asyncio::Task<void>&, asyncio::Loop&) { e.set(); },
                         +[](asyncio::Event&, asyncio::Task<void>& t, asyncio::Loop&) { t.cancel(); }}) {
        try {
          call(event, waiter, loop);
          errors.push_back("no error");
        } catch (const asyncio::RuntimeError& error) {
          errors.push_back(error.what());
        }
      }
    });
    foreign.join();
    asyncio::sleep_ms(2);
    CHECK_FALSE(woken);  // nothing happened behind the loop's back
    event.set();
    asyncio::wait_for_ms(waiter, 5000);
  });
  CHECK(woken);
  REQUIRE(errors.size() == 2);
  for (const auto& error : errors) CHECK(error.find("thread") != std::string::npos);
}

// ---- 8. fork() ----

TEST_CASE("the parent's loop used in a forked child raises RuntimeError; the parent goes on") {
  test::fresh_loop();
  int status = -1;
  asyncio::run([&] {
    test::Pipe pipe;
    auto reader = asyncio::create_task([&] { return asyncio::wait_io(pipe.read_fd, asyncio::POLL_RD); });
    asyncio::sleep_ms(1);
    std::fflush(nullptr);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      int code = 1;
      try {
        asyncio::sleep_ms(1);
      } catch (const asyncio::RuntimeError& error) {
        code = std::string(error.what()).find("fork") != std::string::npos ? 0 : 2;
      } catch (...) {
        code = 3;
      }
      _exit(code);
    }
    waitpid(child, &status, 0);
    // The parent's own waits still work: its events were not taken by the child.
    pipe.write_byte();
    CHECK((asyncio::wait_for_ms(reader, 5000) & asyncio::POLL_RD) != 0);
  });
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// ---- 9. resources follow the data, not the arguments ----

TEST_CASE("read(n) allocates for what arrives, not n bytes up front") {
  test::fresh_loop();
  auto shared = std::make_shared<ScriptedDevice::Shared>();
  std::string got;
  asyncio::run([&] {
    asyncio::Stream stream(std::make_unique<ScriptedDevice>(shared));
    auto reader = asyncio::create_task([&] { return stream.read(64 << 20); });
    asyncio::sleep_ms(2);
    shared->data = "x";
    got = asyncio::wait_for_ms(reader, 5000);
    // A large arrival is still read whole, as far as n allows.
    shared->data = std::string(100'000, 'y');
    CHECK(stream.read(200'000).size() == 100'000);
    shared->data = std::string(10, 'z');
    CHECK(stream.read(4) == "zzzz");
  });
  CHECK(got == "x");
  CHECK(shared->largest_read <= 256 * 1024);
}

TEST_CASE("concurrent host-name lookups share a few resolver threads") {
  test::fresh_loop();
  asyncio::detail::resolver_test_delay_ms = 50;
  const int before = live_threads();
  int peak = before;
  int resolved = 0;
  asyncio::run([&] {
    std::vector<asyncio::Task<void>> lookups;
    for (int i = 0; i < 40; ++i) {
      lookups.push_back(asyncio::create_task([&] {
        if (!asyncio::resolve("localhost", 80).empty()) ++resolved;
      }));
    }
    auto sampler = asyncio::create_task([&] {
      for (;;) {
        peak = std::max(peak, live_threads());
        asyncio::sleep_ms(5);
      }
    });
    asyncio::gather(lookups);
    sampler.cancel();
  });
  asyncio::detail::resolver_test_delay_ms = 0;
  CHECK(resolved == 40);
  CHECK(peak - before <= 8);
}

// ---- 10. the io_uring fallback and the accept-failure log ----

TEST_CASE("io_uring failing with ENOMEM or EACCES falls back to epoll; other errors stay fatal") {
  for (const int error : {ENOMEM, EACCES, EPERM, ENOSYS}) {
    CAPTURE(error);
    asyncio::detail::uring_test_init_error = error;
    asyncio::Loop loop(asyncio::Loop::Options{"auto"});
    CHECK(std::string(loop.backend_name()) == "epoll");
  }
  asyncio::detail::uring_test_init_error = EBADF;
  CHECK_THROWS_AS(asyncio::Loop(asyncio::Loop::Options{"auto"}), asyncio::OSError);
  // Asking for io_uring by name gets its error.
  asyncio::detail::uring_test_init_error = ENOMEM;
  CHECK_THROWS_AS(asyncio::Loop(asyncio::Loop::Options{"uring"}), asyncio::OSError);
  asyncio::detail::uring_test_init_error = 0;
}

namespace {
/// Sends what the library logs (stdout or stderr) to a temporary file while alive.
class CapturedOutput {
 public:
  CapturedOutput() : file_(std::tmpfile()) {
    REQUIRE(file_ != nullptr);
    std::fflush(nullptr);
    saved_out_ = dup(1);
    saved_err_ = dup(2);
    dup2(fileno(file_), 1);
    dup2(fileno(file_), 2);
  }
  ~CapturedOutput() { restore(); }
  CapturedOutput(const CapturedOutput&) = delete;
  CapturedOutput& operator=(const CapturedOutput&) = delete;
  std::string text() {
    restore();
    std::string out;
    std::rewind(file_);
    char buffer[4096];
    while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, file_)) out.append(buffer, n);
    std::fclose(file_);
    file_ = nullptr;
    return out;
  }

 private:
  void restore() {
    if (saved_out_ < 0) return;
    std::fflush(nullptr);
    dup2(saved_out_, 1);
    dup2(saved_err_, 2);
    close(saved_out_);
    close(saved_err_);
    saved_out_ = saved_err_ = -1;
  }
  std::FILE* file_;
  int saved_out_ = -1;
  int saved_err_ = -1;
};

int count_lines_with(const std::string& text, const std::string& needle) {
  int count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}
}  // namespace

TEST_CASE("accept failures for want of descriptors are logged at most once a second") {
  test::fresh_loop();
  std::string served;
  std::string log;
  asyncio::run([&] {
    asyncio::Server server = asyncio::start_server(
        [](asyncio::Stream reader, asyncio::Stream writer) {
          writer.write(reader.readline());
          writer.drain();
        },
        "127.0.0.1", 0);
    const int client = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(client >= 0);
    std::optional<CapturedOutput> output(std::in_place);  // its file needs a descriptor too
    // Use up every descriptor: the server's accept then fails with EMFILE.
    std::vector<int> hogs;
    for (;;) {
      const int fd = dup(client);
      if (fd < 0) break;
      hogs.push_back(fd);
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(server.port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address);
    asyncio::sleep_ms(2500);
    for (const int fd : hogs) close(fd);
    log = output->text();
    asyncio::Stream stream = asyncio::open_fd(client);
    stream.write("served\n");
    stream.drain();
    served = asyncio::wait_for_ms(asyncio::create_task([&] { return stream.readline(); }), 5000);
    server.close();
  });
  const int lines = count_lines_with(log, "accept failed");
  CAPTURE(log);
  CHECK(lines >= 1);
  CHECK(lines <= 4);  // ~25 without the limit: one per 100 ms retry
  CHECK(log.find("more since the last report") != std::string::npos);
  CHECK(served == "served\n");
}
