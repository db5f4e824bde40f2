// Seeing what the loop does (docs/using.md#observing-the-loop): statistics, task
// introspection, the stall detector, and crossing threads.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "asyncio/testing.hpp"
#include "test_support.hpp"

TEST_CASE("stats count switches, wake-ups, polls and blocking waits") {
  asyncio::Loop& loop = test::fresh_loop();
  const asyncio::LoopStats before = loop.stats();
  CHECK(before.task_switches == 0);
  asyncio::run([] {
    auto other = asyncio::create_task([] {
      for (int i = 0; i < 10; ++i) asyncio::sleep_ms(0);
    });
    for (int i = 0; i < 10; ++i) asyncio::sleep_ms(0);
    asyncio::sleep_ms(20);  // nothing else to run: the loop blocks
    other.result();
  });
  const asyncio::LoopStats& stats = loop.stats();
  CHECK(stats.task_switches >= 20);
  CHECK(stats.task_wakeups >= 1);  // the 20 ms sleep's timer
  CHECK(stats.blocking_waits >= 1);
  CHECK(stats.time_blocked_us > 0);
  CHECK(stats.io_polls >= stats.task_switches / 2);
  CHECK(stats.empty_io_polls >= 1);
  CHECK(stats.empty_io_polls <= stats.io_polls);
  CHECK(stats.low_power_batches == 0);
}

TEST_CASE("stats: a flag set from another thread is a wake-up and a non-empty poll") {
  asyncio::Loop& loop = test::fresh_loop();
  asyncio::run([] {
    asyncio::ThreadSafeFlag flag;
    std::thread setter([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      flag.set();
    });
    flag.wait();
    setter.join();
  });
  const asyncio::LoopStats& stats = loop.stats();
  CHECK(stats.task_wakeups >= 1);
  CHECK(stats.blocking_waits >= 1);
  CHECK(stats.empty_io_polls < stats.io_polls);
}

