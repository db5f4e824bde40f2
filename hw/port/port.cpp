// The rest of the port contract (include/asyncio/detail/port.hpp) for every hw board: clock,
// logging and fatal errors. Stacks and fibers are in fibers.cpp, the backend in
// mcu_backend.cpp.
#include <cstdint>

#include "asyncio/detail/port.hpp"
#include "console.hpp"
#include "hal.hpp"
#include "hw.hpp"

namespace asyncio::detail::port {

Micros now() { return hal::now(); }

// Reading the timer is already cheap on a board.
Micros coarse_now() { return hal::now(); }

// No console interrupt on the boards yet: Ctrl-C on the UART is an ordinary byte.
void route_interrupts(Loop& /*loop*/, bool /*on*/) noexcept {}

// One thread (interrupt handlers only reach the loop through ThreadSafeFlag): nothing to tell.
std::uintptr_t thread_id() noexcept { return 0; }

void log_error(const char* message) noexcept {
  hw::print("asyncio error: ");
  hw::print_line(message);
}

void log_info(const char* message) noexcept { hw::print_line(message); }

void fatal(const char* message) noexcept {
  hw::print("FATAL: ");
  hw::print_line(message);
  hal::exit(3);
}

}  // namespace asyncio::detail::port

namespace {

void print_hex(std::uint32_t value) {
  char text[10] = {'0', 'x'};
  for (int i = 0; i < 8; ++i) text[2 + i] = "0123456789abcdef"[(value >> (28 - 4 * i)) & 0xf];
  hw::print({text, sizeof text});
}

}  // namespace

// A fault names the instruction and the task: the usual cause is a stack overflow that the
// sentinel check did not catch in time (it runs at switches), or a bad pointer.
// `frame` is the exception frame the CPU pushed: r0 r1 r2 r3 r12 lr pc xpsr.
extern "C" void hw_report_fault(const std::uint32_t* frame) {
  hw::print("FATAL: HardFault at pc=");
  print_hex(frame[6]);
#if defined(__ARM_ARCH_8M_MAIN__)
  constexpr std::uint32_t kCfsr = 0xe000ed28, kUfsrStackOverflow = 1u << 20;  // UFSR.STKOF
  if (*reinterpret_cast<volatile std::uint32_t*>(kCfsr) & kUfsrStackOverflow) {
    hw::print(" (stack overflow: PSPLIM)");
  }
#endif
  if (const char* task = hw::current_task_name()) {
    hw::print(" in task '");
    hw::print(task);
    hw::print("'");
  }
  hw::print_line("");
  hal::exit(3);
}

// EXC_RETURN bit 2 says which stack holds the frame: PSP for thread code (tasks, the loop),
// MSP for a fault inside a handler. With PSPLIM tripped the frame may be unusable, so the
// handler stack is reported then (ARMv8-M: the CPU stacks at the limit instead).
extern "C" __attribute__((naked)) void isr_hardfault() {
  asm volatile(
      "movs r0, #4\n"
      "mov r1, lr\n"
      "tst r0, r1\n"
      "beq 1f\n"
      "mrs r0, psp\n"
      "b hw_report_fault\n"
      "1: mrs r0, msp\n"
      "b hw_report_fault\n");
}
