// The chip contract (hal.hpp) for the blocks the RP2040 and RP2350 share: TIMER (time, wake-up
// and user alarms), the PL011 console and device UARTs, GPIO through SIO and IO_BANK0, and the
// end of a run. Addresses come from the board's chip.hpp; see rp2.hpp.
//
// Register fields (identical on both chips): RP2040 datasheet 4.2.8 UART, 4.6.5 TIMER,
// 2.19.6 IO_BANK0 / PADS_BANK0; RP2350 datasheet 12.1, 12.8, 9.11.
#include "rp2.hpp"

#include <cstdint>

#include "hal.hpp"

namespace {

using cortex_m::reg;
using rp2::clear_bits;
using rp2::set_bits;
using rp2::u32;

// ---- PL011 ----
constexpr u32 kUartDr = 0x00, kUartFr = 0x18, kUartIbrd = 0x24, kUartFbrd = 0x28,
              kUartLcrH = 0x2c, kUartCr = 0x30, kUartImsc = 0x38;
constexpr u32 kUartFrBusy = 1u << 3, kUartFrRxEmpty = 1u << 4, kUartFrTxFull = 1u << 5;
constexpr u32 kUartCrEnable = 1u << 0, kUartCrLoopback = 1u << 7, kUartCrTx = 1u << 8,
              kUartCrRx = 1u << 9;
constexpr u32 kUartLcrH8BitsFifo = (3u << 5) | (1u << 4);  // WLEN 8, FEN
// Receive interrupt at the reset FIFO level (half full: 16 bytes, leaving 1.4 ms at 115200
// baud to drain it) and on the receive timeout (a quiet line for 32 bit times with bytes
// waiting), so a short line does not sit in the FIFO.
constexpr u32 kUartImscRx = 1u << 4, kUartImscRxTimeout = 1u << 6;

constexpr u32 kFuncselUart = 2, kFuncselSio = 5;
constexpr u32 kPadInputEnable = 1u << 6;

// ---- TIMER ----
constexpr u32 kTimerAlarm0 = chip::kTimer + 0x10, kTimerAlarm1 = chip::kTimer + 0x14,
              kTimerArmed = chip::kTimer + 0x20, kTimerRawH = chip::kTimer + 0x24,
              kTimerRawL = chip::kTimer + 0x28;
constexpr unsigned kTimerIrq0 = 0, kTimerIrq1 = 1;
constexpr u32 kWakeAlarm = 1u << 0, kUserAlarm = 1u << 1;

void (*volatile user_alarm_handler)() = nullptr;
void (*volatile device_uart_handler)() = nullptr;
void (*volatile gpio_handlers[chip::kGpioCount])(unsigned) = {};
volatile bool device_uart_open = false;
volatile unsigned gpio_irq_count = 0;  // pins with a handler

u32 gpio_ctrl(unsigned pin) { return chip::kIoBank0 + 8 * pin + 4; }
u32 pad(unsigned pin) { return chip::kPadsBank0 + 4 * pin + 4; }

void release_pad(unsigned pin, u32 extra) {
  set_bits(pad(pin), extra);
  clear_bits(pad(pin), chip::kPadIso);
}

// Baud divisor = clk_peri / (16 * baud) in 16.6 fixed point, rounded (RP2040 4.2.3.2.1).
// Writing LCR_H latches the divisors, so it comes after them.
void pl011_configure(u32 base, u32 baud, u32 extra_control) {
  const u32 divisor64 = (8 * chip::kClkPeriHz / baud + 1) / 2;
  reg(base + kUartIbrd) = divisor64 >> 6;
  reg(base + kUartFbrd) = divisor64 & 63;
  reg(base + kUartLcrH) = kUartLcrH8BitsFifo;
  reg(base + kUartCr) = kUartCrEnable | kUartCrTx | kUartCrRx | extra_control;
}

std::size_t pl011_read(u32 base, std::uint8_t* data, std::size_t size) {
  std::size_t count = 0;
  while (count < size && !(reg(base + kUartFr) & kUartFrRxEmpty)) {
    data[count++] = static_cast<std::uint8_t>(reg(base + kUartDr));  // bits 8-11: error flags
  }
  return count;
}

std::size_t pl011_write(u32 base, const std::uint8_t* data, std::size_t size) {
  std::size_t count = 0;
  while (count < size && !(reg(base + kUartFr) & kUartFrTxFull)) reg(base + kUartDr) = data[count++];
  return count;
}

void route_uart_pins(unsigned tx, unsigned rx) {
  reg(gpio_ctrl(tx)) = kFuncselUart;
  reg(gpio_ctrl(rx)) = kFuncselUart;
  release_pad(tx, 0);
  release_pad(rx, kPadInputEnable);
}

// Interrupt registers of IO_BANK0: 4 bits per pin (level low, level high, edge low, edge high).
u32 irq_word(unsigned pin) { return 4 * (pin / 8); }
u32 irq_shift(unsigned pin) { return 4 * (pin % 8); }
constexpr u32 kEdgeLow = 1u << 2, kEdgeHigh = 1u << 3;
constexpr u32 kEdgeBitsAllPins = 0xcccccccc;

u32 edge_bits(hal::Edge edge) {
  const auto bits = static_cast<unsigned>(edge);
  return (bits & static_cast<unsigned>(hal::Edge::kFalling) ? kEdgeLow : 0) |
         (bits & static_cast<unsigned>(hal::Edge::kRising) ? kEdgeHigh : 0);
}

void call_gpio_handlers(unsigned first_pin, u32 status) {
  for (unsigned i = 0; status != 0; ++i, status >>= 4) {
    if (!(status & 0xf)) continue;
    if (auto handler = gpio_handlers[first_pin + i]) handler(first_pin + i);
  }
}

}  // namespace

