// Helpers shared by the behavioural tests: a fresh loop per test case, event logs, pipes,
// busy-waiting and elapsed-time measurement.
//
// Meson runs each test executable with ASYNCIO_BACKEND set: "virtual" for the core's
// behaviour (suite core, on virtual time: asyncio/testing.hpp), "epoll" and "uring" for what
// needs the OS (suite linux). A loop created with default options reads that variable. On
// virtual time, test::Clock reads the virtual clock and spin_for() advances it, so the same
// measurements become exact.
#pragma once

#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <asyncio/linux.hpp>
#include <asyncio/testing.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

// Sanitizers slow threads and system calls down by an order of magnitude; stress loops use
// fewer rounds there so that the suite stays fast.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define ASYNCIO_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define ASYNCIO_TEST_SANITIZED 1
#endif
#endif
#ifndef ASYNCIO_TEST_SANITIZED
#define ASYNCIO_TEST_SANITIZED 0
#endif

#if defined(__SANITIZE_THREAD__)
#define ASYNCIO_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ASYNCIO_TEST_TSAN 1
#endif
#endif
#ifndef ASYNCIO_TEST_TSAN
#define ASYNCIO_TEST_TSAN 0
#endif

namespace test {

/// A sequence of named events, recorded in the order tasks ran; ordering tests compare it.
using Log = std::vector<std::string>;

/// Every test case starts from a new loop so that no task, mode or handler leaks between them.
inline asyncio::Loop& fresh_loop() {
  // The module-level modes too: a test that changed them must not change the next one.
  asyncio::roundrobin(true);
  asyncio::power_mode(false);
  // ASYNCIO_TEST_RECEIVE_POOL=1: io_uring receives into the loop's shared pool
  // (tests/meson.build runs the stream and network areas so as well).
  const char* pool = std::getenv("ASYNCIO_TEST_RECEIVE_POOL");
  asyncio::set_receive_pool(pool && std::string(pool) == "1");
  asyncio::Loop& loop = asyncio::new_event_loop();
  loop.set_exception_handler(nullptr);  // a handler of an earlier test may capture its locals
  return loop;
}

/// steady_clock, or the virtual clock while the thread's loop runs on virtual time.
struct Clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<Clock>;
  static constexpr bool is_steady = true;
  static time_point now() {
    if (asyncio::testing::active()) return time_point(asyncio::testing::now());
    return time_point(std::chrono::steady_clock::now().time_since_epoch());
  }
};

/// True when the thread's loop runs on virtual time (suite core).
inline bool on_virtual_time() { return asyncio::testing::active(); }

/// The virtual clock, for the exact assertions of suite core; a test case that calls it outside
/// virtual time fails with RuntimeError (it belongs in doctest suite "os" with bounds instead).
inline std::chrono::microseconds now() { return asyncio::testing::now(); }

inline double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

/// Voluntary context switches of the calling thread so far: its sleeps. Preemption on a loaded
/// machine does not count, so the difference over a stretch is a loop's wake-ups.
inline long thread_sleeps() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_nvcsw;
}

/// The port's clock counts whole microseconds (it truncates clock_gettime), so a deadline can
/// fall up to 1 µs before the same instant measured with steady_clock's nanoseconds. "A sleep
/// never ends early" is checked at that resolution: measured >= requested - kClockResolutionMs.
inline constexpr double kClockResolutionMs = 0.001;

/// Blocks the calling task (and so the whole loop) without yielding: a stand-in for
/// synchronous work, like the seed's time.sleep_ms(5).
inline void spin_for(std::chrono::microseconds duration) {
  if (on_virtual_time()) return asyncio::testing::advance(duration);
  const auto end = Clock::now() + duration;
  while (Clock::now() < end) {
  }
}

