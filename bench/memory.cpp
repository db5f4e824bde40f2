// bench/memory: 100,000 concurrent tasks, created at once, each blocked (on an Event, or in a
// long sleep); reports the peak RSS (VmHWM) and the bytes each task costs, then releases them
// and finishes cleanly. Boost.Fiber's fibers (its default stack) blocked the same way are the
// reference. The targets: peak RSS <= 1 GiB, at most 5,000 bytes per task.
//
// --wait read: 5,000 idle connections, each a task that has read one 100-byte request from
// its socket and waits to read again: the memory a server's idle connection costs, with a
// receive buffer per connection (the default) and with set_receive_pool(true) ("uring_pool").
// The connections open one after another, each request read before the next connection
// opens, as clients arriving over time (a burst of unread requests beyond the pool's 1,024
// buffers falls back to per-connection buffers, and costs what the default does). On
//
// One measurement per process: VmHWM is a high-water mark and never goes down, so each impl
// is measured in a child process of its own, which sends its figures back through a pipe.

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/fiber/all.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncio/linux.hpp"
#include "bench_util.hpp"

namespace {

constexpr const char* kUsage =
    "usage: memory [--json] [--quick] [--tasks 100000] [--wait event|sleep|read]\n"
    "              [--backend auto] [--stack-size BYTES] [--impl asyncio,boost_fiber,uring_pool]\n"
    "Peak RSS and bytes per task of N tasks blocked at once. --wait event: the tasks wait on\n"
    "one Event, then it is set; --wait sleep: they sleep for an hour, then are cancelled.\n"
    "boost_fiber: as many Boost.Fiber fibers with its default stack, blocked on one condition\n"
    "variable (event) or in a long sleep_for (sleep, then woken by a flag and a notify).\n"
    "--wait read (default 5,000 tasks): each task reads a 100-byte request from a socket and\n"
    "waits to read again (one connection after another); the peers then close. uring_pool:\n"
    "io_uring with set_receive_pool(true), receiving into buffers the loop shares.\n";

constexpr std::size_t kRequestBytes = 100;

// Long enough that no sleeping task wakes during a run: they are cancelled long before.
constexpr std::int64_t kLongSleepMs = 3'600'000;

struct Settings {
  bool json = false;
  int tasks = 0;
  bool sleep = false;
  bool read = false;
  std::string backend;
  std::size_t stack_size = 0;
  std::string impl_filter;
};

struct Result {
  std::int64_t rss_before = 0;
  std::int64_t peak_rss = 0;
  double create_ms = 0;
  double release_ms = 0;
  int finished = 0;
  char impl[16] = {};
};

/// --wait read: a connection per task; each reads a request, then waits on its socket until
/// the peer closes.
Result measure_connections(const Settings& settings) {
  Result result;
  asyncio::run([&] {
    const auto n = static_cast<std::size_t>(settings.tasks);
    std::vector<asyncio::Task<void>> tasks;
    std::vector<int> peers;
    tasks.reserve(n);
    peers.reserve(n);
    std::size_t answered = 0;
    const std::string request(kRequestBytes, 'r');
    result.rss_before = bench::current_rss_bytes();
    std::int64_t start = bench::now_ns();
    for (std::size_t i = 0; i < n; ++i) {
      int fds[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        throw std::runtime_error("socketpair: " + std::string(std::strerror(errno)));
      }
      peers.push_back(fds[1]);
      tasks.push_back(asyncio::create_task([&, stream = asyncio::open_fd(fds[0])]() mutable {
        if (stream.readexactly(kRequestBytes).size() == kRequestBytes) ++answered;
        if (stream.read(1).empty()) ++result.finished;  // the peer's close
      }));
      if (send(fds[1], request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
        throw std::runtime_error("send: " + std::string(std::strerror(errno)));
      }
      while (answered <= i) asyncio::sleep_ms(0);
    }
    result.create_ms = static_cast<double>(bench::now_ns() - start) / 1e6;
    result.peak_rss = bench::peak_rss_bytes();
    start = bench::now_ns();
    for (const int peer : peers) close(peer);
    asyncio::gather(asyncio::return_exceptions, tasks);
    result.release_ms = static_cast<double>(bench::now_ns() - start) / 1e6;
  });
  return result;
}

/// Creates every task, lets each run until it blocks, reads the high-water mark, then
/// releases them all and waits for every one to end.
Result measure(const Settings& settings) {
  if (settings.read) return measure_connections(settings);
  Result result;
  asyncio::run([&] {
    asyncio::Event release;
    asyncio::TaskOptions options{.name = "", .stack_size = settings.stack_size};
    std::vector<asyncio::Task<void>> tasks;
    tasks.reserve(static_cast<std::size_t>(settings.tasks));
    result.rss_before = bench::current_rss_bytes();
    std::int64_t start = bench::now_ns();
    for (int i = 0; i < settings.tasks; ++i) {
      tasks.push_back(asyncio::create_task(options, [&] {
        if (settings.sleep) {
          asyncio::sleep_ms(kLongSleepMs);
        } else {
          release.wait();
        }
      }));
    }
    // sleep_ms(0) queues main behind every new task: each runs until it blocks, so each has
    // touched its stack before the high-water mark is read.
    asyncio::sleep_ms(0);
    result.create_ms = static_cast<double>(bench::now_ns() - start) / 1e6;
    result.peak_rss = bench::peak_rss_bytes();

    start = bench::now_ns();
    if (settings.sleep) {
      for (auto& task : tasks) task.cancel();
    } else {
      release.set();
    }
    asyncio::gather(asyncio::return_exceptions, tasks);
    for (const auto& task : tasks) {
      bool as_expected = settings.sleep ? task.cancelled() : task.done() && !task.exception();
      if (as_expected) ++result.finished;
    }
    result.release_ms = static_cast<double>(bench::now_ns() - start) / 1e6;
  });
  return result;
}

/// The reference: Boost.Fiber fibers blocked on one condition variable. For --wait sleep they
/// sleep for an hour, a wait the main fiber ends with notify_all on a condition variable that
/// they wait on with wait_for (Boost.Fiber has no cancellation).
Result measure_boost_fiber(const Settings& settings) {
  Result result;
  boost::fibers::mutex mutex;
  boost::fibers::condition_variable released_cv;
  bool released = false;
  int blocked = 0;
  std::vector<boost::fibers::fiber> fibers;
  fibers.reserve(static_cast<std::size_t>(settings.tasks));
  result.rss_before = bench::current_rss_bytes();
  std::int64_t start = bench::now_ns();
  for (int i = 0; i < settings.tasks; ++i) {
    fibers.emplace_back([&] {
      std::unique_lock<boost::fibers::mutex> lock(mutex);
      ++blocked;
      if (settings.sleep) {
        released_cv.wait_for(lock, std::chrono::milliseconds(kLongSleepMs),
                             [&] { return released; });
      } else {
        released_cv.wait(lock, [&] { return released; });
      }
      ++result.finished;
    });
  }
  // Each new fiber is ready; yielding runs every one until it blocks.
  while (blocked < settings.tasks) boost::this_fiber::yield();
  result.create_ms = static_cast<double>(bench::now_ns() - start) / 1e6;
  result.peak_rss = bench::peak_rss_bytes();
  start = bench::now_ns();
  {
    std::unique_lock<boost::fibers::mutex> lock(mutex);
    released = true;
  }
  released_cv.notify_all();
  for (auto& fiber : fibers) fiber.join();
  result.release_ms = static_cast<double>(bench::now_ns() - start) / 1e6;
  return result;
}

/// Runs `measure` in a child process and returns what it measured; impl is left empty when the
/// child failed.
template <class Measure>
Result in_child(Measure measure) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    Result result = measure();
    const char* data = reinterpret_cast<const char*>(&result);
    std::size_t left = sizeof result;
    while (left > 0) {
      const ssize_t n = write(fds[1], data, left);
      if (n <= 0) _exit(1);
      data += n;
      left -= static_cast<std::size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  Result result;
  char* data = reinterpret_cast<char*>(&result);
  std::size_t got = 0;
  while (pid > 0 && got < sizeof result) {
    const ssize_t n = read(fds[0], data + got, sizeof result - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  close(fds[0]);
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
  if (got != sizeof result || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return {};
  return result;
}

Settings parse(int argc, char** argv) {
  bench::Args args(argc, argv, kUsage);
  Settings settings;
  settings.json = args.flag("--json");
  bool quick = args.flag("--quick");
  std::string wait = args.text("--wait", "event");
  settings.sleep = wait == "sleep";
  settings.read = wait == "read";
  // The target's figure is for 100,000 tasks; a tenth of that is enough for a smoke run. A
  // connection takes two descriptors.
  const int tasks = settings.read ? (quick ? 500 : 5'000) : (quick ? 10'000 : 100'000);
  settings.tasks = static_cast<int>(args.number("--tasks", tasks));
  settings.backend = args.text("--backend", "auto");
  settings.stack_size = static_cast<std::size_t>(args.number("--stack-size", 0));
  settings.impl_filter = args.text("--impl", "");
  args.require(settings.tasks >= 1, "--tasks must be positive");
  args.require(wait == "event" || wait == "sleep" || wait == "read",
               "--wait is event, sleep or read");
  args.finish();
  if (settings.read) {
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    const auto needed = static_cast<rlim_t>(settings.tasks) * 2 + 100;
    args.require(limit.rlim_cur >= needed,
                 "--tasks: " + std::to_string(settings.tasks) + " connections need " +
                     std::to_string(needed) + " descriptors; the limit is " +
                     std::to_string(limit.rlim_cur));
  }
  return settings;
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings = parse(argc, argv);
  std::vector<Result> results;
  if (bench::selected(settings.impl_filter, "asyncio")) {
    results.push_back(in_child([&] {
      asyncio::new_event_loop(asyncio::Loop::Options{.backend = settings.backend});
      Result result = measure(settings);
      std::snprintf(result.impl, sizeof result.impl, "%s",
                    asyncio::get_event_loop().backend_name());
      return result;
    }));
  }
  // The receive pool only differs from the default where there are sockets.
  if (settings.read && std::string(settings.backend) != "epoll" &&
      bench::selected(settings.impl_filter, "uring_pool")) {
    results.push_back(in_child([&] {
      asyncio::set_receive_pool(true);
      asyncio::new_event_loop(asyncio::Loop::Options{.backend = "uring"});
      Result result = measure(settings);
      std::snprintf(result.impl, sizeof result.impl, "uring_pool");
      return result;
    }));
  }
  if (!settings.read && bench::selected(settings.impl_filter, "boost_fiber")) {
    results.push_back(in_child([&] {
      Result result = measure_boost_fiber(settings);
      std::snprintf(result.impl, sizeof result.impl, "boost_fiber");
      return result;
    }));
  }
  bench::Table table({"impl", "tasks", "wait", "RSS before MiB", "peak RSS MiB", "bytes/task",
                      "create+block ms", "release ms"});
  int status = 0;
  for (const Result& result : results) {
    if (result.impl[0] == '\0') {
      std::fprintf(stderr, "error: a measuring child process failed\n");
      status = 1;
      continue;
    }
    double per_task = static_cast<double>(result.peak_rss - result.rss_before) /
                      static_cast<double>(settings.tasks);
    if (settings.json) {
      bench::JsonLine()
          .add("bench", "memory")
          .add("impl", std::string(result.impl))
          .add("tasks", settings.tasks)
          .add("wait", settings.read ? "read" : settings.sleep ? "sleep" : "event")
          .add("peak_rss_bytes", result.peak_rss)
          .add("bytes_per_task", per_task)
          .print();
    }
    table.add_row({result.impl, std::to_string(settings.tasks),
                   settings.read ? "read" : settings.sleep ? "sleep" : "event",
                   bench::fixed(static_cast<double>(result.rss_before) / (1 << 20), 1),
                   bench::fixed(static_cast<double>(result.peak_rss) / (1 << 20), 1),
                   bench::fixed(per_task, 0), bench::fixed(result.create_ms, 1),
                   bench::fixed(result.release_ms, 1)});
    if (result.finished != settings.tasks) {
      std::fprintf(stderr, "error: %s: %d of %d tasks ended as expected\n", result.impl,
                   result.finished, settings.tasks);
      status = 1;
    }
  }
  table.print(bench::human_out(settings.json));
  return status;
}
