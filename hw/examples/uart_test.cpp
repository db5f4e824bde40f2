// uart_test on hw: the seed's UART demo (MicroPython's asyncio tutorial, "StreamReader and
// StreamWriter"). A sender task writes "Hello uart\n" every 2 s; a receiver task reads lines
// with Stream::readline() and prints them. TX is looped back to RX: inside the UART (PL011 LBE)
// on silicon, by the runner in rp2040js (--uart1-loopback; rp2040js ignores LBE), which delivers
// each byte one character time (10 bits at the programmed baud rate) after it was written.
//
// The device UART is hw::Uart (UART1 on GPIO4/5; the console keeps UART0). Its receive
// interrupt fills a ring buffer, so bytes arriving while the loop light-sleeps are kept; the
// loop polls the UART every 1 ms when idle in normal mode and every 20 ms in low-power mode,
// which bounds how late a line is read. The run checks that every line arrived intact, in both
// modes, and reports the worst write-to-readline latency.
#include <asyncio/asyncio.hpp>
#include <asyncio/stream.hpp>
#include <memory>
#include <string>

#include "console.hpp"
#include "hal.hpp"
#include "uart.hpp"

namespace {

constexpr std::string_view kLine = "Hello uart\n";
constexpr int kPeriodMs = 2000;

struct Result {
  int lines = 0;
  int bad = 0;
  hal::Micros max_latency_us = 0;
  std::uint32_t overruns = 0;  // bytes the receive ring had no room for
};

hal::Micros last_sent = 0;

void sender(asyncio::Stream serial, int lines) {
  for (int i = 0; i < lines; ++i) {
    if (i > 0) asyncio::sleep_ms(kPeriodMs);
    last_sent = hal::now();
    serial.write(kLine);
    serial.drain();
  }
}

void receiver(asyncio::Stream serial, int lines, Result& result) {
  while (result.lines + result.bad < lines) {
    const std::string line = serial.readline();
    const hal::Micros latency = hal::now() - last_sent;
    if (latency > result.max_latency_us) result.max_latency_us = latency;
    hw::print("Received ");
    hw::print(line.substr(0, line.size() - (line.ends_with('\n') ? 1 : 0)));
    hw::print_line("");
    if (line == kLine) {
      ++result.lines;
    } else {
      ++result.bad;
    }
  }
}

Result exchange(int lines) {
  auto device = std::make_unique<hw::Uart>(hal::UartConfig{.loopback = true});
  const hw::Uart& uart = *device;  // the Stream owns it until close()
  asyncio::Stream serial(std::move(device));
  Result result;
  auto rx = asyncio::create_task([&] { receiver(serial, lines, result); });
  auto tx = asyncio::create_task([&] { sender(serial, lines); });
  asyncio::await(tx);
  try {
    asyncio::wait_for_ms(rx, kPeriodMs);  // the last line has long arrived by then
  } catch (const asyncio::TimeoutError&) {
    hw::print_line("receiver timed out: lines were lost");
  }
  result.overruns = uart.overruns();
  serial.close();
  return result;
}

bool run_mode(bool low_power, int lines) {
  asyncio::power_mode(low_power);
  const Result result = asyncio::run(exchange, lines);
  const bool ok = result.lines == lines && result.bad == 0 && result.overruns == 0;
  hw::JsonLine()
      .str("demo", "uart_test")
      .str("mode", low_power ? "low_power" : "normal")
      .integer("lines", result.lines)
      .integer("bad_lines", result.bad)
      .fixed("max_latency_ms", result.max_latency_us, 3)
      .integer("overruns", result.overruns)
      .boolean("ok", ok)
      .str("board", hal::board_name());
  return ok;
}

}  // namespace

int main() {
  // Normal mode spins between lines, which rp2040js emulates slower than real time: two lines
  // (2 s) keep the run short. Low-power mode sleeps, which costs no emulation time.
  bool ok = run_mode(false, 2);
  ok = run_mode(true, 5) && ok;
  hw::print_line(ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