/// Log labels such as "P1" or "P1.2". Built by appending: GCC 12 at -O3 gives a false
/// -Wrestrict warning for "literal" + std::string (GCC bug 105651).
inline std::string label(const char* prefix, int first) {
  std::string text(prefix);
  text += std::to_string(first);
  return text;
}
inline std::string label(const char* prefix, int first, int second) {
  std::string text = label(prefix, first);
  text += '.';
  text += std::to_string(second);
  return text;
}

/// Index of `entry` in `log`, or -1.
inline long index_of(const Log& log, const std::string& entry) {
  for (std::size_t i = 0; i < log.size(); ++i) {
    if (log[i] == entry) return static_cast<long>(i);
  }
  return -1;
}

/// True if `error` holds an exception of type E.
template <class E>
bool holds(std::exception_ptr error) {
  if (!error) return false;
  try {
    std::rethrow_exception(error);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

/// A counter that helper threads block on until it reaches a value. Built on a mutex and a
/// condition variable rather than std::atomic::wait: libstdc++ 12's atomic wait lost
/// wake-ups here under CPU load (setter threads stayed in __atomic_wait_address_v after the
/// value had changed), which would pass for a lost ThreadSafeFlag wake-up.
class WaitableCounter {
 public:
  explicit WaitableCounter(long initial = 0) : value_(initial) {}
  long load() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return value_;
  }
  void store(long value) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      value_ = value;
    }
    changed_.notify_all();
  }
  long add(long delta) {
    long result;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      result = value_ += delta;
    }
    changed_.notify_all();
    return result;
  }
  /// Blocks until the value is at least `target`; returns the value seen.
  long wait_at_least(long target) const {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return value_ >= target; });
    return value_;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  long value_;
};

/// Descriptors open in this process right now: leak checks compare it before and after.
inline int open_descriptors() {
  int count = 0;
  DIR* directory = opendir("/proc/self/fd");
  REQUIRE(directory != nullptr);
  while (const dirent* entry = readdir(directory)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(directory);
  return count - 1;  // the directory's own descriptor
}

/// A non-blocking pipe that closes itself.
class Pipe {
 public:
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
      throw std::system_error(errno, std::generic_category(), "pipe2");
    }
    read_fd = fds[0];
    write_fd = fds[1];
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    close_read();
    close_write();
  }
  void write_byte() const {
    const char byte = 'x';
    // A full pipe would only mean the byte is already readable, which is all callers need.
    [[maybe_unused]] auto written = ::write(write_fd, &byte, 1);
  }
  /// Reads everything available; returns the number of bytes read.
  std::size_t drain() const {
    char buffer[256];
    std::size_t total = 0;
    for (;;) {
      auto n = ::read(read_fd, buffer, sizeof buffer);
      if (n <= 0) return total;
      total += static_cast<std::size_t>(n);
    }
  }
  void close_read() {
    if (read_fd >= 0) ::close(read_fd);
    read_fd = -1;
  }
  void close_write() {
    if (write_fd >= 0) ::close(write_fd);
    write_fd = -1;
  }

  int read_fd = -1;
  int write_fd = -1;
};

}  // namespace test

namespace doctest {
// Prints logs on failure as {"a", "b"} instead of doctest's "{?}".
template <>
struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& log) {
    std::ostringstream out;
    out << '{';
    for (std::size_t i = 0; i < log.size(); ++i) out << (i ? ", " : "") << '"' << log[i] << '"';
    out << '}';
    return String(out.str().c_str());
  }
};
// Prints durations in microseconds, the virtual clock's unit, instead of "{?}".
template <class Rep, class Period>
struct StringMaker<std::chrono::duration<Rep, Period>> {
  static String convert(std::chrono::duration<Rep, Period> time) {
    std::ostringstream out;
    out << std::chrono::duration<double, std::micro>(time).count() << " us";
    return String(out.str().c_str());
  }
};
template <>
struct StringMaker<std::vector<int>> {
  static String convert(const std::vector<int>& values) {
    std::ostringstream out;
    out << '{';
    for (std::size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
    out << '}';
    return String(out.str().c_str());
  }
};
}  // namespace doctest
