// echo_server: a TCP echo server on asyncio streams, MicroPython's
//
//   async def echo(reader, writer):
//       while data := await reader.read(16384):
//           writer.write(data)
//           await writer.drain()
//   server = await asyncio.start_server(echo, host, port)
//
// in C++. Each connection is a task that reads into its buffer and writes the bytes back with
// write(buf, {.copy = false}) + drain(): no copy, no allocation per request. SIGINT or SIGTERM
// sets a ThreadSafeFlag (set() is async-signal-safe); the main task then stops the server,
// closes the connections still open and prints the totals.
//
//   echo_server [--host 127.0.0.1] [--port 8888] [--backlog 1024] [--backend auto|uring|epoll]
//               [--json]
// --port 0 picks a free port; the first line printed names it (with --json:
// {"example":"echo_server","event":"listening","host":...,"port":N,"backend":...}).
// Load it with tools/loadgen/echo_client.

#include <signal.h>

#include <asyncio/linux.hpp>
#include <asyncio/linux/net.hpp>
#include <atomic>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "demo_util.hpp"
#include "run_example.hpp"

namespace {

constexpr const char* kUsage =
    "usage: echo_server [--host 127.0.0.1] [--port 8888] [--backlog 1024]\n"
    "                   [--backend auto|uring|epoll] [--json]\n"
    "  --port 0 picks a free port (printed on the first line). SIGINT/SIGTERM stop the server.\n"
    "  The backend may also come from ASYNCIO_BACKEND.\n";

// Bytes a connection reads at most at once: MicroPython's echo examples read in chunks too.
constexpr std::size_t kBufferSize = 16 * 1024;

struct Flags {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8888;
  // Above start_server's 128: echo_client opens its connections all at once, and Linux answers
  // a connect that finds the accept queue full with a SYN cookie whose connection is then
  // reset (seen with 1,000 connections on a slow, sanitized build).
  int backlog = 1024;
  std::string backend;  // empty: ASYNCIO_BACKEND, then auto
  bool json = false;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "echo_server: %s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

Flags parse_flags(int argc, char** argv) {
  Flags flags;
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
    if (i + 1 >= argc) usage_error("unknown flag or missing value: " + std::string(flag));
    const std::string value = argv[++i];
    if (flag == "--host") {
      flags.host = value;
    } else if (flag == "--port") {
      char* end = nullptr;
      const long port = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || port < 0 || port > 65535) {
        usage_error("--port needs a number in 0..65535, not '" + value + "'");
      }
      flags.port = static_cast<std::uint16_t>(port);
    } else if (flag == "--backlog") {
      char* end = nullptr;
      const long backlog = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || backlog < 1 || backlog > 65535) {
        usage_error("--backlog needs a number in 1..65535, not '" + value + "'");
      }
      flags.backlog = static_cast<int>(backlog);
    } else if (flag == "--backend") {
      if (!demo::is_backend_name(value)) {
        usage_error("--backend must be auto, uring or epoll, not '" + value + "'");
      }
      flags.backend = value;
    } else {
      usage_error("unknown flag " + std::string(flag));
    }
  }
  return flags;
}

// ---- Stopping on a signal ----

std::atomic<asyncio::ThreadSafeFlag*> stop_flag{nullptr};
static_assert(std::atomic<asyncio::ThreadSafeFlag*>::is_always_lock_free);

extern "C" void on_stop_signal(int) {
  if (asyncio::ThreadSafeFlag* flag = stop_flag.load()) flag->set();
}

void install_stop_handler(asyncio::ThreadSafeFlag& flag) {
  stop_flag.store(&flag);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// ---- The server ----

struct Totals {
  std::uint64_t connections = 0;
  std::uint64_t bytes = 0;   // echoed
  std::uint64_t errors = 0;  // connections ended by an OS error (a reset, say)
};

class EchoServer {
 public:
  explicit EchoServer(bool json) : json_(json) {}

  /// One connection: read whatever has arrived, write it back, until the peer ends it.
  void serve(asyncio::Stream stream) {
    ++totals_.connections;
    const auto live = open_.insert(open_.end(), stream);
    auto buffer = std::make_unique<std::byte[]>(kBufferSize);
    try {
      for (;;) {
        const std::size_t n = stream.readinto(std::span<std::byte>(buffer.get(), kBufferSize));
        if (n == 0) break;  // the client closed its side
        stream.write(std::span<const std::byte>(buffer.get(), n), {.copy = false});
        stream.drain();
        totals_.bytes += n;
      }
    } catch (const asyncio::OSError& error) {
      // A reset by the peer, or stop() closing the stream under us: this connection ends,
      // the server goes on.
      if (!stopping_) {
        ++totals_.errors;
        if (!json_) std::fprintf(stderr, "echo_server: connection ended: %s\n", error.what());
      }
    }
    open_.erase(live);
    stream.close();
    if (stopping_ && open_.empty()) all_closed_.set();
  }

  /// Closes the connections still open; returns once their tasks have ended.
  void close_connections() {
    stopping_ = true;
    if (open_.empty()) return;
    for (auto& stream : open_) stream.close();
    all_closed_.wait();
  }

  const Totals& totals() const { return totals_; }

 private:
  bool json_;
  bool stopping_ = false;
  Totals totals_;
  std::list<asyncio::Stream> open_;
  asyncio::Event all_closed_;
};

void run_server(const Flags& flags) {
  asyncio::ThreadSafeFlag stop;
  install_stop_handler(stop);
  EchoServer echo(flags.json);
  asyncio::Server server = asyncio::start_server(
      [&echo](asyncio::Stream reader, asyncio::Stream) { echo.serve(reader); }, flags.host,
      flags.port, flags.backlog);
  const char* backend = asyncio::get_event_loop().backend_name();
  if (flags.json) {
    std::printf("%s\n", demo::JsonLine{}
                            .add("example", "echo_server")
                            .add("event", "listening")
                            .add("host", flags.host)
                            .add("port", static_cast<int>(server.port()))
                            .add("backend", backend)
                            .str()
                            .c_str());
  } else {
    std::printf("echo_server listening on %s port %u (%s backend); Ctrl-C stops it\n",
                flags.host.c_str(), static_cast<unsigned>(server.port()), backend);
  }
  std::fflush(stdout);

  stop.wait();
  // A second Ctrl-C kills the process if stopping hangs.
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  server.close();
  server.wait_closed();
  echo.close_connections();
  stop_flag.store(nullptr);

  const Totals& totals = echo.totals();
  if (flags.json) {
    std::printf("{\"example\":\"echo_server\",\"event\":\"stopped\",\"connections\":%" PRIu64
                ",\"bytes\":%" PRIu64 ",\"errors\":%" PRIu64 "}\n",
                totals.connections, totals.bytes, totals.errors);
  } else {
    std::printf("stopped: %" PRIu64 " connection(s), %" PRIu64 " bytes echoed, %" PRIu64
                " ended by an error\n",
                totals.connections, totals.bytes, totals.errors);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = parse_flags(argc, argv);
  return demo::run_example("echo_server", flags.backend, run_server, flags);
}
