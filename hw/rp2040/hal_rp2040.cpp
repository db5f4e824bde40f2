// RP2040 board file: the chip contract (hal.hpp) at register level, no Pico SDK.
//
//   clocks   XOSC 12 MHz -> clk_ref; PLL_SYS 12 MHz x 125 / 6 / 2 = 125 MHz -> clk_sys -> clk_peri
//   time     TIMER: 64-bit µs counter ticked by the watchdog tick generator (clk_ref / 12)
//   wake     TIMER ALARM0 -> TIMER_IRQ_0 (the handler only acknowledges: it exists to end WFI)
//   user     TIMER ALARM1 -> TIMER_IRQ_1 (an asynchronous interrupt source for the examples)
//   console  UART0 on GPIO0 (TX) / GPIO1 (RX), 115200 8N1
//   idle     MicroPython's machine.lightsleep(): clk_sys to the crystal, PLL off, every clock
//            but the timer's gated while the core sleeps (SLEEPDEEP), then back to 125 MHz
//
// Register addresses and fields: RP2040 datasheet (2.1.2 atomic aliases, 2.14 resets,
// 2.15 clocks, 2.16 XOSC, 2.18 PLL, 2.19 GPIO, 4.2 UART, 4.6 timer, 4.7 watchdog).
#include <cstdint>

#include "cortex_m.hpp"
#include "hal.hpp"

