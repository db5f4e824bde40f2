// uart_test: the seed's UART demo (micropython-async v3 as_demos/auart.py) on Linux, where a
// pseudo-terminal pair stands in for a UART whose TX is wired to its RX:
//
//   async def sender():
//       swriter = asyncio.StreamWriter(uart, {})
//       while True:
//           swriter.write('Hello uart\n')
//           await swriter.drain()
//           await asyncio.sleep(2)
//
//   async def receiver():
//       sreader = asyncio.StreamReader(uart)
//       while True:
//           res = await sreader.readline()
//           print('Received', res)
//
// The sender writes on the terminal side of the pair (what a program sees as /dev/ttyXX), the
// receiver reads lines on the other side; both sides are asyncio Streams over the descriptors.
// Each line reports how long it took from write() to readline() returning. Both ends are in
// this process, as in the seed (TX wired to RX), so the loop is awake when a line is written
// and the receiver runs at the next task switch in either power mode; low-power mode
// (power_mode(true), docs/semantics.md#low-power) shows in the sender's period instead, served on the 20 ms grid.
//
//   uart_test [--low-power] [--count 5] [--period-ms 2000] [--backend auto|uring|epoll] [--json]
// With --json: {"demo":"uart_test","mode":"normal"|"low_power","line":N,"ms":X} per line, then
// a summary object.

#include <fcntl.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <asyncio/linux.hpp>
#include <asyncio/linux/net.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "demo_util.hpp"
#include "run_example.hpp"

namespace {

constexpr const char* kUsage =
    "usage: uart_test [--low-power] [--count 5] [--period-ms 2000] [--backend auto|uring|epoll] "
    "[--json]\n"
    "  --count      stop after this many lines\n"
    "  --period-ms  the sender's pause between lines (the seed's 2 s)\n";
constexpr std::string_view kMessage = "Hello uart\n";

struct Flags {
  bool low_power = false;
  bool json = false;
  int count = 5;
  int period_ms = 2000;
  std::string backend;  // empty: ASYNCIO_BACKEND, then auto
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "uart_test: %s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

int parse_count(std::string_view flag, const std::string& value, long low, long high) {
  char* end = nullptr;
  const long parsed = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || parsed < low || parsed > high) {
    usage_error(std::string(flag) + " needs a number in " + std::to_string(low) + ".." +
                std::to_string(high) + ", not '" + value + "'");
  }
  return static_cast<int>(parsed);
}

Flags parse_flags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (flag == "--low-power") {
      flags.low_power = true;
    } else if (flag == "--json") {
      flags.json = true;
    } else if (i + 1 >= argc) {
      usage_error("unknown flag or missing value: " + std::string(flag));
    } else if (flag == "--count") {
      flags.count = parse_count(flag, argv[++i], 1, 1'000'000);
    } else if (flag == "--period-ms") {
      flags.period_ms = parse_count(flag, argv[++i], 0, 3'600'000);
    } else if (flag == "--backend") {
      const std::string value = argv[++i];
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

/// A pseudo-terminal pair in raw mode: bytes pass unchanged in both directions (no echo, no
/// line editing, no "\n" to "\r\n"), as on a UART.
std::pair<int, int> open_pty_pair() {
  const int controller = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (controller < 0) throw asyncio::OSError(errno, "posix_openpt");
  if (grantpt(controller) != 0 || unlockpt(controller) != 0) {
    const int error = errno;
    close(controller);
    throw asyncio::OSError(error, "grantpt/unlockpt");
  }
  const char* name = ptsname(controller);
  const int terminal = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
  if (terminal < 0) {
    const int error = errno;
    close(controller);
    throw asyncio::OSError(error, "opening the pseudo-terminal");
  }
  termios mode{};
  if (tcgetattr(terminal, &mode) != 0 ||
      (cfmakeraw(&mode), tcsetattr(terminal, TCSANOW, &mode)) != 0) {
    const int error = errno;
    close(terminal);
    close(controller);
    throw asyncio::OSError(error, "setting raw mode on the pseudo-terminal");
  }
  return {controller, terminal};
}

const char* mode_name(const Flags& flags) {
  return flags.low_power ? "low_power" : "normal";
}

/// What the two tasks share: when each line was written, so the receiver can time it.
struct Wire {
  std::deque<std::int64_t> written_ns;
  std::vector<double> latency_ms;
};

void sender(asyncio::StreamWriter writer, Wire& wire, int period_ms) {
  for (;;) {
    wire.written_ns.push_back(demo::now_ns());
    writer.write(kMessage);
    writer.drain();
    asyncio::sleep_ms(period_ms);
  }
}

void receiver(asyncio::StreamReader reader, Wire& wire, const Flags& flags) {
  for (int line = 1; line <= flags.count; ++line) {
    const std::string text = reader.readline();
    const std::int64_t now = demo::now_ns();
    if (text != kMessage || wire.written_ns.empty()) {
      throw std::runtime_error("received '" + text + "', expected 'Hello uart\\n'");
    }
    const double ms = demo::ns_to_ms(now - wire.written_ns.front());
    wire.written_ns.pop_front();
    wire.latency_ms.push_back(ms);
    if (flags.json) {
      std::printf("%s\n", demo::JsonLine{}
                              .add("demo", "uart_test")
                              .add("mode", mode_name(flags))
                              .add("line", line)
                              .add("ms", ms)
                              .str()
                              .c_str());
    } else {
      std::printf("Received %s (line %d, %.3f ms after it was written)\n",
                  text.substr(0, text.size() - 1).c_str(), line, ms);
    }
    std::fflush(stdout);
  }
}

void uart_test(const Flags& flags) {
  if (flags.low_power) asyncio::power_mode(true);
  const auto [controller, terminal] = open_pty_pair();
  asyncio::Stream uart_tx = asyncio::open_fd(terminal);
  asyncio::Stream uart_rx = asyncio::open_fd(controller);
  if (!flags.json) {
    std::printf("uart_test (%s mode, %s backend): a line every %d ms, %d line(s)\n",
                mode_name(flags), asyncio::get_event_loop().backend_name(), flags.period_ms,
                flags.count);
  }
  Wire wire;
  auto send = asyncio::create_task(sender, uart_tx, std::ref(wire), flags.period_ms);
  auto receive = asyncio::create_task(receiver, uart_rx, std::ref(wire), std::cref(flags));
  asyncio::await(receive);
  send.cancel();
  asyncio::gather(asyncio::return_exceptions, send);
  uart_tx.close();
  uart_rx.close();

  const demo::Stats stats = demo::summarize(wire.latency_ms);
  if (flags.json) {
    std::printf("%s\n", demo::JsonLine{}
                            .add("demo", "uart_test")
                            .add("mode", mode_name(flags))
                            .add("summary", true)
                            .add("lines", flags.count)
                            .add("median_ms", stats.median)
                            .add("max_ms", stats.max)
                            .str()
                            .c_str());
  } else {
    std::printf("%d line(s): write to readline median %.3f ms, max %.3f ms\n", flags.count,
                stats.median, stats.max);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = parse_flags(argc, argv);
  return demo::run_example("uart_test", flags.backend, uart_test, flags);
}
