// RP2040 board file: the chip contract (hal.hpp) at register level, no Pico SDK. What the RP2350
// shares (TIMER, UARTs, GPIO, exit) is in hw/rp2/rp2.cpp; this file has the clocks, the light
// sleep and the interrupt vectors.
//
//   clocks   XOSC 12 MHz -> clk_ref and clk_peri; PLL_SYS 12 MHz x 125 / 6 / 2 = 125 MHz -> clk_sys
//   time     TIMER: 64-bit µs counter ticked by the watchdog tick generator (clk_ref / 12)
//   wake     TIMER ALARM0 -> TIMER_IRQ_0 (the handler only acknowledges: it exists to end WFI)
//   user     TIMER ALARM1 -> TIMER_IRQ_1 (an asynchronous interrupt source for the examples)
//   console  UART0 on GPIO0 (TX) / GPIO1 (RX), 115200 8N1
//   device   UART1 on GPIO4 (TX) / GPIO5 (RX) -> UART1_IRQ (21); GPIO edges -> IO_IRQ_BANK0 (13)
//   idle     MicroPython's machine.lightsleep(): clk_sys to the crystal, PLL off, every clock
//            but the timer's (and those of the device UART and GPIO block while in use) gated
//            while the core sleeps (SLEEPDEEP), then back to 125 MHz
//
// Register addresses and fields: RP2040 datasheet (2.15 clocks, 2.16 XOSC, 2.18 PLL,
// 4.7 watchdog); the shared blocks' in chip.hpp.
#include <cstdint>

#include "cortex_m.hpp"
#include "hal.hpp"
#include "rp2.hpp"

namespace {

using cortex_m::reg;
using rp2::clear_bits;
using rp2::set_bits;
using u32 = std::uint32_t;

// 2.14.3 RESETS
constexpr u32 kResetsReset = chip::kResets + 0x0;
constexpr u32 kResetPllSys = 1u << 12;

// 2.15.7 CLOCKS
constexpr u32 kClocks = 0x40008000;
constexpr u32 kClkRefCtrl = kClocks + 0x30, kClkRefSelected = kClocks + 0x38;
constexpr u32 kClkSysCtrl = kClocks + 0x3c, kClkSysDiv = kClocks + 0x40,
              kClkSysSelected = kClocks + 0x44;
constexpr u32 kClkPeriCtrl = kClocks + 0x48, kClkSysResusCtrl = kClocks + 0x78;
constexpr u32 kClkPeriEnable = 1u << 11, kClkPeriAuxXosc = 4u << 5;
constexpr u32 kSleepEn0 = kClocks + 0xa8, kSleepEn1 = kClocks + 0xac;
constexpr u32 kSleepEn0ClkSysIo = 1u << 8, kSleepEn0ClkSysPads = 1u << 11;
constexpr u32 kSleepEn1ClkSysTimer = 1u << 5;
constexpr u32 kSleepEn1Uart1 = (1u << 8) | (1u << 9);  // CLK_PERI_UART1 | CLK_SYS_UART1
constexpr u32 kSleepEnAll0 = 0xffffffff, kSleepEnAll1 = 0x7fff;  // reset values

// 2.16.7 XOSC, 2.18.4 PLL_SYS
constexpr u32 kXosc = 0x40024000;
constexpr u32 kXoscCtrl = kXosc + 0x0, kXoscStatus = kXosc + 0x4, kXoscStartup = kXosc + 0xc;
constexpr u32 kPllSys = 0x40028000;
constexpr u32 kPllCs = kPllSys + 0x0, kPllPwr = kPllSys + 0x4, kPllFbdiv = kPllSys + 0x8,
              kPllPrim = kPllSys + 0xc;
constexpr u32 kPllPwrPd = 1u << 0, kPllPwrPostDivPd = 1u << 3, kPllPwrVcoPd = 1u << 5;
constexpr u32 kPllCsLock = 1u << 31;

// 4.7.6 WATCHDOG TICK: ENABLE (bit 9) | CYCLES, so clk_ref / CYCLES = 1 MHz for the TIMER.
constexpr u32 kWatchdogTick = 0x40058000 + 0x2c;

constexpr u32 kXoscHz = 12'000'000;
static_assert(chip::kClkPeriHz == kXoscHz, "clk_peri runs from the crystal");

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
  rp2::unreset(kResetPllSys);
  reg(kPllCs) = 1;  // REFDIV 1
  reg(kPllFbdiv) = 125;
  pll_sys_start();
  reg(kPllPrim) = (6u << 16) | (2u << 12);  // POSTDIV1 6, POSTDIV2 2
  reg(kClkSysDiv) = 1u << 8;                // integer divider 1
  clk_sys_from_pll();
  // clk_peri from the crystal rather than clk_sys: light sleep moves clk_sys to the crystal
  // and stops the PLL, and a UART that must receive while the core sleeps (the device UART)
  // would otherwise change baud rate under way. 12 MHz allows up to 750 kbaud.
  reg(kClkPeriCtrl) = kClkPeriEnable | kClkPeriAuxXosc;
  reg(kWatchdogTick) = (1u << 9) | (kXoscHz / 1'000'000);
}

// Clocks that stay on while the core sleeps: the TIMER's always (it wakes us), the device
// UART's and the GPIO block's while they are in use (their interrupts must wake us too).
u32 sleep_en0() { return rp2::gpio_irq_active() ? kSleepEn0ClkSysIo | kSleepEn0ClkSysPads : 0; }
u32 sleep_en1() {
  return kSleepEn1ClkSysTimer | (rp2::device_uart_active() ? kSleepEn1Uart1 : 0);
}

}  // namespace

extern "C" void isr_irq13() { rp2::dispatch(rp2::io_bank0_irq); }
extern "C" void isr_irq21() { rp2::dispatch(rp2::device_uart_irq); }

namespace hal {

const char* board_name() { return "rp2040"; }

void init() {
  clocks_init();
  rp2::init_console_and_timer();
}

void light_sleep() {
  rp2::console_flush();  // the console's clocks are gated while asleep
  clk_sys_from_crystal();
  pll_sys_stop();
  reg(kSleepEn0) = sleep_en0();
  reg(kSleepEn1) = sleep_en1();
  reg(cortex_m::kScbScr) = cortex_m::kScrSleepDeep;  // we use no other SCR bit
  cortex_m::wait_for_interrupt();
  reg(cortex_m::kScbScr) = 0;
  reg(kSleepEn0) = kSleepEnAll0;  // back to the reset values: every clock runs while awake
  reg(kSleepEn1) = kSleepEnAll1;
  pll_sys_start();
  clk_sys_from_pll();
}

}  // namespace hal