namespace {

using cortex_m::reg;
using u32 = std::uint32_t;

// 2.1.2: every peripheral register has set (+0x2000) and clear (+0x3000) aliases, so a field can
// change without a read-modify-write that an interrupt could split.
void set_bits(u32 address, u32 mask) { reg(address + 0x2000) = mask; }
void clear_bits(u32 address, u32 mask) { reg(address + 0x3000) = mask; }

// 2.14.3 RESETS
constexpr u32 kResets = 0x4000c000;
constexpr u32 kResetsReset = kResets + 0x0, kResetsDone = kResets + 0x8;
constexpr u32 kResetIoBank0 = 1u << 5, kResetPadsBank0 = 1u << 8, kResetPllSys = 1u << 12,
              kResetTimer = 1u << 21, kResetUart0 = 1u << 22;

// 2.15.7 CLOCKS
constexpr u32 kClocks = 0x40008000;
constexpr u32 kClkRefCtrl = kClocks + 0x30, kClkRefSelected = kClocks + 0x38;
constexpr u32 kClkSysCtrl = kClocks + 0x3c, kClkSysDiv = kClocks + 0x40,
              kClkSysSelected = kClocks + 0x44;
constexpr u32 kClkPeriCtrl = kClocks + 0x48, kClkSysResusCtrl = kClocks + 0x78;
constexpr u32 kSleepEn0 = kClocks + 0xa8, kSleepEn1 = kClocks + 0xac;
constexpr u32 kSleepEn1ClkSysTimer = 1u << 5;  // CLOCKS_SLEEP_EN1_CLK_SYS_TIMER
constexpr u32 kSleepEnAll0 = 0xffffffff, kSleepEnAll1 = 0x7fff;  // reset values

// 2.16.7 XOSC, 2.18.4 PLL_SYS
constexpr u32 kXosc = 0x40024000;
constexpr u32 kXoscCtrl = kXosc + 0x0, kXoscStatus = kXosc + 0x4, kXoscStartup = kXosc + 0xc;
constexpr u32 kPllSys = 0x40028000;
constexpr u32 kPllCs = kPllSys + 0x0, kPllPwr = kPllSys + 0x4, kPllFbdiv = kPllSys + 0x8,
              kPllPrim = kPllSys + 0xc;
constexpr u32 kPllPwrPd = 1u << 0, kPllPwrPostDivPd = 1u << 3, kPllPwrVcoPd = 1u << 5;
constexpr u32 kPllCsLock = 1u << 31;

// 2.19.6 IO_BANK0 (GPIOn_CTRL at 8n + 4), 2.19.6.3 PADS_BANK0 (GPIOn at 4n + 4), 2.3.1.7 SIO
constexpr u32 kIoBank0 = 0x40014000, kPadsBank0 = 0x4001c000;
constexpr u32 kSio = 0xd0000000;
constexpr u32 kSioGpioOutSet = kSio + 0x14, kSioGpioOutClr = kSio + 0x18,
              kSioGpioOeSet = kSio + 0x24;
constexpr u32 kFuncselUart = 2, kFuncselSio = 5;

// 4.2.8 UART0 (ARM PL011)
constexpr u32 kUart0 = 0x40034000;
constexpr u32 kUartDr = kUart0 + 0x00, kUartFr = kUart0 + 0x18, kUartIbrd = kUart0 + 0x24,
              kUartFbrd = kUart0 + 0x28, kUartLcrH = kUart0 + 0x2c, kUartCr = kUart0 + 0x30;
constexpr u32 kUartFrBusy = 1u << 3, kUartFrRxEmpty = 1u << 4, kUartFrTxFull = 1u << 5;

// 4.6.5 TIMER
constexpr u32 kTimer = 0x40054000;
constexpr u32 kTimerAlarm0 = kTimer + 0x10, kTimerAlarm1 = kTimer + 0x14,
              kTimerArmed = kTimer + 0x20, kTimerRawH = kTimer + 0x24,
              kTimerRawL = kTimer + 0x28, kTimerIntr = kTimer + 0x34, kTimerInte = kTimer + 0x38;
constexpr unsigned kTimerIrq0 = 0, kTimerIrq1 = 1;  // 2.3.2 interrupt numbers
constexpr u32 kWakeAlarm = 1u << 0, kUserAlarm = 1u << 1;

// 4.7.6 WATCHDOG TICK: ENABLE (bit 9) | CYCLES, so clk_ref / CYCLES = 1 MHz for the TIMER.
constexpr u32 kWatchdogTick = 0x40058000 + 0x2c;

constexpr u32 kXoscHz = 12'000'000, kSysHz = 125'000'000, kBaud = 115'200;
// PL011 baud divisor = clk_peri / (16 * baud) in 16.6 fixed point, rounded (4.2.3.2.1):
// 125 MHz / 115200 gives IBRD 67, FBRD 52.
constexpr u32 kBaudDivisor64 = (8 * kSysHz / kBaud + 1) / 2;

void (*volatile user_alarm_handler)() = nullptr;

void unreset(u32 mask) {
  clear_bits(kResetsReset, mask);
  while ((reg(kResetsDone) & mask) != mask) {
  }
}

// clk_sys glitchlessly back to clk_ref (the crystal), the state the bootrom leaves it in.
void clk_sys_from_crystal() {
  clear_bits(kClkSysCtrl, 1);  // SRC = clk_ref
  while (!(reg(kClkSysSelected) & 1)) {
  }
}

void clk_sys_from_pll() {
  reg(kClkSysCtrl) = (0u << 5) | 1;  // AUXSRC = clksrc_pll_sys, SRC = clksrc_clk_sys_aux
  while (!(reg(kClkSysSelected) & (1u << 1))) {
  }
}

// 2.18.2: VCO = 12 MHz x 125 = 1500 MHz (within 750..1600), then / 6 / 2 = 125 MHz.
void pll_sys_start() {
  clear_bits(kPllPwr, kPllPwrPd | kPllPwrVcoPd);
  while (!(reg(kPllCs) & kPllCsLock)) {
  }
  clear_bits(kPllPwr, kPllPwrPostDivPd);
}

void pll_sys_stop() { reg(kPllPwr) = kPllPwrPd | kPllPwrPostDivPd | kPllPwrVcoPd | (1u << 2); }

void clocks_init() {
  reg(kClkSysResusCtrl) = 0;
  // 2.16.3: startup delay in units of 256 crystal cycles; ~1 ms is the datasheet's advice.
  reg(kXoscStartup) = (kXoscHz / 1000 + 255) / 256;
  reg(kXoscCtrl) = (0xfabu << 12) | 0xaa0;  // ENABLE magic | FREQ_RANGE 1_15MHZ
  while (!(reg(kXoscStatus) & (1u << 31))) {  // STABLE
  }
  clk_sys_from_crystal();
  reg(kClkRefCtrl) = 2;  // SRC = xosc_clksrc
  while (!(reg(kClkRefSelected) & (1u << 2))) {
  }
  set_bits(kResetsReset, kResetPllSys);
  unreset(kResetPllSys);
  reg(kPllCs) = 1;  // REFDIV 1
  reg(kPllFbdiv) = 125;
  pll_sys_start();
  reg(kPllPrim) = (6u << 16) | (2u << 12);  // POSTDIV1 6, POSTDIV2 2
  reg(kClkSysDiv) = 1u << 8;                // integer divider 1
  clk_sys_from_pll();
  // clk_peri follows clk_sys (AUXSRC 0), so it also follows it down to 12 MHz in light sleep,
  // when the UART is idle and gated anyway.
  reg(kClkPeriCtrl) = (1u << 11) | (0u << 5);  // ENABLE | AUXSRC clk_sys
  reg(kWatchdogTick) = (1u << 9) | (kXoscHz / 1'000'000);
}

void uart_init() {
  unreset(kResetIoBank0 | kResetPadsBank0 | kResetUart0);
  reg(kUartIbrd) = kBaudDivisor64 >> 6;
  reg(kUartFbrd) = kBaudDivisor64 & 63;
  reg(kUartLcrH) = (3u << 5) | (1u << 4);           // WLEN 8 bits, FIFOs on; latches divisors
  reg(kUartCr) = (1u << 0) | (1u << 8) | (1u << 9);  // UARTEN, TXE, RXE
  reg(kIoBank0 + 0x04) = kFuncselUart;               // GPIO0 = UART0 TX
  reg(kIoBank0 + 0x0c) = kFuncselUart;               // GPIO1 = UART0 RX
  set_bits(kPadsBank0 + 0x08, 1u << 6);              // GPIO1 pad: input enable
}

void timer_init() {
  unreset(kResetTimer);
  reg(kTimerInte) = kWakeAlarm | kUserAlarm;
  cortex_m::enable_irq(kTimerIrq0);
  cortex_m::enable_irq(kTimerIrq1);
}

}  // namespace

