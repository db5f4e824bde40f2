// QEMU mps2-an505 board file: runs the Cortex-M33 build of the core (the RP2350's instruction
// set) under QEMU, the second emulated target. Simpler than the RP2 files on purpose:
//
//   time     SysTick at the CPU clock: a 1 ms interrupt counts milliseconds, the counter gives
//            the µs within one
//   wake     every SysTick interrupt ends WFI, so schedule_wake only has to say yes (tickful)
//   user     the SysTick handler calls the user handler once its time has come (1 ms grain)
//   console  CMSDK UART0, secure alias 0x50200000 (QEMU: -serial stdio)
//   end      semihosting SYS_EXIT_EXTENDED: QEMU exits with the firmware's code
//
// Facts observed under QEMU 7.2: SYSCLK is 20 MHz in QEMU's model; with
// -icount shift=6 one instruction is 64 ns and WFI skips ahead to the next timer event.
#include <cstdint>

#include "cortex_m.hpp"
#include "hal.hpp"

namespace {

using cortex_m::reg;
using u32 = std::uint32_t;

constexpr u32 kCpuHz = 20'000'000;
constexpr u32 kTicksPerUs = kCpuHz / 1'000'000;
constexpr u32 kReload = kCpuHz / 1000 - 1;  // one interrupt per ms

// ARMv8-M ARM B11: SysTick
constexpr u32 kSystCsr = 0xe000e010, kSystRvr = 0xe000e014, kSystCvr = 0xe000e018;
constexpr u32 kIcsrPendStSet = 1u << 26;

// CMSDK APB UART (Arm DDI 0479): DATA, STATE (bit 0 TX full, bit 1 RX full), CTRL, BAUDDIV
constexpr u32 kUart0 = 0x50200000;
constexpr u32 kUartData = kUart0 + 0x0, kUartState = kUart0 + 0x4, kUartCtrl = kUart0 + 0x8,
              kUartBauddiv = kUart0 + 0x10;

volatile std::uint64_t milliseconds = 0;
volatile hal::Micros user_alarm_at = -1;
void (*volatile user_alarm_handler)() = nullptr;

int semihost(int operation, const void* argument) {
  register int r0 asm("r0") = operation;
  register const void* r1 asm("r1") = argument;
  asm volatile("bkpt #0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

}  // namespace

extern "C" void isr_systick() {
  milliseconds = milliseconds + 1;
  auto handler = user_alarm_handler;
  if (handler && user_alarm_at >= 0 && hal::now() >= user_alarm_at) {
    user_alarm_at = -1;
    handler();
  }
}

namespace hal {

const char* board_name() { return "an505"; }

void init() {
  reg(kUartBauddiv) = 16;  // QEMU ignores the rate but wants a valid divisor (>= 16)
  reg(kUartCtrl) = 0x3;    // TX and RX enable
  reg(kSystRvr) = kReload;
  reg(kSystCvr) = 0;
  reg(kSystCsr) = 0x7;  // CLKSOURCE CPU, TICKINT, ENABLE
}

Micros now() {
  const std::uint32_t saved = cortex_m::mask_interrupts();
  std::uint64_t ms = milliseconds;
  u32 counter = reg(kSystCvr);
  if (reg(cortex_m::kScbIcsr) & kIcsrPendStSet) {  // wrapped; the handler has not run yet
    counter = reg(kSystCvr);
    ++ms;
  }
  // The counter runs kReload..0 and the 1 -> 0 step pends the interrupt, so 0 already belongs
  // to the next millisecond.
  const Micros us = static_cast<Micros>(ms * 1000 + ((kReload + 1 - counter) % (kReload + 1)) /
                                                        kTicksPerUs);
  cortex_m::restore_interrupts(saved);
  return us;
}

Micros wake_resolution() { return 1000; }

bool schedule_wake(Micros at) { return at > now(); }  // the 1 ms tick wakes us anyway

void cancel_wake() {}

void light_sleep() { cortex_m::wait_for_interrupt(); }

void console_write(const char* data, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == '\r') continue;  // QEMU's stdio adds nothing; keep lines plain
    while (reg(kUartState) & 1) {
    }
    reg(kUartData) = static_cast<unsigned char>(data[i]);
  }
}

bool console_readable() { return reg(kUartState) & 2; }

std::size_t console_read(char* data, std::size_t size) {
  std::size_t count = 0;
  while (count < size && console_readable()) data[count++] = static_cast<char>(reg(kUartData));
  return count;
}

// QEMU's an505 models no GPIO block we use, and its second UART is not looped back: the GPIO
// and device UART calls are inert here, and uart_open says so.
void gpio_set_output(unsigned) {}
void gpio_put(unsigned, bool) {}
void gpio_set_input(unsigned) {}
bool gpio_get(unsigned) { return false; }
void gpio_set_irq(unsigned, Edge, void (*)(unsigned)) {}

bool uart_open(const UartConfig&, void (*)()) { return false; }
void uart_close() {}
std::size_t uart_read(std::uint8_t*, std::size_t) { return 0; }
std::size_t uart_write(const std::uint8_t*, std::size_t) { return 0; }
bool uart_writable() { return false; }

void set_user_alarm(Micros at, void (*handler)()) {
  const std::uint32_t saved = cortex_m::mask_interrupts();
  user_alarm_handler = handler;
  user_alarm_at = handler ? at : -1;
  cortex_m::restore_interrupts(saved);
}

void exit(int code) {
  // SYS_EXIT_EXTENDED (0x20) with {ADP_Stopped_ApplicationExit, code}: QEMU exits with `code`.
  const u32 block[2] = {0x20026, static_cast<u32>(code)};
  semihost(0x20, block);
  for (;;) cortex_m::wait_for_interrupt();
}

}  // namespace hal