TEST_CASE("stats: low-power mode batches I/O wake-ups to slot boundaries") {
  asyncio::Loop& loop = test::fresh_loop();
  asyncio::run([] {
    asyncio::power_mode(true);
    asyncio::ThreadSafeFlag flag;
    std::atomic<bool> done{false};
    std::thread setter([&] {
      while (!done.load()) {
        flag.set();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
    for (int i = 0; i < 10; ++i) flag.wait();
    done.store(true);
    setter.join();
  });
  CHECK(loop.stats().low_power_batches >= 1);
}

// ---- Crossing threads ----

TEST_CASE("call_soon_threadsafe: 8 threads x 10,000 calls each run exactly once") {
  test::fresh_loop();
  constexpr int kThreads = 8;
  constexpr int kCalls = 10'000;
  std::vector<int> runs(kThreads * kCalls, 0);  // loop thread only: a race would show in TSan
  int total = 0;
  bool wrong_thread = false;
  asyncio::run([&] {
    asyncio::Loop& loop = asyncio::get_event_loop();
    const std::thread::id loop_thread = std::this_thread::get_id();
    asyncio::ThreadSafeFlag all_ran;
    std::vector<std::thread> posters;
    for (int t = 0; t < kThreads; ++t) {
      posters.emplace_back([&, t] {
        for (int i = 0; i < kCalls; ++i) {
          asyncio::call_soon_threadsafe(loop, [&, index = t * kCalls + i] {
            if (std::this_thread::get_id() != loop_thread) wrong_thread = true;
            ++runs[static_cast<std::size_t>(index)];
            if (++total == kThreads * kCalls) all_ran.set();
          });
        }
      });
    }
    all_ran.wait();
    for (auto& poster : posters) poster.join();
    asyncio::sleep_ms(10);  // a call run twice would show up here
  });
  CHECK_FALSE(wrong_thread);
  CHECK(total == kThreads * kCalls);
  CHECK(std::count(runs.begin(), runs.end(), 1) == kThreads * kCalls);
}

TEST_CASE("call_soon_threadsafe: calls from one thread start in order, as tasks") {
  test::fresh_loop();
  test::Log log;
  asyncio::run([&] {
    asyncio::Loop& loop = asyncio::get_event_loop();
    asyncio::ThreadSafeFlag done;
    std::thread poster([&] {
      for (int i = 0; i < 5; ++i) {
        asyncio::call_soon_threadsafe(loop, [&, i] {
          asyncio::sleep_ms(1);  // a task: it may wait
          log.push_back(std::to_string(i));
          if (i == 4) done.set();
        });
      }
    });
    done.wait();
    poster.join();
  });
  CHECK(log == test::Log{"0", "1", "2", "3", "4"});
}

TEST_CASE("to_thread returns the value, runs off the loop thread, and the loop keeps running") {
  test::fresh_loop();
  asyncio::run([] {
    const std::thread::id loop_thread = std::this_thread::get_id();
    std::atomic<int> ticks{0};
    auto ticker = asyncio::create_task([&] {
      for (;;) {
        asyncio::sleep_ms(5);
        ++ticks;
      }
    });
    // The call returns once the loop has ticked: a call blocking the loop thread would wait
    // out its 10 s and leave `ticks` at 0.
    const auto where = asyncio::to_thread(
        [&](int seconds) {
          const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
          while (ticks.load() == 0 && std::chrono::steady_clock::now() < end) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
          return std::this_thread::get_id();
        },
        10);
    CHECK(where != loop_thread);
    CHECK(ticks.load() >= 1);
    ticker.cancel();
  });
}

TEST_CASE("to_thread rethrows the call's exception in the awaiting task") {
  test::fresh_loop();
  asyncio::run([] {
    CHECK_THROWS_WITH_AS(asyncio::to_thread([]() -> int { throw std::runtime_error("boom"); }),
                         "boom", std::runtime_error);
    asyncio::to_thread([] {});  // void works too
  });
}

TEST_CASE("to_thread: cancelling the awaiting task drops the result; the thread runs on") {
  test::fresh_loop();
  std::atomic<bool> released{false};
  std::atomic<bool> finished{false};
  asyncio::run([&] {
    auto waiter = asyncio::create_task([&] {
      return asyncio::to_thread([&] {
        // Held until the cancellation is checked: no timing, however slow the machine.
        while (!released.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        finished.store(true);
        return 7;
      });
    });
    asyncio::sleep_ms(10);
    waiter.cancel();
    CHECK_THROWS_AS(asyncio::await(waiter), asyncio::CancelledError);
    CHECK_FALSE(finished.load());
    released.store(true);
    while (!finished.load()) asyncio::sleep_ms(5);
    asyncio::sleep_ms(5);  // the late result must not wake anything
  });
  CHECK(finished.load());
}

TEST_CASE("run_in_executor: a bounded pool runs at most max_workers calls at once") {
  test::fresh_loop();
  asyncio::ThreadPoolExecutor pool(2);
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  asyncio::run([&] {
    asyncio::Loop& loop = asyncio::get_event_loop();
    std::vector<asyncio::Task<int>> tasks;
    for (int i = 0; i < 6; ++i) {
      tasks.push_back(asyncio::create_task([&, i] {
        return loop.run_in_executor(&pool, [&, i] {
          const int now = ++running;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          // Until a second call runs beside this one (a slow machine may start its thread
          // late), then long enough for a third to show up if the bound did not hold.
          const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
          while (most.load() < 2 && std::chrono::steady_clock::now() < end) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          --running;
          return i * i;
        });
      }));
    }
    for (int i = 0; i < 6; ++i) CHECK(asyncio::await(tasks[static_cast<std::size_t>(i)]) == i * i);
    CHECK(loop.run_in_executor(nullptr, [] { return 3; }) == 3);  // the default pool
  });
  CHECK(most.load() == 2);
  CHECK_THROWS_AS(asyncio::ThreadPoolExecutor(0), asyncio::ValueError);
  pool.shutdown();
  CHECK_THROWS_AS(pool.submit([] {}), asyncio::RuntimeError);
}

// ---- Task introspection ----

TEST_CASE("all_tasks and dump_tasks name what each task waits on") {
  test::fresh_loop();
  std::string dump;
  std::vector<asyncio::TaskInfo> tasks;
  asyncio::run([&] {
    asyncio::Event event;
    asyncio::Lock lock;
    asyncio::Queue<int> queue;
    asyncio::ThreadSafeFlag flag;
    test::Pipe pipe;
    lock.acquire();
    auto sleeper = asyncio::create_task({"sleeper", 0}, [] { asyncio::sleep_ms(60'000); });
    auto on_event = asyncio::create_task({"on_event", 0}, [&] { event.wait(); });
    auto on_lock = asyncio::create_task({"on_lock", 0}, [&] { lock.acquire(); });
    auto on_queue = asyncio::create_task({"on_queue", 0}, [&] { queue.get(); });
    auto on_fd = asyncio::create_task({"on_fd", 0}, [&] { asyncio::wait_readable(pipe.read_fd); });
    auto on_flag = asyncio::create_task({"on_flag", 0}, [&] { flag.wait(); });
    auto on_task = asyncio::create_task({"on_task", 0}, [&] { asyncio::await(sleeper); });
    asyncio::sleep_ms(5);
    tasks = asyncio::all_tasks();
    std::ostringstream out;
    asyncio::dump_tasks(out);
    dump = out.str();
    for (auto* task : {&sleeper, &on_event, &on_lock, &on_queue, &on_fd, &on_flag}) task->cancel();
    asyncio::sleep_ms(0);
    on_task.cancel();
    asyncio::sleep_ms(0);
    lock.release();
  });
  INFO(dump);
  auto find = [&](const std::string& name) {
    for (const auto& task : tasks) {
      if (task.name == name) return task;
    }
    FAIL("no task named " << name);
    return asyncio::TaskInfo{};
  };
  CHECK(find("main").state == "running");
  CHECK(find("sleeper").waits_on == "sleep");
  CHECK(find("sleeper").until > 0);
  CHECK(find("on_event").waits_on == "Event.wait");
  CHECK(find("on_lock").waits_on == "Lock.acquire");
  CHECK(find("on_queue").waits_on == "Queue.get");
  CHECK(find("on_fd").waits_on == "wait_io");
  CHECK(find("on_fd").detail.find(" read") != std::string::npos);
  CHECK(find("on_flag").waits_on == "ThreadSafeFlag.wait");
  CHECK(find("on_task").waits_on == "await");
  CHECK(find("on_task").detail == "task 'sleeper'");
  CHECK(find("on_event").waiting_us >= 4000);
  for (const char* expected : {"sleeper", "Event.wait", "Lock.acquire", "Queue.get", "wait_io",
                               "ThreadSafeFlag.wait", "task 'sleeper'"}) {
    CHECK_MESSAGE(dump.find(expected) != std::string::npos, expected);
  }
}

// ---- The stall detector and the task dump on a signal ----

namespace {
/// Collects the library's log lines while alive.
struct LogCapture {
  LogCapture() {
    asyncio::set_log_sink([this](asyncio::LogLevel, std::string_view line) {
      std::lock_guard lock(mutex);
      lines.emplace_back(line);
    });
  }
  ~LogCapture() { asyncio::set_log_sink(nullptr); }
  std::string find(const std::string& text) {
    std::lock_guard lock(mutex);
    for (const auto& line : lines) {
      if (line.find(text) != std::string::npos) return line;
    }
    return {};
  }
  std::mutex mutex;
  std::vector<std::string> lines;
};

/// Spins for `ms` of this thread's CPU time: on a loaded machine a wall-clock spin may spend
/// most of its time preempted, with too few samples taken to see it.
void busy_wait_ms(int ms) {
  auto cpu_ns = [] {
    timespec now{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
  };
  const std::int64_t until = cpu_ns() + std::int64_t{ms} * 1'000'000;
  while (cpu_ns() < until) {
  }
}
}  // namespace

TEST_CASE("stall detector: a task busy for 30 ms is reported with its name and duration") {
  asyncio::Loop& loop = test::fresh_loop();
  LogCapture log;
  loop.set_stall_threshold(std::chrono::milliseconds(10));
  asyncio::run([] {
    auto quick = asyncio::create_task({"quick", 0}, [] {
      for (int i = 0; i < 100; ++i) asyncio::sleep_ms(0);
    });
    auto hog = asyncio::create_task({"hog", 0}, [] { busy_wait_ms(30); });
    asyncio::await(hog);
    asyncio::await(quick);
  });
  loop.set_stall_threshold(0);
  const std::string line = log.find("'hog' ran for");
  REQUIRE_MESSAGE(!line.empty(), "no stall warning");
  CHECK(line.find("without suspending") != std::string::npos);
  // It ran 30 ms; the sampler sees it at most a quarter threshold after it started.
  const double ms = std::stod(line.substr(line.find("ran for ") + 8));
  CHECK(ms >= 20.0);
  CHECK(log.find("'quick'").empty());
}

TEST_CASE("stall detector on a port without one (virtual time): reported as the task suspends") {
  // The boards' way: the core times each task's turn and reports it when the task yields.
  LogCapture log;
  asyncio::testing::run([] {
    asyncio::get_event_loop().set_stall_threshold(std::chrono::milliseconds(10));
    auto quick = asyncio::create_task({"quick", 0}, [] {
      for (int i = 0; i < 100; ++i) asyncio::sleep_ms(0);
      asyncio::testing::advance(std::chrono::milliseconds(10));  // at the threshold: no stall
    });
    auto hog = asyncio::create_task({"hog", 0}, [] {
      asyncio::testing::advance(std::chrono::milliseconds(30));  // 30 ms without yielding
    });
    asyncio::await(hog);
    asyncio::await(quick);
  });
  const std::string line = log.find("'hog' ran for");
  REQUIRE_MESSAGE(!line.empty(), "no stall report");
  CHECK(line.find("'hog' ran for 30.0 ms without suspending (stall threshold 10.0 ms)") !=
        std::string::npos);
  CHECK(log.find("'quick'").empty());
}

TEST_CASE("stall detector: off by default, and a blocked loop is no stall") {
  asyncio::Loop& loop = test::fresh_loop();
  LogCapture log;
  asyncio::run([] {
    auto hog = asyncio::create_task({"hog", 0}, [] { busy_wait_ms(30); });
    asyncio::await(hog);
  });
  loop.set_stall_threshold(std::chrono::milliseconds(10));
  asyncio::run([] { asyncio::sleep_ms(50); });  // the loop sleeps: nobody is stalling it
  loop.set_stall_threshold(0);
  CHECK(log.find("without suspending").empty());
  CHECK_THROWS_AS(loop.set_stall_threshold(-1), asyncio::ValueError);
}

TEST_CASE("stall detector: ASYNCIO_STALL_MS turns it on for new loops") {
  LogCapture log;
  ::setenv("ASYNCIO_STALL_MS", "10", 1);
  asyncio::Loop& loop = test::fresh_loop();
  ::unsetenv("ASYNCIO_STALL_MS");
  asyncio::run([] {
    auto hog = asyncio::create_task({"env_hog", 0}, [] { busy_wait_ms(30); });
    asyncio::await(hog);
  });
  loop.set_stall_threshold(0);
  CHECK_FALSE(log.find("'env_hog' ran for").empty());
}

TEST_CASE("dump_tasks_on_signal: SIGUSR1 makes the loop dump its tasks to stderr") {
  test::fresh_loop();
  asyncio::dump_tasks_on_signal(SIGUSR1);
  // Capture stderr through a pipe while the loop handles the signal.
  test::Pipe pipe;
  const int saved_stderr = ::dup(STDERR_FILENO);
  ::dup2(pipe.write_fd, STDERR_FILENO);
  asyncio::run([] {
    asyncio::Event never;
    auto waiter = asyncio::create_task({"signal_waiter", 0}, [&] { never.wait(); });
    asyncio::sleep_ms(1);
    ::kill(::getpid(), SIGUSR1);
    asyncio::sleep_ms(20);  // the loop blocks; the request wakes it
    waiter.cancel();
  });
  ::dup2(saved_stderr, STDERR_FILENO);
  ::close(saved_stderr);
  asyncio::dump_tasks_on_signal(0);
  char buffer[4096] = {};
  const ssize_t got = ::read(pipe.read_fd, buffer, sizeof buffer - 1);
  const std::string text(buffer, got > 0 ? static_cast<std::size_t>(got) : 0);
  INFO(text);
  CHECK(text.find("signal_waiter") != std::string::npos);
  CHECK(text.find("Event.wait") != std::string::npos);
  CHECK_THROWS_AS(asyncio::dump_tasks_on_signal(SIGKILL), asyncio::ValueError);
}
