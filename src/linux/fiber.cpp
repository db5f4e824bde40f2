// Fibers on Boost.Context's fcontext (on x86-64 our own copy of its jump, see
// asyncio/detail/linux/fiber_switch.hpp): make_fiber of the port contract; switch_fiber is
// inline there.
#include <cxxabi.h>

#include <cstdint>

#include "asyncio/detail/port.hpp"
#include "fiber_tracking.hpp"

#if defined(__x86_64__) && !defined(__CET__) && !defined(ASYNCIO_PER_TASK_FP_ENV)
// Frame as Boost.Context's x86-64 SysV fcontext: 0x00 unused (Boost's floating-point control
// words), 0x08..0x30 r12 r13 r14 r15 rbx rbp, 0x38 the address to resume at.
asm(R"(
    .text
    .globl asyncio_jump_context
    .type asyncio_jump_context, @function
    .p2align 4
asyncio_jump_context:
    leaq -0x38(%rsp), %rsp
    movq %r12, 0x8(%rsp)
    movq %r13, 0x10(%rsp)
    movq %r14, 0x18(%rsp)
    movq %r15, 0x20(%rsp)
    movq %rbx, 0x28(%rsp)
    movq %rbp, 0x30(%rsp)
    movq %rsp, %rax
    movq %rdi, %rsp
    movq 0x38(%rsp), %r8
    movq 0x8(%rsp), %r12
    movq 0x10(%rsp), %r13
    movq 0x18(%rsp), %r14
    movq 0x20(%rsp), %r15
    movq 0x28(%rsp), %rbx
    movq 0x30(%rsp), %rbp
    leaq 0x40(%rsp), %rsp
    movq %rsi, %rdx
    movq %rax, %rdi
    jmp *%r8
    .size asyncio_jump_context, .-asyncio_jump_context

    .globl asyncio_make_context
    .type asyncio_make_context, @function
    .p2align 4
asyncio_make_context:
    movq %rdi, %rax
    andq $-16, %rax
    leaq -0x40(%rax), %rax
    movq %rdx, 0x28(%rax)
    movq $0, 0x30(%rax)
    leaq asyncio_context_start(%rip), %rcx
    movq %rcx, 0x38(%rax)
    ret
    .size asyncio_make_context, .-asyncio_make_context

    .type asyncio_context_start, @function
    .p2align 4
asyncio_context_start:
    pushq %rbp
    jmp *%rbx
    .size asyncio_context_start, .-asyncio_context_start
)");
#endif

namespace asyncio::detail {

constinit thread_local const Fiber* running_fiber = nullptr;

namespace port {
namespace linux_fiber {

constinit thread_local ExceptionGlobals* exception_globals_cache = nullptr;

ExceptionGlobals* load_exception_globals() noexcept {
  exception_globals_cache = reinterpret_cast<ExceptionGlobals*>(abi::__cxa_get_globals());
  return exception_globals_cache;
}

}  // namespace linux_fiber

namespace {

#ifdef ASYNCIO_TSAN
// Creating a TSan fiber context costs about a millisecond (TSan maps and clears a fresh thread
// state), which made task-heavy tests crawl: finished fibers' contexts are reused instead. The
// loop's switches order its fibers anyway, so reuse hides no race. A context keeps the shadow
// frames its finished tasks never returned from, so each serves a bounded number of tasks.
constexpr std::uintptr_t kTsanContextUses = 256;
constexpr int kTsanPoolSize = 2048;

struct TsanContext {
  void* handle;
  std::uintptr_t uses;
};

struct TsanPool {
  TsanContext free[kTsanPoolSize];
  int count = 0;
  ~TsanPool() {
    while (count > 0) __tsan_destroy_fiber(free[--count].handle);
  }
};

thread_local TsanPool tsan_pool;

// Under TSan, sanitizer_state[0] (ASan's fake stack, never in the same build) counts the uses.
void acquire_tsan_context(Fiber* fiber) {
  if (tsan_pool.count > 0) {
    const TsanContext context = tsan_pool.free[--tsan_pool.count];
    fiber->sanitizer_state[1] = context.handle;
    fiber->sanitizer_state[0] = reinterpret_cast<void*>(context.uses + 1);
    return;
  }
  fiber->sanitizer_state[1] = __tsan_create_fiber(0);
  fiber->sanitizer_state[0] = reinterpret_cast<void*>(std::uintptr_t{1});
}
#endif

void trampoline(linux_fiber::fcontext::transfer_t transfer) {
  Fiber* self = linux_fiber::after_jump(transfer);
  self->entry(self);
  fatal("asyncio: a fiber entry function returned");
}

}  // namespace

void make_fiber(Fiber* fiber) {
  void* top = static_cast<char*>(fiber->stack.base) + fiber->stack.size;
  fiber->context =
      linux_fiber::fcontext::make_fcontext(top, usable_stack_size(fiber->stack), &trampoline);
#ifdef ASYNCIO_TSAN
  acquire_tsan_context(fiber);
#endif
}

#ifdef ASYNCIO_TSAN
namespace linux_fiber {

void release_tsan_fiber(Fiber* finished) noexcept {
  const auto uses = reinterpret_cast<std::uintptr_t>(finished->sanitizer_state[0]);
  if (uses < kTsanContextUses && tsan_pool.count < kTsanPoolSize) {
    tsan_pool.free[tsan_pool.count++] = {finished->sanitizer_state[1], uses};
  } else {
    __tsan_destroy_fiber(finished->sanitizer_state[1]);
  }
  finished->sanitizer_state[0] = nullptr;
  finished->sanitizer_state[1] = nullptr;
}

}  // namespace linux_fiber
#endif

}  // namespace port
}  // namespace asyncio::detail
