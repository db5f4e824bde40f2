// Backend selection: Loop::Options::backend or
// ASYNCIO_BACKEND chooses "uring", "epoll" or "auto"; "auto" falls back to epoll when
// io_uring_setup fails with EPERM, ENOSYS or EINVAL (Docker's seccomp, io_uring_disabled).
//
// The fallback is tested for real: a forked child installs a seccomp filter that makes
// io_uring_setup fail with the chosen errno, then creates loops. The child reports through
// its exit code.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cstddef>
#include <cstdlib>
#include <functional>
#include <optional>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;

namespace {

#if defined(__x86_64__)
constexpr unsigned kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "add this architecture's AUDIT_ARCH_* value"
#endif

#if defined(ASYNCIO_TEST_IO_URING)
constexpr bool kIoUringBuilt = true;
#else
constexpr bool kIoUringBuilt = false;  // the library was built with -Dio_uring=disabled
#endif

/// True if this process may create an io_uring (the kernel allows it and no filter forbids it).
bool kernel_allows_io_uring() {
  io_uring_params params{};
  const long fd = ::syscall(__NR_io_uring_setup, 1, &params);
  if (fd < 0) return false;
  ::close(static_cast<int>(fd));
  return true;
}

/// True if a loop can run on io_uring here: built in, and allowed by the kernel.
bool io_uring_available() { return kIoUringBuilt && kernel_allows_io_uring(); }

/// Makes every later io_uring_setup call of this process fail with `error`.
bool forbid_io_uring_setup(int error) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K,
               SECCOMP_RET_ERRNO | (static_cast<unsigned>(error) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

/// Runs `body` in a forked child and returns its exit code (128 + signal if it was killed).
/// The fork happens on a new thread that has never had a loop, so the child starts without
/// an inherited loop whose kernel objects (ring, epoll set) it would share with the parent.
int exit_code_of_child(const std::function<int()>& body) {
  int result = -1;
  std::thread forker([&] {
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      int code = 90;
      try {
        code = body();
      } catch (...) {
        code = 91;
      }
      ::_exit(code);
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return;
    result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  });
  forker.join();
  return result;
}

enum ChildResult : int {
  kChildOk = 0,
  kFilterNotInstalled = 10,
  kFilterIneffective,
  kAutoDidNotFallBack,
  kSleepBroken,
  kPipeBroken,
  kForcedUringDidNotThrow,
  kForcedUringUnclearError,
  kEnvAutoDidNotFallBack,
  kEnvUringDidNotThrow,
};

const char* describe(int code) {
  switch (code) {
    case kChildOk:
      return "ok";
    case kFilterNotInstalled:
      return "the seccomp filter could not be installed";
    case kFilterIneffective:
      return "io_uring_setup did not fail with the injected errno";
    case kAutoDidNotFallBack:
      return "backend \"auto\" did not fall back to epoll";
    case kSleepBroken:
      return "sleep_ms(10) on the fallback loop was wrong";
    case kPipeBroken:
      return "wait_readable on the fallback loop was wrong";
    case kForcedUringDidNotThrow:
      return "backend \"uring\" did not throw without io_uring";
    case kForcedUringUnclearError:
      return "backend \"uring\" threw an unclear error";
    case kEnvAutoDidNotFallBack:
      return "ASYNCIO_BACKEND=auto did not fall back to epoll";
    case kEnvUringDidNotThrow:
      return "ASYNCIO_BACKEND=uring did not throw without io_uring";
    case 90:
      return "the child ended without a result";
    case 91:
      return "the child threw an unexpected exception";
    default:
      return "the child crashed or could not be started";
  }
}

/// The child's side of the fallback test, with io_uring_setup failing with `error`.
int check_fallback_in_child(int error) {
  if (!forbid_io_uring_setup(error)) return kFilterNotInstalled;
  io_uring_params params{};
  if (::syscall(__NR_io_uring_setup, 1, &params) != -1 || errno != error) return kFilterIneffective;

  auto& loop = asyncio::new_event_loop(asyncio::Loop::Options{"auto"});
  if (std::string(loop.backend_name()) != "epoll") return kAutoDidNotFallBack;
  const auto start = test::Clock::now();
  asyncio::run([] { asyncio::sleep_ms(10); });
  const double slept = test::ms_since(start);
  if (slept < 10.0 || slept > 5000.0) return kSleepBroken;
  test::Pipe pipe;
  const unsigned events = asyncio::run([&] {
    auto reader = asyncio::create_task([&] { return asyncio::wait_readable(pipe.read_fd); });
    asyncio::sleep_ms(1);
    pipe.write_byte();
    return asyncio::await(reader);
  });
  if (!(events & asyncio::POLL_RD)) return kPipeBroken;

  try {
    asyncio::new_event_loop(asyncio::Loop::Options{"uring"});
    return kForcedUringDidNotThrow;
  } catch (const asyncio::OSError& e) {
    if (e.error() != error) return kForcedUringUnclearError;
  } catch (const std::exception& e) {
    if (std::string(e.what()).find("uring") == std::string::npos) return kForcedUringUnclearError;
  }

  ::setenv("ASYNCIO_BACKEND", "auto", 1);
  if (std::string(asyncio::new_event_loop().backend_name()) != "epoll") {
    return kEnvAutoDidNotFallBack;
  }
  ::setenv("ASYNCIO_BACKEND", "uring", 1);
  try {
    asyncio::new_event_loop();
    return kEnvUringDidNotThrow;
  } catch (const std::exception&) {
  }
  return kChildOk;
}

/// Sets an environment variable for the scope, restoring the previous value.
class EnvironmentScope {
 public:
  EnvironmentScope(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) previous_ = old;
    ::setenv(name, value, 1);
  }
  ~EnvironmentScope() {
    if (previous_) {
      ::setenv(name_, previous_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> previous_;
};

/// A sleep, a pipe wake-up and a cross-thread flag wake-up on the thread's current loop.
void check_loop_works() {
  test::Pipe pipe;
  asyncio::ThreadSafeFlag flag;
  std::thread helper([&] {
    std::this_thread::sleep_for(10ms);
    flag.set();
    pipe.write_byte();
  });
  asyncio::run([&] {
    const auto start = test::Clock::now();
    asyncio::sleep_ms(5);
    CHECK(test::ms_since(start) >= 5.0 - test::kClockResolutionMs);
    flag.wait();
    CHECK((asyncio::wait_readable(pipe.read_fd) & asyncio::POLL_RD) != 0);
  });
  helper.join();
}

}  // namespace

TEST_CASE("ASYNCIO_BACKEND selects the backend of a loop created with default options") {
  const char* requested = std::getenv("ASYNCIO_BACKEND");
  auto& loop = test::fresh_loop();
  const std::string name = loop.backend_name();
  if (requested && std::string(requested) == "epoll") {
    CHECK(name == "epoll");
  } else if (requested && std::string(requested) == "uring") {
    CHECK(name == "uring");
  } else {
    CHECK((name == "epoll" || name == "uring"));
  }
}

TEST_CASE("Options::backend selects epoll") {
  auto& loop = asyncio::new_event_loop(asyncio::Loop::Options{"epoll"});
  CHECK(std::string(loop.backend_name()) == "epoll");
  check_loop_works();
}

TEST_CASE("without io_uring built in, asking for it fails clearly" * doctest::skip(kIoUringBuilt)) {
  CHECK_THROWS_WITH_AS(asyncio::new_event_loop(asyncio::Loop::Options{"uring"}),
                       doctest::Contains("not built"), asyncio::OSError);
  CHECK(std::string(asyncio::new_event_loop(asyncio::Loop::Options{"auto"}).backend_name()) ==
        "epoll");
}

TEST_CASE("Options::backend selects io_uring where the kernel allows it" *
          doctest::skip(!kIoUringBuilt)) {
  if (!io_uring_available()) {
    CHECK_THROWS(asyncio::new_event_loop(asyncio::Loop::Options{"uring"}));
    return;
  }
  auto& loop = asyncio::new_event_loop(asyncio::Loop::Options{"uring"});
  CHECK(std::string(loop.backend_name()) == "uring");
  check_loop_works();
}

TEST_CASE("auto prefers io_uring when it is available") {
  auto& loop = asyncio::new_event_loop(asyncio::Loop::Options{"auto"});
  CHECK(std::string(loop.backend_name()) == (io_uring_available() ? "uring" : "epoll"));
  check_loop_works();
}

TEST_CASE("Options::backend takes precedence over ASYNCIO_BACKEND") {
  EnvironmentScope environment("ASYNCIO_BACKEND", "epoll");
  CHECK(std::string(asyncio::new_event_loop().backend_name()) == "epoll");
  if (io_uring_available()) {
    CHECK(std::string(asyncio::new_event_loop(asyncio::Loop::Options{"uring"}).backend_name()) ==
          "uring");
  }
  CHECK(std::string(asyncio::new_event_loop(asyncio::Loop::Options{"epoll"}).backend_name()) ==
        "epoll");
}

TEST_CASE("an unknown backend name is an invalid argument") {
  CHECK_THROWS_AS(asyncio::new_event_loop(asyncio::Loop::Options{"kqueue"}), std::invalid_argument);
  {
    EnvironmentScope environment("ASYNCIO_BACKEND", "select");
    CHECK_THROWS_AS(asyncio::new_event_loop(), std::invalid_argument);
  }
  // A failed creation leaves the thread able to make a working loop.
  test::fresh_loop();
  CHECK(asyncio::run([] { return 1; }) == 1);
}

TEST_CASE("auto falls back to epoll when io_uring_setup fails with EPERM" *
          doctest::skip(!kIoUringBuilt)) {
  const int code = exit_code_of_child([] { return check_fallback_in_child(EPERM); });
  INFO(describe(code));
  CHECK(code == kChildOk);
}

TEST_CASE("auto falls back to epoll when io_uring_setup fails with ENOSYS" *
          doctest::skip(!kIoUringBuilt)) {
  const int code = exit_code_of_child([] { return check_fallback_in_child(ENOSYS); });
  INFO(describe(code));
  CHECK(code == kChildOk);
}

TEST_CASE("auto falls back to epoll when io_uring_setup fails with EINVAL" *
          doctest::skip(!kIoUringBuilt)) {
  const int code = exit_code_of_child([] { return check_fallback_in_child(EINVAL); });
  INFO(describe(code));
  CHECK(code == kChildOk);
}

TEST_CASE("the seccomp helper really forbids io_uring_setup") {
  // Guards the fallback tests above against passing because the filter did nothing.
  const int code = exit_code_of_child([] {
    if (!forbid_io_uring_setup(EPERM)) return 1;
    return kernel_allows_io_uring() ? 2 : 0;
  });
  CHECK(code == 0);
}
