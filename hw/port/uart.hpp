// hw::Uart: the board's device UART (hal::uart_*, RP2: UART1 on GPIO4/5) as an asyncio device.
// It is a PollableDevice, so a task can wait on it directly (asyncio::wait_pollable) or, as
// MicroPython's asyncio.StreamReader(uart), through a Stream:
//
//   asyncio::Stream serial(std::make_unique<hw::Uart>());
//   serial.write("Hello uart\n");
//   serial.drain();
//   std::string line = serial.readline();
//
// Receiving: the UART's receive interrupt moves bytes from the 32-byte hardware FIFO into a
// kRxBufferSize ring, so bytes that arrive while no task reads (or while the loop light-sleeps)
// are kept; poll() looks at the ring. Sending: write_some() fills the hardware FIFO as far as it
// takes bytes, and poll(POLL_WR) reports room in it. Neither ever waits.
//
// One device UART per board, so one open hw::Uart at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "asyncio/stream.hpp"
#include "hal.hpp"

namespace hw {

class Uart final : public asyncio::PollableDevice {
 public:
  /// Received bytes kept while nobody reads: 22 ms of a busy line at 115200 baud, more than a
  /// low-power slice (20 ms) between two polls.
  static constexpr std::size_t kRxBufferSize = 256;

  /// Opens the device UART. Throws asyncio::RuntimeError if it is already open or the board has
  /// none.
  explicit Uart(const hal::UartConfig& config = {});
  ~Uart() override;
  Uart(const Uart&) = delete;
  Uart& operator=(const Uart&) = delete;

  unsigned poll(unsigned events) override;
  /// Bytes from the receive ring, or kWouldBlock if it is empty. A closed UART reads as ended.
  std::ptrdiff_t read_some(std::span<std::byte> buffer) override;
  /// Bytes queued in the transmit FIFO, or kWouldBlock if it is full. OSError(EBADF) if closed.
  std::ptrdiff_t write_some(std::span<const std::byte> buffer) override;
  void close() override;

  /// Received bytes dropped because the ring was full (since this UART was opened).
  std::uint32_t overruns() const;

 private:
  bool open_ = false;
};

}  // namespace hw
