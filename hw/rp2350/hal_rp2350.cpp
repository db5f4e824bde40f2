// RP2350 board file (Arm Cortex-M33 side): the chip contract (hal.hpp) at register level.
// Built and size-checked in CI; not run (no RP2350 emulator here). Its instruction set runs in
// QEMU as the an505 board. What the RP2040 shares (TIMER, UARTs, GPIO, exit) is in
// hw/rp2/rp2.cpp; this file has the clocks, the light sleep and the interrupt vectors.
//
//   clocks   XOSC 12 MHz -> clk_ref; PLL_SYS 12 MHz x 125 / 5 / 2 = 150 MHz -> clk_sys -> clk_peri
//   time     TIMER0: 64-bit µs counter ticked by the TICKS block (clk_ref / 12)
//   wake     TIMER0 ALARM0 -> TIMER0_IRQ_0;  user: ALARM1 -> TIMER0_IRQ_1
//   console  UART0 on GPIO0 (TX) / GPIO1 (RX), 115200 8N1
//   device   UART1 on GPIO4 (TX) / GPIO5 (RX) -> UART1_IRQ (34); GPIO edges -> IO_IRQ_BANK0 (21)
//   idle     WFI with SLEEPDEEP. Unlike the RP2040 file this does not yet gate clocks through
//            SLEEP_EN0/1 (RP2350 bits: CLK_REF_TICKS 17, CLK_SYS_TIMER0 19 must stay on) nor
//            stop the PLL: to be added and measured on a board.
//
// Differences from the RP2040 (RP2350 datasheet 2.2, 7.5 resets, 8.1 clocks, 8.5 ticks,
// 12.8 timers): other base addresses and reset bits (chip.hpp), the timer tick from TICKS, and
// pads isolated until software releases them.
#include <cstdint>

#include "cortex_m.hpp"
#include "hal.hpp"
#include "rp2.hpp"

extern "C" const char hw_vector_table[];

namespace {

using cortex_m::reg;
using rp2::clear_bits;
using rp2::set_bits;
using u32 = std::uint32_t;

constexpr u32 kResetsReset = chip::kResets + 0x0;
constexpr u32 kResetPllSys = 1u << 14;

constexpr u32 kClocks = 0x40010000;
constexpr u32 kClkRefCtrl = kClocks + 0x30, kClkRefSelected = kClocks + 0x38;
constexpr u32 kClkSysCtrl = kClocks + 0x3c, kClkSysSelected = kClocks + 0x44;
constexpr u32 kClkPeriCtrl = kClocks + 0x48;

constexpr u32 kXosc = 0x40048000;
constexpr u32 kXoscCtrl = kXosc + 0x0, kXoscStatus = kXosc + 0x4, kXoscStartup = kXosc + 0xc;
constexpr u32 kPllSys = 0x40050000;  // same register layout as the RP2040's PLL
constexpr u32 kPllCs = kPllSys + 0x0, kPllPwr = kPllSys + 0x4, kPllFbdiv = kPllSys + 0x8,
              kPllPrim = kPllSys + 0xc;

constexpr u32 kTicksTimer0Ctrl = 0x40108000 + 0x18, kTicksTimer0Cycles = 0x40108000 + 0x1c;

constexpr u32 kXoscHz = 12'000'000, kSysHz = 150'000'000;
static_assert(chip::kClkPeriHz == kSysHz, "clk_peri follows clk_sys");

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
  rp2::unreset(kResetPllSys);
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

}  // namespace

extern "C" void isr_irq21() { rp2::dispatch(rp2::io_bank0_irq); }
extern "C" void isr_irq34() { rp2::dispatch(rp2::device_uart_irq); }

namespace hal {

const char* board_name() { return "rp2350"; }

void init() {
  reg(cortex_m::kScbVtor) = reinterpret_cast<u32>(hw_vector_table);
  clocks_init();
  rp2::init_console_and_timer();
}

void light_sleep() {
  reg(cortex_m::kScbScr) = cortex_m::kScrSleepDeep;
  cortex_m::wait_for_interrupt();
  reg(cortex_m::kScbScr) = 0;
}

}  // namespace hal
