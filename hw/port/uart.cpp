#include "uart.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "asyncio/errors.hpp"

namespace {

// The receive ring: the interrupt handler is the only writer of `head`, the task side the only
// writer of `tail` (single producer, single consumer), so neither needs a lock. Indices run
// freely and wrap at 2^16; the capacity is a power of two below that.
constexpr std::size_t kCapacity = hw::Uart::kRxBufferSize;
static_assert((kCapacity & (kCapacity - 1)) == 0 && kCapacity <= 32768);

std::uint8_t ring[kCapacity];
std::atomic<std::uint16_t> head{0}, tail{0};
std::atomic<std::uint32_t> rx_overruns{0};
bool in_use = false;

std::size_t buffered() {
  return static_cast<std::uint16_t>(head.load(std::memory_order_acquire) -
                                    tail.load(std::memory_order_relaxed));
}

// Interrupt context: empty the hardware FIFO into the ring; what does not fit is counted and
// dropped (the FIFO must be emptied either way, or the interrupt would stay asserted).
void on_receive() {
  std::uint8_t chunk[16];
  while (std::size_t count = hal::uart_read(chunk, sizeof chunk)) {
    std::uint16_t h = head.load(std::memory_order_relaxed);
    const std::uint16_t t = tail.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < count; ++i) {
      if (static_cast<std::uint16_t>(h - t) == kCapacity) {
        rx_overruns.fetch_add(static_cast<std::uint32_t>(count - i), std::memory_order_relaxed);
        break;
      }
      ring[h % kCapacity] = chunk[i];
      ++h;
    }
    head.store(h, std::memory_order_release);
  }
}

}  // namespace

namespace hw {

Uart::Uart(const hal::UartConfig& config) {
  if (in_use) throw asyncio::RuntimeError("hw::Uart: the device UART is already open");
  head.store(0, std::memory_order_relaxed);
  tail.store(0, std::memory_order_relaxed);
  rx_overruns.store(0, std::memory_order_relaxed);
  if (!hal::uart_open(config, on_receive)) {
    throw asyncio::RuntimeError("hw::Uart: this board has no device UART");
  }
  in_use = open_ = true;
}

Uart::~Uart() { close(); }

void Uart::close() {
  if (!open_) return;
  hal::uart_close();
  open_ = false;
  in_use = false;
}

unsigned Uart::poll(unsigned events) {
  if (!open_) return events & (asyncio::POLL_RD | asyncio::POLL_WR);  // a closed read ends
  unsigned ready = 0;
  if ((events & asyncio::POLL_RD) && buffered() != 0) ready |= asyncio::POLL_RD;
  if ((events & asyncio::POLL_WR) && hal::uart_writable()) ready |= asyncio::POLL_WR;
  return ready;
}

std::ptrdiff_t Uart::read_some(std::span<std::byte> buffer) {
  if (!open_) return 0;
  const std::size_t count = std::min(buffer.size(), buffered());
  if (count == 0) return buffer.empty() ? 0 : kWouldBlock;
  std::uint16_t t = tail.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < count; ++i, ++t) buffer[i] = std::byte{ring[t % kCapacity]};
  tail.store(t, std::memory_order_release);  // the slots are free for the handler again
  return static_cast<std::ptrdiff_t>(count);
}

std::ptrdiff_t Uart::write_some(std::span<const std::byte> buffer) {
  if (!open_) throw asyncio::OSError(EBADF, "hw::Uart: write on a closed UART");
  if (buffer.empty()) return 0;
  const std::size_t count =
      hal::uart_write(reinterpret_cast<const std::uint8_t*>(buffer.data()), buffer.size());
  return count == 0 ? kWouldBlock : static_cast<std::ptrdiff_t>(count);
}

std::uint32_t Uart::overruns() const { return rx_overruns.load(std::memory_order_relaxed); }

}  // namespace hw
