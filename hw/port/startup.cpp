// Vector table and C++ start-up for every board (no SDK, no crt0: linked with -nostartfiles).
//
// Reset_Handler (reset.S) sets up the two stacks and calls hw_start, which does what crt0 and
// __libc_init_array would: copy .data, zero .bss, then (after the board's clocks and console
// are up, so constructors may print) run the static constructors, then main.
//
// Linker-script symbols: see hw/port/sections.ld.
#include <cstdint>

#include "console.hpp"
#include "hal.hpp"

#ifndef HW_IRQ_COUNT
#error "HW_IRQ_COUNT must be set by the board (number of external interrupt lines)"
#endif

extern "C" {
extern char __handler_stack_top[];
extern std::uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern std::uint32_t __tdata_load[], __tdata_start[], __tdata_end[], __tbss_start[], __tbss_end[];
extern void (*__init_array_start[])();
extern void (*__init_array_end[])();

void Reset_Handler();
[[noreturn]] void hw_start();
void hw_unhandled_interrupt();
void isr_hardfault();
// main, under another name: C++ forbids calling main, but this is the C runtime's job here.
int application_main() __asm__("main");

// Handlers a board or the port may define; the rest stay on hw_unhandled_interrupt.
#define HW_WEAK_HANDLER(name) void name() __attribute__((weak, alias("hw_unhandled_interrupt")));
HW_WEAK_HANDLER(isr_nmi)
HW_WEAK_HANDLER(isr_svcall)
HW_WEAK_HANDLER(isr_pendsv)
HW_WEAK_HANDLER(isr_systick)
#define HW_WEAK_IRQ_8(b)                                                          \
  HW_WEAK_HANDLER(isr_irq##b##0) HW_WEAK_HANDLER(isr_irq##b##1)                  \
  HW_WEAK_HANDLER(isr_irq##b##2) HW_WEAK_HANDLER(isr_irq##b##3)                  \
  HW_WEAK_HANDLER(isr_irq##b##4) HW_WEAK_HANDLER(isr_irq##b##5)                  \
  HW_WEAK_HANDLER(isr_irq##b##6) HW_WEAK_HANDLER(isr_irq##b##7)
HW_WEAK_HANDLER(isr_irq0) HW_WEAK_HANDLER(isr_irq1) HW_WEAK_HANDLER(isr_irq2)
HW_WEAK_HANDLER(isr_irq3) HW_WEAK_HANDLER(isr_irq4) HW_WEAK_HANDLER(isr_irq5)
HW_WEAK_HANDLER(isr_irq6) HW_WEAK_HANDLER(isr_irq7) HW_WEAK_HANDLER(isr_irq8)
HW_WEAK_HANDLER(isr_irq9)
HW_WEAK_IRQ_8(1) HW_WEAK_HANDLER(isr_irq18) HW_WEAK_HANDLER(isr_irq19)
HW_WEAK_IRQ_8(2) HW_WEAK_HANDLER(isr_irq28) HW_WEAK_HANDLER(isr_irq29)
HW_WEAK_IRQ_8(3) HW_WEAK_HANDLER(isr_irq38) HW_WEAK_HANDLER(isr_irq39)
HW_WEAK_IRQ_8(4) HW_WEAK_HANDLER(isr_irq48) HW_WEAK_HANDLER(isr_irq49)
HW_WEAK_IRQ_8(5) HW_WEAK_HANDLER(isr_irq58) HW_WEAK_HANDLER(isr_irq59)
HW_WEAK_HANDLER(isr_irq60) HW_WEAK_HANDLER(isr_irq61) HW_WEAK_HANDLER(isr_irq62)
HW_WEAK_HANDLER(isr_irq63)
}  // extern "C"

namespace {

using Handler = void (*)();

// ARMv6-M ARM B1.5.3 / ARMv8-M ARM B3.30: initial SP, then 15 system exception vectors
// (1 reset, 2 NMI, 3 HardFault, 4-6 MemManage/BusFault/UsageFault on ARMv8-M mainline,
// 7 SecureFault, 11 SVCall, 14 PendSV, 15 SysTick), then the external interrupts.
struct VectorTable {
  void* initial_sp;
  Handler system[15];
  Handler irq[HW_IRQ_COUNT];
};

constexpr Handler kIrqHandlers[64] = {
    isr_irq0,  isr_irq1,  isr_irq2,  isr_irq3,  isr_irq4,  isr_irq5,  isr_irq6,  isr_irq7,
    isr_irq8,  isr_irq9,  isr_irq10, isr_irq11, isr_irq12, isr_irq13, isr_irq14, isr_irq15,
    isr_irq16, isr_irq17, isr_irq18, isr_irq19, isr_irq20, isr_irq21, isr_irq22, isr_irq23,
    isr_irq24, isr_irq25, isr_irq26, isr_irq27, isr_irq28, isr_irq29, isr_irq30, isr_irq31,
    isr_irq32, isr_irq33, isr_irq34, isr_irq35, isr_irq36, isr_irq37, isr_irq38, isr_irq39,
    isr_irq40, isr_irq41, isr_irq42, isr_irq43, isr_irq44, isr_irq45, isr_irq46, isr_irq47,
    isr_irq48, isr_irq49, isr_irq50, isr_irq51, isr_irq52, isr_irq53, isr_irq54, isr_irq55,
    isr_irq56, isr_irq57, isr_irq58, isr_irq59, isr_irq60, isr_irq61, isr_irq62, isr_irq63,
};
static_assert(HW_IRQ_COUNT <= 64);

constexpr VectorTable make_vector_table() {
  VectorTable table{__handler_stack_top,
                    {Reset_Handler, isr_nmi, isr_hardfault, isr_hardfault, isr_hardfault,
                     isr_hardfault, isr_hardfault, nullptr, nullptr, nullptr, isr_svcall, nullptr,
                     nullptr, isr_pendsv, isr_systick},
                    {}};
  for (int i = 0; i < HW_IRQ_COUNT; ++i) table.irq[i] = kIrqHandlers[i];
  return table;
}

}  // namespace

extern "C" {

// "used": nothing references the table (the RP2350 board writes its address to VTOR); the
// linker script KEEPs its section. "extern" gives the constant external linkage.
__attribute__((section(".vectors"), used)) extern const VectorTable hw_vector_table =
    make_vector_table();

namespace {
void copy_words(std::uint32_t* begin, std::uint32_t* end, const std::uint32_t* source) {
  while (begin < end) *begin++ = *source++;
}
void zero_words(std::uint32_t* begin, std::uint32_t* end) {
  while (begin < end) *begin++ = 0;
}
}  // namespace

void hw_start() {
  copy_words(__data_start, __data_end, __data_load);
  copy_words(__tdata_start, __tdata_end, __tdata_load);
  zero_words(__bss_start, __bss_end);
  zero_words(__tbss_start, __tbss_end);
  hal::init();
  for (auto constructor = __init_array_start; constructor < __init_array_end; ++constructor) {
    (*constructor)();
  }
  hal::exit(application_main());
}

// An interrupt was enabled without a handler: name its exception number (IPSR; external
// interrupt n is exception 16 + n).
void hw_unhandled_interrupt() {
  std::uint32_t ipsr;
  asm volatile("mrs %0, ipsr" : "=r"(ipsr));
  hw::print("FATAL: no handler for exception ");
  hw::print_int(ipsr);
  hw::print_line("");
  hal::exit(3);
}

}  // extern "C"
