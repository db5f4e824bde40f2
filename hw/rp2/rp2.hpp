// What the RP2040 and RP2350 board files share. Both chips have the same TIMER, PL011 UARTs,
// IO_BANK0 interrupt logic, SIO and atomic register aliases, at addresses given by the board's
// chip.hpp; hw/rp2/rp2.cpp implements the chip contract (hal.hpp) for those blocks once. A
// board file keeps what really differs: clocks, light sleep, and the interrupt vector names.
#pragma once

#include "chip.hpp"
#include "cortex_m.hpp"

namespace rp2 {

using chip::u32;

// Every peripheral register has set (+0x2000) and clear (+0x3000) aliases, so a field can change
// without a read-modify-write that an interrupt could split.
inline void set_bits(u32 address, u32 mask) { cortex_m::reg(address + 0x2000) = mask; }
inline void clear_bits(u32 address, u32 mask) { cortex_m::reg(address + 0x3000) = mask; }

/// Takes the blocks in `mask` (RESETS bits) out of reset and waits until they are.
void unreset(u32 mask);

/// Console UART0 on GPIO0/1 and the TIMER's two alarms: the part of hal::init() after the
/// clocks. Needs clk_peri at chip::kClkPeriHz.
void init_console_and_timer();

/// Waits until the console UART has sent its last bit (before clk_peri changes or the end).
void console_flush();

/// Light sleep keeps these blocks clocked while they are in use, so that their interrupts
/// still wake the core.
bool device_uart_active();
bool gpio_irq_active();

/// Interrupt handlers, called by the board's isr_irqN (the numbers differ by chip) through
/// these pointers, which are set when the device is first used: the vector table then does not
/// drag the handlers (and the GPIO handler table) into firmware that never uses the device.
extern void (*volatile device_uart_irq)();
extern void (*volatile io_bank0_irq)();

inline void dispatch(void (*volatile& handler)()) {
  if (auto function = handler) function();
}

}  // namespace rp2
