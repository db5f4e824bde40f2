// RP2350 board file (Arm Cortex-M33 side): the chip contract (hal.hpp) at register level.
// Built and size-checked in CI; not run (no RP2350 emulator here). Its instruction set runs in
// QEMU as the an505 board.
//
//   clocks   XOSC 12 MHz -> clk_ref; PLL_SYS 12 MHz x 125 / 5 / 2 = 150 MHz -> clk_sys -> clk_peri
//   time     TIMER0: 64-bit µs counter ticked by the TICKS block (clk_ref / 12)
//   wake     TIMER0 ALARM0 -> TIMER0_IRQ_0;  user: ALARM1 -> TIMER0_IRQ_1
//   console  UART0 on GPIO0 (TX) / GPIO1 (RX), 115200 8N1
//   idle     WFI with SLEEPDEEP. Unlike the RP2040 file this does not yet gate clocks through
//            SLEEP_EN0/1 (RP2350 bits: CLK_REF_TICKS 17, CLK_SYS_TIMER0 19 must stay on) nor
//            stop the PLL: to be added and measured on a board.
//
// Differences from the RP2040 (RP2350 datasheet 2.2, 7.5 resets, 8.1 clocks, 8.5 ticks,
// 12.8 timers): other base addresses and reset bits, INTR/INTE at 0x3c/0x40, the timer tick
// from TICKS, and pads isolated (ISO, bit 8) until software releases them.
#include <cstdint>

#include "cortex_m.hpp"
#include "hal.hpp"

extern "C" const char hw_vector_table[];

namespace {

using cortex_m::reg;
using u32 = std::uint32_t;

void set_bits(u32 address, u32 mask) { reg(address + 0x2000) = mask; }
void clear_bits(u32 address, u32 mask) { reg(address + 0x3000) = mask; }

constexpr u32 kResets = 0x40020000;
constexpr u32 kResetsReset = kResets + 0x0, kResetsDone = kResets + 0x8;
constexpr u32 kResetIoBank0 = 1u << 6, kResetPadsBank0 = 1u << 9, kResetPllSys = 1u << 14,
              kResetTimer0 = 1u << 23, kResetUart0 = 1u << 26;

constexpr u32 kClocks = 0x40010000;
constexpr u32 kClkRefCtrl = kClocks + 0x30, kClkRefSelected = kClocks + 0x38;
constexpr u32 kClkSysCtrl = kClocks + 0x3c, kClkSysSelected = kClocks + 0x44;
constexpr u32 kClkPeriCtrl = kClocks + 0x48;

constexpr u32 kXosc = 0x40048000;
constexpr u32 kXoscCtrl = kXosc + 0x0, kXoscStatus = kXosc + 0x4, kXoscStartup = kXosc + 0xc;
constexpr u32 kPllSys = 0x40050000;  // same register layout as the RP2040's PLL
constexpr u32 kPllCs = kPllSys + 0x0, kPllPwr = kPllSys + 0x4, kPllFbdiv = kPllSys + 0x8,
              kPllPrim = kPllSys + 0xc;

constexpr u32 kIoBank0 = 0x40028000, kPadsBank0 = 0x40038000;
constexpr u32 kPadIso = 1u << 8, kPadInputEnable = 1u << 6;
constexpr u32 kSio = 0xd0000000;
constexpr u32 kSioGpioOutSet = kSio + 0x18, kSioGpioOutClr = kSio + 0x20,
              kSioGpioOeSet = kSio + 0x38;
constexpr u32 kFuncselUart = 2, kFuncselSio = 5;

constexpr u32 kUart0 = 0x40070000;  // PL011, as on the RP2040
constexpr u32 kUartDr = kUart0 + 0x00, kUartFr = kUart0 + 0x18, kUartIbrd = kUart0 + 0x24,
              kUartFbrd = kUart0 + 0x28, kUartLcrH = kUart0 + 0x2c, kUartCr = kUart0 + 0x30;
constexpr u32 kUartFrBusy = 1u << 3, kUartFrRxEmpty = 1u << 4, kUartFrTxFull = 1u << 5;

constexpr u32 kTimer = 0x400b0000;  // TIMER0
constexpr u32 kTimerAlarm0 = kTimer + 0x10, kTimerAlarm1 = kTimer + 0x14,
              kTimerArmed = kTimer + 0x20, kTimerRawH = kTimer + 0x24,
              kTimerRawL = kTimer + 0x28, kTimerIntr = kTimer + 0x3c, kTimerInte = kTimer + 0x40;
constexpr unsigned kTimerIrq0 = 0, kTimerIrq1 = 1;
constexpr u32 kWakeAlarm = 1u << 0, kUserAlarm = 1u << 1;
constexpr u32 kTicksTimer0Ctrl = 0x40108000 + 0x18, kTicksTimer0Cycles = 0x40108000 + 0x1c;

constexpr u32 kXoscHz = 12'000'000, kSysHz = 150'000'000, kBaud = 115'200;
constexpr u32 kBaudDivisor64 = (8 * kSysHz / kBaud + 1) / 2;  // IBRD 81, FBRD 24

void (*volatile user_alarm_handler)() = nullptr;

void unreset(u32 mask) {
  clear_bits(kResetsReset, mask);
  while ((reg(kResetsDone) & mask) != mask) {
  }
}

void clocks_init() {
  reg(kXoscStartup) = (kXoscHz / 1000 + 255) / 256;
  reg(kXoscCtrl) = (0xfabu << 12) | 0xaa0;  // ENABLE | FREQ_RANGE 1_15MHZ
  while (!(reg(kXoscStatus) & (1u << 31))) {
  }
  clear_bits(kClkSysCtrl, 1);  // clk_sys from clk_ref while the PLL is reconfigured
  while (!(reg(kClkSysSelected) & 1)) {
  }
  reg(kClkRefCtrl) = 2;  // clk_ref from the XOSC
  while (!(reg(kClkRefSelected) & (1u << 2))) {
  }
  set_bits(kResetsReset, kResetPllSys);
  unreset(kResetPllSys);
  reg(kPllCs) = 1;
  reg(kPllFbdiv) = 125;  // VCO 1500 MHz
  clear_bits(kPllPwr, (1u << 0) | (1u << 5));
  while (!(reg(kPllCs) & (1u << 31))) {
  }
  reg(kPllPrim) = (5u << 16) | (2u << 12);  // / 5 / 2 = 150 MHz
  clear_bits(kPllPwr, 1u << 3);
  reg(kClkSysCtrl) = 1;  // AUXSRC pll_sys, SRC aux
  while (!(reg(kClkSysSelected) & (1u << 1))) {
  }
  reg(kClkPeriCtrl) = (1u << 11) | (0u << 5);  // ENABLE | AUXSRC clk_sys
  reg(kTicksTimer0Cycles) = kXoscHz / 1'000'000;
  reg(kTicksTimer0Ctrl) = 1;  // ENABLE
}

void release_pad(unsigned pin, u32 extra) {
  set_bits(kPadsBank0 + 4 * pin + 4, extra);
  clear_bits(kPadsBank0 + 4 * pin + 4, kPadIso);
}

void uart_init() {
  unreset(kResetIoBank0 | kResetPadsBank0 | kResetUart0);
  reg(kUartIbrd) = kBaudDivisor64 >> 6;
  reg(kUartFbrd) = kBaudDivisor64 & 63;
  reg(kUartLcrH) = (3u << 5) | (1u << 4);
  reg(kUartCr) = (1u << 0) | (1u << 8) | (1u << 9);
  reg(kIoBank0 + 0x04) = kFuncselUart;
  reg(kIoBank0 + 0x0c) = kFuncselUart;
  release_pad(0, 0);
  release_pad(1, kPadInputEnable);
}

}  // namespace

