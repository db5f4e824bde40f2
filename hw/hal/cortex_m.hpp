// Cortex-M core helpers shared by every board: interrupt masking, WFI, NVIC, SCB.
// Register addresses are the architectural ones (ARMv6-M / ARMv8-M Architecture Reference
// Manual, "System Control Space"): the same on the M0+ and the M33.
#pragma once

#include <cstdint>

namespace cortex_m {

inline volatile std::uint32_t& reg(std::uint32_t address) {
  return *reinterpret_cast<volatile std::uint32_t*>(address);
}

constexpr std::uint32_t kNvicIser = 0xe000e100;  // interrupt set-enable
constexpr std::uint32_t kNvicIcer = 0xe000e180;  // interrupt clear-enable
constexpr std::uint32_t kNvicIcpr = 0xe000e280;  // interrupt clear-pending
constexpr std::uint32_t kScbIcsr = 0xe000ed04;   // interrupt control and state
constexpr std::uint32_t kScbVtor = 0xe000ed08;   // vector table offset
constexpr std::uint32_t kScbScr = 0xe000ed10;    // system control (SLEEPDEEP = bit 2)
constexpr std::uint32_t kScrSleepDeep = 1u << 2;

/// Masks interrupts (PRIMASK) and returns the previous mask, for restore_interrupts.
inline std::uint32_t mask_interrupts() {
  std::uint32_t primask;
  asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
  return primask;
}
inline void restore_interrupts(std::uint32_t primask) {
  asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}

/// RAII critical section: interrupts masked for the object's lifetime (single core).
class InterruptGuard {
 public:
  InterruptGuard() : saved_(mask_interrupts()) {}
  ~InterruptGuard() { restore_interrupts(saved_); }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  std::uint32_t saved_;
};

/// Waits for an interrupt. With PRIMASK set it still returns when one becomes pending.
inline void wait_for_interrupt() { asm volatile("dsb\n wfi" ::: "memory"); }

/// Lets a pending interrupt's handler run, then masks again.
inline void run_pending_handlers() { asm volatile("cpsie i\n isb\n cpsid i" ::: "memory"); }

inline void enable_irq(unsigned irq) {
  reg(kNvicIcpr + 4 * (irq / 32)) = 1u << (irq % 32);
  reg(kNvicIser + 4 * (irq / 32)) = 1u << (irq % 32);
}

inline void disable_irq(unsigned irq) {
  reg(kNvicIcer + 4 * (irq / 32)) = 1u << (irq % 32);
  asm volatile("dsb\n isb" ::: "memory");  // no handler runs for it once this returns
}

}  // namespace cortex_m
