// Task stacks and the context switch: port::allocate_stack, make_fiber, switch_fiber
// (include/asyncio/detail/port.hpp).
//
// A stack is one heap block:
//   base                                                                    base + size
//   | guard: kGuardWord ... sentinel | free ... <- grows down -- frames in use |
//                                    ^ limit
// The whole block is painted at allocation, so stack_used() can report the high-water mark.
// Overflow checks, at every switch away from a task:
//  - the core compares the stack pointer with `limit` and the 8-byte sentinel (the top of the
//    guard, which an overflow reaches first) with kStackSentinel, and names the task;
//  - switch_fiber spot-checks the rest of the guard, for a large frame that skipped the
//    sentinel without writing it.
// On the M0+ these run only at the next switch (rp2040js models no MPU; see hw/README.md). On
// ARMv8-M (M33) the process-stack limit register PSPLIM also faults at the first push below the
// limit, before anything is corrupted.
#include <cstdint>
#include <cstdlib>
#include <new>

#include "asyncio/detail/port.hpp"
#include "asyncio/detail/task_record.hpp"
#include "console.hpp"
#include "hal.hpp"
#include "hw.hpp"

extern "C" {
void hw_context_switch(void** save_sp, void* next_sp);
void hw_fiber_trampoline();
[[noreturn]] void hw_fiber_start(asyncio::detail::Fiber* fiber);
extern char __thread_stack_bottom[];

// The C++ runtime's per-thread exception state (libsupc++ unwind-cxx.h, ARM EHABI layout).
// One thread, many fibers: each fiber must see its own, or a task suspended inside a catch
// block would hand its "currently caught" exception to whichever task runs next.
struct EhGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
  void* propagating_exceptions;  // ARM EHABI only: exceptions between cleanup pads
};
EhGlobals* __cxa_get_globals() noexcept;
}

namespace {

using asyncio::detail::Fiber;
using asyncio::detail::Stack;

constexpr std::uint32_t kPaintWord = 0x5a5a5a5a;  // free stack: see stack_used()
constexpr std::uint32_t kGuardWord = 0xdeadc0de;  // the guard below the sentinel
// 256 bytes: an overflow that skips past the guard without touching it goes unseen on the M0+
// (no stack-limit register), so the guard is as deep as a large frame; 256 is also the smallest
// ARMv6-M MPU region, should the guard one day be made a no-access region.
constexpr std::size_t kGuardBytes = 256;
constexpr std::size_t kSentinelOffset = kGuardBytes - sizeof(asyncio::detail::kStackSentinel);
// Guard words switch_fiber looks at: one per 64 bytes, so that a frame would have to skip more
// than 64 guard bytes without writing any of them to go unseen. Four loads per switch.
constexpr std::size_t kGuardProbeStride = 64 / 4;
// The AAPCS requires an 8-byte aligned stack at public interfaces.
constexpr std::size_t kStackAlign = 8;

Fiber* g_current = nullptr;  // nullptr while the loop's own thread runs

std::uint32_t* words(const Stack& stack) { return static_cast<std::uint32_t*>(stack.base); }

#if defined(__ARM_ARCH_8M_MAIN__)
// PSPLIM must never be above the stack in use, so it is cleared before a switch and set by the
// fiber that resumes (it knows its own limit).
void set_stack_limit(const void* limit) {
  asm volatile("msr psplim, %0" ::"r"(limit) : "memory");
}
const void* stack_limit_of(const Fiber* fiber) {
  if (!fiber || !fiber->stack.base) return __thread_stack_bottom;
  return static_cast<const char*>(fiber->stack.base) + kGuardBytes;
}
#else
void set_stack_limit(const void*) {}
const void* stack_limit_of(const Fiber*) { return nullptr; }
#endif

// An overflow has already written below the stack, into the heap: the malloc header of the
// stack block, perhaps the task record. The core's own message would build a std::string on
// that heap, so the port reports first, without allocating, and stops. The name is printed
// with a bound, in case the record itself was hit.
[[noreturn]] void report_overflow(const Fiber* fiber) noexcept {
  hw::print("FATAL: asyncio: stack overflow in task '");
  if (fiber && fiber->stack.base) {
    const char* name = static_cast<const asyncio::detail::TaskRecord*>(fiber)->name.c_str();
    for (int i = 0; i < 32 && name[i] >= ' ' && name[i] <= '~'; ++i) hw::print({name + i, 1});
  }
  hw::print_line("'");
  hal::exit(3);
}

// The part of the guard below the sentinel, which the core does not look at.
void check_guard(const Fiber* fiber) noexcept {
  if (!fiber->stack.base) return;  // the loop's own thread: bounded by the linker script
  const std::uint32_t* guard = words(fiber->stack);
  for (std::size_t i = 0; i < kSentinelOffset / 4; i += kGuardProbeStride) {
    if (guard[i] != kGuardWord) report_overflow(fiber);
  }
}

}  // namespace

