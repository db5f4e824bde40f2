// echo_client: a load generator for an echo server, e.g. examples/echo_server.
//
// It opens N connections, sends R requests on each (one at a time per connection: a request
// goes out when the previous reply is complete), checks every echoed byte, and prints the
// request rate and the round-trip latency percentiles. The client core is echo_load.hpp, the
// same code bench/echo measures every server with; it runs io_uring (or plain epoll) on this
// thread, not asyncio, so it measures the server rather than itself.
//
//   echo_client --port 8888 [--host 127.0.0.1] [--connections 10] [--requests 1000]
//               [--size 64 | --min-size 1 --max-size 65536] [--duration S] [--think-us N]
//               [--seed N] [--engine auto|uring|epoll] [--json] [--spawn PATH_TO_ECHO_SERVER]
//
// --spawn starts that server itself (`PATH --host H --port 0 --json`), reads the port from its
// first line, runs the load, stops the server with SIGTERM and checks that it exited cleanly
// and echoed exactly the bytes the client checked: the loopback test of examples/meson.build.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

#include "demo_util.hpp"
#include "echo_load.hpp"

namespace {

constexpr const char* kUsage =
    "usage: echo_client --port N [--host 127.0.0.1] [--connections 10] [--requests 1000]\n"
    "                   [--size 64 | --min-size A --max-size B] [--duration SECONDS]\n"
    "                   [--think-us N] [--seed N] [--engine auto|uring|epoll] [--json]\n"
    "                   [--spawn PATH_TO_ECHO_SERVER]\n"
    "  --requests    requests per connection (ignored with --duration)\n"
    "  --duration    run for this long instead of a number of requests\n"
    "  --think-us    pause a random 0..N us between a reply and the next request\n"
    "  --engine      how the client does its I/O: io_uring, epoll, or auto (the default:\n"
    "                io_uring unless the kernel refuses it, then epoll)\n"
    "  --spawn       start this echo_server on a free port, load it, stop it with SIGTERM\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "echo_client: %s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

std::int64_t parse_integer(std::string_view flag, const std::string& text, std::int64_t low,
                           std::int64_t high) {
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || value < low || value > high) {
    usage_error(std::string(flag) + " needs a whole number in " + std::to_string(low) + ".." +
                std::to_string(high) + ", not '" + text + "'");
  }
  return value;
}

struct Flags {
  echo_load::Options load;
  bool json = false;
  bool port_given = false;
  std::string spawn;
};

Flags parse_flags(int argc, char** argv) {
  Flags flags;
  flags.load.connections = 10;
  flags.load.requests = 1000;
  bool size_given = false;
  bool range_given = false;
  double duration = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (flag == "--json") {
      flags.json = true;
      continue;
    }
    if (flag.substr(0, 2) != "--") usage_error("unexpected argument '" + std::string(flag) + "'");
    if (i + 1 >= argc) usage_error("unknown flag or missing value: " + std::string(flag));
    const std::string value = argv[++i];
    const auto max_size = static_cast<std::int64_t>(echo_load::kMaxRequestSize);
    if (flag == "--host") {
      flags.load.host = value;
    } else if (flag == "--port") {
      flags.load.port = static_cast<std::uint16_t>(parse_integer(flag, value, 1, 65535));
      flags.port_given = true;
    } else if (flag == "--connections") {
      flags.load.connections = static_cast<int>(parse_integer(flag, value, 1, 60000));
    } else if (flag == "--requests") {
      flags.load.requests = parse_integer(flag, value, 1, INT64_C(1) << 40);
    } else if (flag == "--size") {
      flags.load.min_size = flags.load.max_size =
          static_cast<std::size_t>(parse_integer(flag, value, 1, max_size));
      size_given = true;
    } else if (flag == "--min-size") {
      flags.load.min_size = static_cast<std::size_t>(parse_integer(flag, value, 1, max_size));
      range_given = true;
    } else if (flag == "--max-size") {
      flags.load.max_size = static_cast<std::size_t>(parse_integer(flag, value, 1, max_size));
      range_given = true;
    } else if (flag == "--duration") {
      char* end = nullptr;
      duration = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(duration > 0 && duration <= 86400)) {
        usage_error("--duration needs a number of seconds in (0, 86400]");
      }
    } else if (flag == "--think-us") {
      flags.load.think_us = parse_integer(flag, value, 0, 10'000'000);
    } else if (flag == "--seed") {
      flags.load.seed = static_cast<std::uint32_t>(parse_integer(flag, value, 1, UINT32_MAX));
    } else if (flag == "--engine") {
      if (value != "auto" && value != "uring" && value != "epoll") {
        usage_error("--engine needs auto, uring or epoll, not '" + value + "'");
      }
      flags.load.engine = value;
    } else if (flag == "--spawn") {
      flags.spawn = value;
    } else {
      usage_error("unknown flag " + std::string(flag));
    }
  }
  if (size_given && range_given) usage_error("give --size or --min-size/--max-size, not both");
  if (flags.load.min_size > flags.load.max_size) usage_error("--min-size is above --max-size");
  if (!flags.port_given && flags.spawn.empty()) usage_error("--port is required (or --spawn)");
  if (flags.port_given && !flags.spawn.empty()) usage_error("--spawn picks the port itself");
  if (duration > 0) {
    flags.load.requests = 0;
    flags.load.duration_s = duration;
  }
  return flags;
}

