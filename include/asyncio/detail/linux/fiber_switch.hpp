// The Linux port's context switch (port::switch_fiber), inline: it is the hottest call of the
// scheduler, and a program built without LTO must not pay a call chain for it. On x86-64 the
// register switch is our own (src/linux/fiber.cpp), Boost.Context's jump_fcontext elsewhere.
//
// Besides the registers, three pieces of per-thread state must follow a fiber:
//  - the C++ runtime's exception globals (caught-exception stack, uncaught count), or a task
//    that suspends inside a catch block would corrupt another task's `throw;`. Folly's fibers
//    swap them the same way;
//  - AddressSanitizer's idea of the current stack (fake stacks), when built with it;
//  - ThreadSanitizer's fiber handle, when built with it.
#pragma once

#include <boost/context/detail/fcontext.hpp>
#include <cstddef>
#include <cstdint>

#include "asyncio/detail/port.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ASYNCIO_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define ASYNCIO_TSAN 1
#endif

namespace asyncio::detail {

/// The fiber running on this thread (null before the first switch): the stack-overflow
/// handler uses it to name the task whose guard page was hit.
extern constinit thread_local const Fiber* running_fiber;

namespace port {
namespace linux_fiber {

#if defined(__x86_64__) && !defined(__CET__) && !defined(ASYNCIO_PER_TASK_FP_ENV)
/// Boost.Context's jump_fcontext without saving and reloading the floating-point control
/// words (MXCSR, x87 control word): reading MXCSR waits for every SSE instruction in flight,
/// a third of a switch on this path. So the tasks of a loop share their thread's
/// floating-point environment (docs/semantics.md#threads-signals-fork), as Seastar's threads
/// do; define ASYNCIO_PER_TASK_FP_ENV (library and program) to keep Boost's jump. Same frame
/// layout and calling convention. Not with control-flow protection (__CET__): Boost's build
/// knows the shadow stack.
namespace fcontext {
struct transfer_t {
  void* fctx;
  void* data;
};
extern "C" transfer_t asyncio_jump_context(void* to, void* data) noexcept;
extern "C" void* asyncio_make_context(void* top, std::size_t size,
                                      void (*entry)(transfer_t)) noexcept;
inline transfer_t jump_fcontext(void* to, void* data) noexcept {
  return asyncio_jump_context(to, data);
}
inline void* make_fcontext(void* top, std::size_t size, void (*entry)(transfer_t)) noexcept {
  return asyncio_make_context(top, size, entry);
}
}  // namespace fcontext
#else
namespace fcontext = boost::context::detail;
#endif

/// Mirrors libstdc++'s __cxa_eh_globals (unwind-cxx.h): the ABI has kept it stable.
struct ExceptionGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

/// Cached per thread: __cxa_get_globals() lives in libstdc++.so and costs a __tls_get_addr
/// call, a visible share of a ~20 ns switch; our own thread_local is a single load.
extern constinit thread_local ExceptionGlobals* exception_globals_cache;
[[gnu::cold]] ExceptionGlobals* load_exception_globals() noexcept;

#ifdef ASYNCIO_TSAN
/// Keeps a finished fiber's TSan context for the next make_fiber (src/linux/fiber.cpp).
void release_tsan_fiber(Fiber* finished) noexcept;
#endif

/// What the switching side hands to the resumed side; lives on the switcher's stack.
struct Switch {
  Fiber* from;
  Fiber* to;
  bool from_finished;
};

inline void swap_exception_state(Fiber* from, Fiber* to) noexcept {
  ExceptionGlobals* globals = exception_globals_cache;
  if (!globals) [[unlikely]] globals = load_exception_globals();
  from->exception_state[0] = globals->caught_exceptions;
  from->exception_state[1] =
      reinterpret_cast<void*>(static_cast<std::uintptr_t>(globals->uncaught_exceptions));
  globals->caught_exceptions = to->exception_state[0];
  globals->uncaught_exceptions =
      static_cast<unsigned int>(reinterpret_cast<std::uintptr_t>(to->exception_state[1]));
}

inline void before_jump([[maybe_unused]] const Switch& s) noexcept {
#ifdef ASYNCIO_ASAN
  __sanitizer_start_switch_fiber(s.from_finished ? nullptr : &s.from->sanitizer_state[0],
                                 s.to->stack.base, s.to->stack.size);
#endif
#ifdef ASYNCIO_TSAN
  if (!s.from->sanitizer_state[1]) s.from->sanitizer_state[1] = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(s.to->sanitizer_state[1], 0);
#endif
}

/// First thing on the resumed side: record where the switcher stopped.
inline Fiber* after_jump(fcontext::transfer_t transfer) noexcept {
  auto* s = static_cast<Switch*>(transfer.data);
  s->from->context = transfer.fctx;
#ifdef ASYNCIO_ASAN
  const void* old_bottom = nullptr;
  std::size_t old_size = 0;
  __sanitizer_finish_switch_fiber(s->to->sanitizer_state[0], &old_bottom, &old_size);
  if (!s->from->stack.base) {
    // The thread's own stack: ASan just told us its bounds; keep them for switches back.
    s->from->stack.base = const_cast<void*>(old_bottom);
    s->from->stack.size = old_size;
  }
#endif
#ifdef ASYNCIO_TSAN
  if (s->from_finished && s->from->sanitizer_state[1]) release_tsan_fiber(s->from);
#endif
  running_fiber = s->to;
  return s->to;
}

}  // namespace linux_fiber

inline void switch_fiber(Fiber* from, Fiber* to, bool from_finished) noexcept {
  linux_fiber::swap_exception_state(from, to);
  linux_fiber::Switch s{from, to, from_finished};
  linux_fiber::before_jump(s);
  linux_fiber::after_jump(linux_fiber::fcontext::jump_fcontext(to->context, &s));
}

}  // namespace port
}  // namespace asyncio::detail