namespace hw {

std::size_t stack_used(const asyncio::detail::Stack& stack) {
  if (!stack.base) return 0;
  const std::uint32_t* word = words(stack) + kGuardBytes / 4;  // the sentinel is not paint
  const std::uint32_t* end = words(stack) + stack.size / 4;
  while (word < end && *word == kPaintWord) ++word;
  return static_cast<std::size_t>(end - word) * 4;
}

const char* current_task_name() {
  if (!g_current || !g_current->stack.base) return nullptr;
  // Every fiber that owns a stack is a task: the loop's own thread has none.
  return static_cast<asyncio::detail::TaskRecord*>(g_current)->name.c_str();
}

}  // namespace hw

namespace asyncio::detail::port {

Stack allocate_stack(std::size_t size) {
  if (size == 0) size = hw::kDefaultStackSize;
  size = (size + kStackAlign - 1) & ~(kStackAlign - 1);
  if (size < hw::kMinimumStackSize) size = hw::kMinimumStackSize;
  void* base = std::malloc(size);  // newlib's malloc returns 8-byte aligned blocks
  if (!base) throw std::bad_alloc();
  Stack stack;
  stack.base = base;
  stack.size = size;
  stack.limit = static_cast<char*>(base) + kGuardBytes;
  std::uint32_t* word = words(stack);
  for (std::size_t i = 0; i < kSentinelOffset / 4; ++i) *word++ = kGuardWord;
  // 8-aligned: malloc's blocks are, and kSentinelOffset is a multiple of 8.
  stack.sentinel = reinterpret_cast<std::uint64_t*>(word);
  *stack.sentinel = asyncio::detail::kStackSentinel;
  for (std::size_t i = kGuardBytes / 4; i < size / 4; ++i) words(stack)[i] = kPaintWord;
  return stack;
}

void release_stack(Stack stack) noexcept { std::free(stack.base); }

void make_fiber(Fiber* fiber) {
  // The frame hw_context_switch pops (context_switch.S): r8 r9 r10 r11 r4 r5 r6 r7 lr.
  // r4 carries the Fiber*, lr the trampoline; after the pop sp is the 8-aligned top.
  auto top = reinterpret_cast<std::uintptr_t>(fiber->stack.base) + fiber->stack.size;
  auto* frame = reinterpret_cast<std::uint32_t*>(top & ~std::uintptr_t{kStackAlign - 1}) - 9;
  for (int i = 0; i < 9; ++i) frame[i] = 0;
  frame[4] = reinterpret_cast<std::uint32_t>(fiber);
  frame[8] = reinterpret_cast<std::uint32_t>(&hw_fiber_trampoline);  // Thumb bit included
  fiber->context = frame;
}

void switch_fiber(Fiber* from, Fiber* to, bool /*from_finished*/) noexcept {
  EhGlobals* globals = __cxa_get_globals();
  const EhGlobals mine = *globals;  // kept on this fiber's own stack while it is suspended
  check_guard(from);
  g_current = to->stack.base ? to : nullptr;
  set_stack_limit(nullptr);
  hw_context_switch(&from->context, to->context);
  // Resumed: something switched back to `from`.
  set_stack_limit(stack_limit_of(from->stack.base ? from : nullptr));
  g_current = from->stack.base ? from : nullptr;
  *globals = mine;
}

}  // namespace asyncio::detail::port

extern "C" void hw_fiber_start(asyncio::detail::Fiber* fiber) {
  set_stack_limit(stack_limit_of(fiber));
  *__cxa_get_globals() = {};  // a new fiber has caught nothing yet
  fiber->entry(fiber);
  asyncio::detail::port::fatal("a fiber's entry function returned");
}