/// An echo_server started by --spawn: its stdout is read line by line.
class SpawnedServer {
 public:
  SpawnedServer(const std::string& path, const std::string& host) {
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
      dup2(pipe_fds[1], STDOUT_FILENO);
      close(pipe_fds[0]);
      close(pipe_fds[1]);
      execl(path.c_str(), path.c_str(), "--host", host.c_str(), "--port", "0", "--json",
            static_cast<char*>(nullptr));
      std::fprintf(stderr, "echo_client: cannot run %s: %s\n", path.c_str(), std::strerror(errno));
      _exit(127);
    }
    close(pipe_fds[1]);
    output_ = fdopen(pipe_fds[0], "r");
  }
  ~SpawnedServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (output_) fclose(output_);
  }
  SpawnedServer(const SpawnedServer&) = delete;
  SpawnedServer& operator=(const SpawnedServer&) = delete;

  /// The next line the server printed ("" at its end). It is copied to stderr for the log.
  std::string next_line() {
    char buffer[4096];
    if (!std::fgets(buffer, sizeof buffer, output_)) return "";
    std::fprintf(stderr, "server: %s", buffer);
    return buffer;
  }

  /// Sends SIGTERM, reads the rest of its output, returns its last line; throws unless it
  /// exits with status 0.
  std::string stop() {
    kill(pid_, SIGTERM);
    std::string last;
    for (std::string line = next_line(); !line.empty(); line = next_line()) last = line;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error("the server did not exit cleanly on SIGTERM (status " +
                               std::to_string(status) + ")");
    }
    return last;
  }

 private:
  pid_t pid_ = -1;
  std::FILE* output_ = nullptr;
};

/// The number after `"key":` in a JSON line, or -1.
std::int64_t json_number(const std::string& line, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  const auto at = line.find(needle);
  if (at == std::string::npos) return -1;
  return std::strtoll(line.c_str() + at + needle.size(), nullptr, 10);
}

void print_result(const Flags& flags, const echo_load::Result& result) {
  const double p50 = result.percentile_us(50);
  const double p99 = result.percentile_us(99);
  const double max = result.percentile_us(100);
  if (flags.json) {
    // Counts are printed whole: demo::JsonLine has no 64-bit integers.
    std::printf("{\"example\":\"echo_client\",\"connections\":%d,\"requests\":%" PRId64
                ",\"bytes\":%" PRId64 ",%s\n",
                flags.load.connections, result.requests, result.bytes,
                demo::JsonLine{}
                    .add("seconds", result.seconds)
                    .add("requests_per_sec", result.requests_per_sec())
                    .add("p50_us", p50)
                    .add("p99_us", p99)
                    .add("max_us", max)
                    .str()
                    .substr(1)
                    .c_str());
  } else {
    std::printf("%d connection(s), %" PRId64
                " requests of %zu..%zu bytes in %.3f s, "
                "%" PRId64 " bytes echoed and checked\n",
                flags.load.connections, result.requests, flags.load.min_size, flags.load.max_size,
                result.seconds, result.bytes);
    std::printf("%.0f requests/s, round trip p50 %.1f us, p99 %.1f us, max %.1f us\n",
                result.requests_per_sec(), p50, p99, max);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = parse_flags(argc, argv);
  try {
    if (flags.spawn.empty()) {
      print_result(flags, echo_load::run(flags.load));
      return 0;
    }
    SpawnedServer server(flags.spawn, flags.load.host);
    const std::string listening = server.next_line();
    const std::int64_t port = json_number(listening, "port");
    if (port <= 0 || port > 65535) {
      throw std::runtime_error("the server did not print its port (first line: '" + listening +
                               "')");
    }
    flags.load.port = static_cast<std::uint16_t>(port);
    const echo_load::Result result = echo_load::run(flags.load);
    print_result(flags, result);
    const std::string totals = server.stop();
    const std::int64_t echoed = json_number(totals, "bytes");
    if (echoed != result.bytes) {
      throw std::runtime_error("the server reports " + std::to_string(echoed) +
                               " bytes echoed, the client checked " + std::to_string(result.bytes));
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "echo_client: %s\n", error.what());
    return 1;
  }
  return 0;
}
