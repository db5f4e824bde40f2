// RP2040 register map of what hw/rp2/rp2.cpp shares with the RP2350: the same blocks (PL011
// UARTs, TIMER, IO_BANK0, PADS, SIO) at other addresses. Datasheet sections: 2.1.2 atomic
// aliases, 2.3.1.7 SIO, 2.3.2 interrupts, 2.14 resets, 2.19 GPIO, 4.2 UART, 4.6 timer.
#pragma once

#include <cstdint>

namespace chip {

using u32 = std::uint32_t;

inline constexpr u32 kResets = 0x4000c000;
inline constexpr u32 kResetIoBank0 = 1u << 5, kResetPadsBank0 = 1u << 8,
                     kResetTimer = 1u << 21, kResetUart0 = 1u << 22, kResetUart1 = 1u << 23;

// IO_BANK0: GPIOn_CTRL at 8n + 4; the interrupt registers hold 4 bits per pin, 8 pins a word.
inline constexpr u32 kIoBank0 = 0x40014000;
inline constexpr u32 kIoIntr0 = kIoBank0 + 0xf0, kIoProc0Inte0 = kIoBank0 + 0x100,
                     kIoProc0Ints0 = kIoBank0 + 0x120;
inline constexpr unsigned kGpioCount = 30;
// PADS_BANK0: GPIOn at 4n + 4. The RP2040's pads have no isolation latch (the RP2350's do).
inline constexpr u32 kPadsBank0 = 0x4001c000;
inline constexpr u32 kPadIso = 0;

inline constexpr u32 kSio = 0xd0000000;
inline constexpr u32 kSioGpioIn = kSio + 0x04, kSioGpioOutSet = kSio + 0x14,
                     kSioGpioOutClr = kSio + 0x18, kSioGpioOeSet = kSio + 0x24,
                     kSioGpioOeClr = kSio + 0x28;

inline constexpr u32 kUart0 = 0x40034000, kUart1 = 0x40038000;

inline constexpr u32 kTimer = 0x40054000;
inline constexpr u32 kTimerIntr = kTimer + 0x34, kTimerInte = kTimer + 0x38;

// 2.3.2: TIMER_IRQ_0/1 are 0/1 on both chips; the others differ.
inline constexpr unsigned kIoBank0Irq = 13, kUart1Irq = 21;

// clk_peri runs from the crystal (hal_rp2040.cpp), so the UARTs keep their baud rate when light
// sleep drops clk_sys to the crystal and stops the PLL.
inline constexpr u32 kClkPeriHz = 12'000'000;

}  // namespace chip
