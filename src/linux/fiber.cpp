// Fibers on Boost.Context's fcontext: make_fiber of the port contract; switch_fiber is inline
// in asyncio/linux/fiber_switch.hpp.
#include <cxxabi.h>

#include "asyncio/detail/port.hpp"
#include "fiber_tracking.hpp"

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
  fiber->sanitizer_state[1] = __tsan_create_fiber(0);
#endif
}

}  // namespace port
}  // namespace asyncio::detail