extern "C" void isr_irq0() { reg(chip::kTimerIntr) = kWakeAlarm; }  // write 1 to clear

extern "C" void isr_irq1() {
  reg(chip::kTimerIntr) = kUserAlarm;
  if (auto handler = user_alarm_handler) handler();
}

namespace rp2 {

void unreset(u32 mask) {
  clear_bits(chip::kResets + 0x0, mask);
  while ((reg(chip::kResets + 0x8) & mask) != mask) {  // RESET_DONE
  }
}

void init_console_and_timer() {
  unreset(chip::kResetIoBank0 | chip::kResetPadsBank0 | chip::kResetUart0 | chip::kResetTimer);
  pl011_configure(chip::kUart0, 115'200, 0);
  route_uart_pins(0, 1);
  reg(chip::kTimerInte) = kWakeAlarm | kUserAlarm;
  cortex_m::enable_irq(kTimerIrq0);
  cortex_m::enable_irq(kTimerIrq1);
}

void console_flush() {
  while (reg(chip::kUart0 + kUartFr) & kUartFrBusy) {
  }
}

bool device_uart_active() { return device_uart_open; }
bool gpio_irq_active() { return gpio_irq_count != 0; }

void (*volatile device_uart_irq)() = nullptr;
void (*volatile io_bank0_irq)() = nullptr;

}  // namespace rp2

namespace {

void on_device_uart_irq() {
  if (auto handler = device_uart_handler) {
    handler();
    return;
  }
  std::uint8_t discard[8];  // nobody listens: drain, or the interrupt would stay asserted
  while (pl011_read(chip::kUart1, discard, sizeof discard) != 0) {
  }
}

// Edges are acknowledged (write 1 to clear) before the handlers run, so an edge that comes
// while they run raises the interrupt again instead of being lost.
void on_io_bank0_irq() {
  for (unsigned first_pin = 0; first_pin < chip::kGpioCount; first_pin += 8) {
    const u32 status = reg(chip::kIoProc0Ints0 + first_pin / 2);
    if (status == 0) continue;
    reg(chip::kIoIntr0 + first_pin / 2) = status & kEdgeBitsAllPins;
    call_gpio_handlers(first_pin, status);
  }
}

}  // namespace

namespace hal {

Micros now() {
  // The raw registers have no latch side effect (unlike TIMEHR/TIMELR), so an interrupt handler
  // can read the clock too; re-read the high word to catch a carry between the two reads.
  u32 high, low;
  do {
    high = reg(kTimerRawH);
    low = reg(kTimerRawL);
  } while (high != reg(kTimerRawH));
  return static_cast<Micros>((std::uint64_t{high} << 32) | low);
}

Micros wake_resolution() { return 1; }

bool schedule_wake(Micros at) {
  // The alarm compares the low 32 bits only: a target more than 71 minutes away fires early,
  // which is a harmless spurious wake-up. Writing ALARM0 arms it.
  if (at <= now()) return false;
  reg(kTimerAlarm0) = static_cast<u32>(at);
  if (at <= now()) {  // passed while we armed it: it might never match again
    cancel_wake();
    return false;
  }
  return true;
}

void cancel_wake() {
  reg(kTimerArmed) = kWakeAlarm;  // write 1 to disarm
  reg(chip::kTimerIntr) = kWakeAlarm;
}

void set_user_alarm(Micros at, void (*handler)()) {
  user_alarm_handler = handler;
  if (!handler) {
    reg(kTimerArmed) = kUserAlarm;
    return;
  }
  reg(kTimerAlarm1) = static_cast<u32>(at);
}

void console_write(const char* data, std::size_t size) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(data);
  while (size > 0) {
    const std::size_t written = pl011_write(chip::kUart0, bytes, size);
    bytes += written;
    size -= written;
  }
}

bool console_readable() { return !(reg(chip::kUart0 + kUartFr) & kUartFrRxEmpty); }

std::size_t console_read(char* data, std::size_t size) {
  return pl011_read(chip::kUart0, reinterpret_cast<std::uint8_t*>(data), size);
}

void gpio_set_output(unsigned pin) {
  rp2::unreset(chip::kResetIoBank0 | chip::kResetPadsBank0);
  reg(chip::kSioGpioOutClr) = 1u << pin;
  reg(chip::kSioGpioOeSet) = 1u << pin;
  reg(gpio_ctrl(pin)) = kFuncselSio;
  release_pad(pin, 0);
}

void gpio_put(unsigned pin, bool value) {
  reg(value ? chip::kSioGpioOutSet : chip::kSioGpioOutClr) = 1u << pin;
}

void gpio_set_input(unsigned pin) {
  rp2::unreset(chip::kResetIoBank0 | chip::kResetPadsBank0);
  reg(chip::kSioGpioOeClr) = 1u << pin;
  reg(gpio_ctrl(pin)) = kFuncselSio;
  release_pad(pin, kPadInputEnable);
}

bool gpio_get(unsigned pin) { return reg(chip::kSioGpioIn) & (1u << pin); }

void gpio_set_irq(unsigned pin, Edge edge, void (*handler)(unsigned pin)) {
  if (pin >= chip::kGpioCount) return;
  const u32 enable = chip::kIoProc0Inte0 + irq_word(pin);
  const cortex_m::InterruptGuard guard;  // the handler table and the count change together
  clear_bits(enable, 0xfu << irq_shift(pin));
  reg(chip::kIoIntr0 + irq_word(pin)) = (kEdgeLow | kEdgeHigh) << irq_shift(pin);  // stale edges
  const bool had = gpio_handlers[pin] != nullptr;
  gpio_handlers[pin] = handler;
  gpio_irq_count = gpio_irq_count - (had ? 1 : 0) + (handler ? 1 : 0);
  if (!handler) return;
  set_bits(enable, edge_bits(edge) << irq_shift(pin));
  rp2::io_bank0_irq = on_io_bank0_irq;
  cortex_m::enable_irq(chip::kIoBank0Irq);
}

bool uart_open(const UartConfig& config, void (*on_receive)()) {
  uart_close();
  rp2::unreset(chip::kResetIoBank0 | chip::kResetPadsBank0 | chip::kResetUart1);
  pl011_configure(chip::kUart1, config.baud, config.loopback ? kUartCrLoopback : 0);
  route_uart_pins(4, 5);
  device_uart_handler = on_receive;
  device_uart_open = true;
  rp2::device_uart_irq = on_device_uart_irq;
  reg(chip::kUart1 + kUartImsc) = kUartImscRx | kUartImscRxTimeout;
  cortex_m::enable_irq(chip::kUart1Irq);
  return true;
}

void uart_close() {
  cortex_m::disable_irq(chip::kUart1Irq);
  device_uart_open = false;
  device_uart_handler = nullptr;
  set_bits(chip::kResets, chip::kResetUart1);  // back to its reset state: off, pins untouched
}

std::size_t uart_read(std::uint8_t* data, std::size_t size) {
  return pl011_read(chip::kUart1, data, size);
}

std::size_t uart_write(const std::uint8_t* data, std::size_t size) {
  return pl011_write(chip::kUart1, data, size);
}

bool uart_writable() { return !(reg(chip::kUart1 + kUartFr) & kUartFrTxFull); }

void exit(int code) {
  rp2::console_flush();
#if HW_EMULATOR_EXIT
  // rp2040js calls onBreak(imm8): the runner turns it into its exit status. On silicon without
  // a debugger BKPT would lock the core up, so flashable builds park instead.
  if (code == 0) asm volatile("bkpt #0");
  asm volatile("bkpt #1");
#endif
  (void)code;
  cortex_m::mask_interrupts();
  for (;;) cortex_m::wait_for_interrupt();
}

}  // namespace hal
