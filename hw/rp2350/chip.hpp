// RP2350 register map of what hw/rp2/rp2.cpp shares with the RP2040 (see hw/rp2040/chip.hpp).
// Datasheet sections: 3.1 SIO, 3.2 interrupts, 7.5 resets, 9 GPIO (IO_BANK0, PADS with their
// isolation latch), 12.1 UART, 12.8 timers.
#pragma once

#include <cstdint>

namespace chip {

using u32 = std::uint32_t;

inline constexpr u32 kResets = 0x40020000;
inline constexpr u32 kResetIoBank0 = 1u << 6, kResetPadsBank0 = 1u << 9,
                     kResetTimer = 1u << 23, kResetUart0 = 1u << 26, kResetUart1 = 1u << 27;

// 48 GPIOs: the interrupt registers come after 48 CTRL/STATUS pairs and the IRQ summaries.
inline constexpr u32 kIoBank0 = 0x40028000;
inline constexpr u32 kIoIntr0 = kIoBank0 + 0x230, kIoProc0Inte0 = kIoBank0 + 0x248,
                     kIoProc0Ints0 = kIoBank0 + 0x278;
inline constexpr unsigned kGpioCount = 48;
inline constexpr u32 kPadsBank0 = 0x40038000;
inline constexpr u32 kPadIso = 1u << 8;  // set at reset: software releases each pad it uses

inline constexpr u32 kSio = 0xd0000000;
inline constexpr u32 kSioGpioIn = kSio + 0x04, kSioGpioOutSet = kSio + 0x18,
                     kSioGpioOutClr = kSio + 0x20, kSioGpioOeSet = kSio + 0x38,
                     kSioGpioOeClr = kSio + 0x40;

inline constexpr u32 kUart0 = 0x40070000, kUart1 = 0x40078000;

inline constexpr u32 kTimer = 0x400b0000;  // TIMER0
inline constexpr u32 kTimerIntr = kTimer + 0x3c, kTimerInte = kTimer + 0x40;

// IO_IRQ_BANK0 is the secure bank interrupt: the firmware runs in the secure state.
inline constexpr unsigned kIoBank0Irq = 21, kUart1Irq = 34;

// clk_peri follows clk_sys (150 MHz); the RP2350 light sleep keeps clk_sys running for now.
inline constexpr u32 kClkPeriHz = 150'000'000;

}  // namespace chip