extern "C" void isr_irq0() { reg(kTimerIntr) = kWakeAlarm; }  // write 1 to clear

extern "C" void isr_irq1() {
  reg(kTimerIntr) = kUserAlarm;
  if (auto handler = user_alarm_handler) handler();
}

namespace hal {

const char* board_name() { return "rp2040"; }

void init() {
  clocks_init();
  uart_init();
  timer_init();
}

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
  // The alarm compares the low 32 bits only (4.6.4): a target more than 71 minutes away fires
  // early, which is a harmless spurious wake-up. Writing ALARM0 arms it.
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
  reg(kTimerIntr) = kWakeAlarm;
}

void light_sleep() {
  // Let the last console byte leave at 115200 before clk_peri drops to 12 MHz.
  while (reg(kUartFr) & kUartFrBusy) {
  }
  clk_sys_from_crystal();
  pll_sys_stop();
  reg(kSleepEn0) = 0;
  reg(kSleepEn1) = kSleepEn1ClkSysTimer;  // only the TIMER keeps running: it must wake us
  reg(cortex_m::kScbScr) = cortex_m::kScrSleepDeep;  // we use no other SCR bit
  cortex_m::wait_for_interrupt();
  reg(cortex_m::kScbScr) = 0;
  reg(kSleepEn0) = kSleepEnAll0;  // back to the reset values: every clock runs while awake
  reg(kSleepEn1) = kSleepEnAll1;
  pll_sys_start();
  clk_sys_from_pll();
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