extern "C" void isr_irq0() { reg(kTimerIntr) = kWakeAlarm; }

extern "C" void isr_irq1() {
  reg(kTimerIntr) = kUserAlarm;
  if (auto handler = user_alarm_handler) handler();
}

namespace hal {

const char* board_name() { return "rp2350"; }

void init() {
  reg(cortex_m::kScbVtor) = reinterpret_cast<u32>(hw_vector_table);
  clocks_init();
  uart_init();
  unreset(kResetTimer0);
  reg(kTimerInte) = kWakeAlarm | kUserAlarm;
  cortex_m::enable_irq(kTimerIrq0);
  cortex_m::enable_irq(kTimerIrq1);
}

Micros now() {
  u32 high, low;
  do {
    high = reg(kTimerRawH);
    low = reg(kTimerRawL);
  } while (high != reg(kTimerRawH));
  return static_cast<Micros>((std::uint64_t{high} << 32) | low);
}

Micros wake_resolution() { return 1; }

bool schedule_wake(Micros at) {
  if (at <= now()) return false;
  reg(kTimerAlarm0) = static_cast<u32>(at);
  if (at <= now()) {
    cancel_wake();
    return false;
  }
  return true;
}

void cancel_wake() {
  reg(kTimerArmed) = kWakeAlarm;
  reg(kTimerIntr) = kWakeAlarm;
}

void light_sleep() {
  reg(cortex_m::kScbScr) = cortex_m::kScrSleepDeep;
  cortex_m::wait_for_interrupt();
  reg(cortex_m::kScbScr) = 0;
}

void console_write(const char* data, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) {
    while (reg(kUartFr) & kUartFrTxFull) {
    }
    reg(kUartDr) = static_cast<unsigned char>(data[i]);
  }
}

bool console_readable() { return !(reg(kUartFr) & kUartFrRxEmpty); }

std::size_t console_read(char* data, std::size_t size) {
  std::size_t count = 0;
  while (count < size && console_readable()) data[count++] = static_cast<char>(reg(kUartDr));
  return count;
}

void gpio_set_output(unsigned pin) {
  unreset(kResetIoBank0 | kResetPadsBank0);
  reg(kSioGpioOutClr) = 1u << pin;
  reg(kSioGpioOeSet) = 1u << pin;
  reg(kIoBank0 + 8 * pin + 4) = kFuncselSio;
  release_pad(pin, 0);
}

void gpio_put(unsigned pin, bool value) { reg(value ? kSioGpioOutSet : kSioGpioOutClr) = 1u << pin; }

void set_user_alarm(Micros at, void (*handler)()) {
  user_alarm_handler = handler;
  if (!handler) {
    reg(kTimerArmed) = kUserAlarm;
    return;
  }
  reg(kTimerAlarm1) = static_cast<u32>(at);
}

void exit(int code) {
  while (reg(kUartFr) & kUartFrBusy) {
  }
#if HW_EMULATOR_EXIT
  if (code == 0) asm volatile("bkpt #0");
  asm volatile("bkpt #1");
#endif
  (void)code;
  cortex_m::mask_interrupts();
  for (;;) cortex_m::wait_for_interrupt();
}

}  // namespace hal
