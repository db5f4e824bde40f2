// Stack overflow detection: a task that overflows its stack ends the program with a
// message naming the task, never silent corruption. Each case runs in a forked child whose
// stderr is captured; the parent checks that the child died and what it said. Last, what the
// switch keeps per task and what it does not (the floating-point environment).
#include <sys/mman.h>
#include <sys/wait.h>

#include <cfenv>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

struct ChildOutcome {
  bool exited_normally = false;
  int exit_code = 0;
  std::string stderr_text;
};

/// Runs `body` in a forked child with stderr redirected into a pipe; returns how it ended.
/// The fork happens on a new thread that has never had a loop, so the child does not share
/// an inherited loop's kernel objects with the parent.
template <class F>
ChildOutcome run_in_child(F body) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = -1;
  std::thread forker([&] {
    pid = ::fork();
    if (pid != 0) return;
    ::close(pipe_fds[0]);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    try {
      body();
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  });
  forker.join();
  REQUIRE(pid > 0);
  ::close(pipe_fds[1]);
  ChildOutcome outcome;
  char buffer[4096];
  for (;;) {
    const auto n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    outcome.stderr_text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  outcome.exited_normally = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return outcome;
}

// Deep enough to overflow any task stack; the volatile limit keeps the compiler from proving
// the recursion infinite or turning it into a loop.
volatile int recursion_limit = 1 << 30;

int recurse(int depth) {
  char frame[512];
  std::memset(frame, depth & 0xff, sizeof frame);
  char* volatile escape = frame;
  if (depth >= recursion_limit) return escape[0];
  return recurse(depth + 1) + escape[depth % sizeof frame];
}

// MADV_GUARD_INSTALL (Linux 6.13), which older C library headers lack.
constexpr int kGuardInstall = 102;

}  // namespace

TEST_CASE("a task overflowing its stack ends the program with a message naming the task") {
#if ASYNCIO_TEST_SANITIZED
  // AddressSanitizer and ThreadSanitizer install their own SIGSEGV handling and report the
  // overflow themselves; the port's message is only checked in plain builds.
  MESSAGE("skipped under a sanitizer");
#else
  const auto outcome = run_in_child([] {
    test::fresh_loop();
    asyncio::run([] {
      auto task = asyncio::create_task(asyncio::TaskOptions{"deep-recursion", 64 * 1024},
                                       [] { return recurse(0); });
      asyncio::await(task);
    });
  });
  INFO("child stderr: " << outcome.stderr_text);
  CHECK_FALSE(outcome.exited_normally);
  CHECK(outcome.exit_code != 3);  // ended by the overflow, not by an exception
  CHECK(outcome.stderr_text.find("overflow") != std::string::npos);
  CHECK(outcome.stderr_text.find("deep-recursion") != std::string::npos);
#endif
}

TEST_CASE("every stack has its guard page, however many tasks are alive") {
#if ASYNCIO_TEST_SANITIZED
  MESSAGE("skipped under a sanitizer");
#else
  // Without guard regions, guard pages split the stack mappings and the kernel's mapping
  // limit leaves later stacks without one; the guard-page message is then not to be had.
  void* probe = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(probe != MAP_FAILED);
  const bool guard_regions = ::madvise(probe, 4096, kGuardInstall) == 0;
  ::munmap(probe, 4096);
  if (!guard_regions) {
    MESSAGE("skipped: the kernel has no MADV_GUARD_INSTALL");
    return;
  }
  const auto outcome = run_in_child([] {
    test::fresh_loop();
    asyncio::run([] {
      // More live stacks than a quarter of the default vm.max_map_count's worth of guards.
      std::vector<asyncio::Task<void>> fillers;
      for (int i = 0; i < 40'000; ++i) {
        fillers.push_back(
            asyncio::create_task(asyncio::TaskOptions{"filler", 16 * 1024}, [] {}));
      }
      auto task = asyncio::create_task(asyncio::TaskOptions{"deep-after-many", 64 * 1024},
                                       [] { return recurse(0); });
      asyncio::await(task);
    });
  });
  INFO("child stderr: " << outcome.stderr_text);
  CHECK_FALSE(outcome.exited_normally);
  CHECK(outcome.stderr_text.find("guard page hit") != std::string::npos);
  CHECK(outcome.stderr_text.find("deep-after-many") != std::string::npos);
#endif
}

TEST_CASE("a task using most of its stack without overflowing runs normally") {
  // The detection must not fire early: 32 KiB of a 256 KiB stack is fine.
  test::fresh_loop();
  const int value = asyncio::run([] {
    auto task = asyncio::create_task(asyncio::TaskOptions{"moderate", 256 * 1024}, [] {
      const int saved = recursion_limit;
      recursion_limit = 64;  // 64 frames of ~512 bytes
      recurse(0);
      recursion_limit = saved;
      asyncio::sleep_ms(0);
      return 1;
    });
    return asyncio::await(task);
  });
  CHECK(value == 1);
}

TEST_CASE("the tasks of a loop share their thread's floating-point environment") {
  // docs/semantics.md#threads-signals-fork: the switch does not save the rounding mode.
#if defined(__x86_64__) && !defined(__CET__) && !defined(ASYNCIO_PER_TASK_FP_ENV)
  test::fresh_loop();
  const int seen = asyncio::run([] {
    auto reader = asyncio::create_task([] {
      asyncio::sleep_ms(0);
      return std::fegetround();
    });
    auto writer = asyncio::create_task([] {
      std::fesetround(FE_UPWARD);
      asyncio::sleep_ms(0);
      std::fesetround(FE_TONEAREST);
    });
    const int mode = asyncio::await(reader);
    asyncio::await(writer);
    return mode;
  });
  CHECK(std::fegetround() == FE_TONEAREST);
  CHECK(seen == FE_UPWARD);
#else
  MESSAGE("skipped: the switch keeps a floating-point environment per task here");
#endif
}
