// Task stacks: pooled, lazily committed, each with overflow detection.
//
// Stacks are carved from slabs mapped with MAP_NORESERVE, so a sleeping task costs only the
// pages it touched (about one). A guard page below each stack catches an overflow the moment
// it happens. Where the kernel has guard regions (MADV_GUARD_INSTALL, Linux 6.13), a guard
// costs nothing more and every stack gets one. Otherwise a guard is a PROT_NONE page, which
// splits the slab mapping, and vm.max_map_count (65530 by default) caps a process at that many
// mappings, so with 100,000 tasks the later stacks go without. On those, a sentinel at the
// stack's limit and a check of the stack pointer, both made by the core at every switch, catch
// it instead, at the cost of one more resident page per stack.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "asyncio/detail/port.hpp"
#include "asyncio/detail/task_record.hpp"
#include "fiber_tracking.hpp"
#include "log.hpp"

// Older C library headers lack it; the kernel answers EINVAL where it is unknown.
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace asyncio::detail::port {
namespace {

constexpr std::size_t kPage = 4096;
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kDefaultStackSize = 256 * 1024;  // ASan's redzones triple frame sizes
#else
constexpr std::size_t kDefaultStackSize = 128 * 1024;  // Boost.Fiber's default, lazily committed
#endif
constexpr std::size_t kStacksPerSlab = 64;
// Stacks handed out with a guard page take two mappings each; use at most this share of
// vm.max_map_count for them, leaving the rest (16k of the default 65530) to the program.
constexpr long kGuardShareNumerator = 3;
constexpr long kGuardShareDenominator = 4;

long read_max_map_count() {
  long value = 65530;  // the kernel's default (DEFAULT_MAX_MAP_COUNT)
  if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    if (std::fscanf(f, "%ld", &value) != 1) value = 65530;
    std::fclose(f);
  }
  return value;
}


void install_overflow_handler();

/// Free stacks by size. Shared by every thread's loop behind a mutex: a stack is taken only
/// when a task is created, never on a switch.
class StackPool {
 public:
  Stack allocate(std::size_t size) {
    std::lock_guard<std::mutex> guard(mutex_);
    auto& free_list = free_[size];
    if (free_list.empty()) refill(size, free_list);
    const Slot slot = free_list.back();
    free_list.pop_back();
    Stack stack;
    stack.base = slot.base;
    stack.size = size;
    stack.limit = static_cast<char*>(slot.base) + kPage;
    if (!slot.guarded) {
      // No guard page: a sentinel at the limit catches what the stack-pointer check misses.
      // It costs this stack one more resident page, which is why guard pages come first.
      stack.sentinel = static_cast<std::uint64_t*>(stack.limit);
      *stack.sentinel = kStackSentinel;
    }
    return stack;
  }

  void release(Stack stack) {
    std::lock_guard<std::mutex> guard(mutex_);
    free_[stack.size].push_back({stack.base, stack.sentinel == nullptr});
  }

 private:
  struct Slot {
    void* base;
    bool guarded;
  };

  void refill(std::size_t size, std::vector<Slot>& free_list) {
    const std::size_t bytes = size * kStacksPerSlab;
    void* slab = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (slab == MAP_FAILED) throw std::bad_alloc();
    slabs_.emplace_back(slab, bytes);
    static const long guard_budget =
        read_max_map_count() * kGuardShareNumerator / kGuardShareDenominator / 2;
    // Push in reverse so that stacks are handed out in address order.
    for (std::size_t i = kStacksPerSlab; i-- > 0;) {
      char* base = static_cast<char*>(slab) + i * size;
      bool guarded = install_guard_region(base);
      if (!guarded && guarded_stacks() < guard_budget && mprotect(base, kPage, PROT_NONE) == 0) {
        ++guarded_stacks();
        guarded = true;
      }
      free_list.push_back({base, guarded});
    }
  }

  /// A guard region that leaves the mapping whole, where the kernel has them.
  static bool install_guard_region(char* page) {
    static bool available = true;  // process-wide: a kernel without them never gains them
    if (!available) return false;
    if (madvise(page, kPage, MADV_GUARD_INSTALL) == 0) return true;
    available = false;
    log_message(LogLevel::debug, std::string("stack guards: PROT_NONE pages while the mapping "
                                             "limit allows (MADV_GUARD_INSTALL: ") +
                                     std::strerror(errno) + ")");
    return false;
  }

  static long& guarded_stacks() {
    static long count = 0;  // process-wide: the mapping limit is per process
    return count;
  }

  std::mutex mutex_;
  std::map<std::size_t, std::vector<Slot>> free_;
  std::vector<std::pair<void*, std::size_t>> slabs_;
};

// Never destroyed: loops closed by thread-exit or static destructors still return stacks.
StackPool& pool = *new StackPool;

// ---- Guard-page faults ----

[[maybe_unused]] struct sigaction previous_segv_action;

[[maybe_unused]] void write_text(const char* text) {
  ssize_t ignored = write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

/// SIGSEGV on the alternate stack: if the fault hit the running task's guard page, say so and
/// name the task; otherwise restore the previous action and let the fault happen again.
[[maybe_unused]] void on_segv(int signal, siginfo_t* info, void* context) {
  const Fiber* fiber = running_fiber;
  const char* address = static_cast<const char*>(info->si_addr);
  if (fiber && fiber->stack.base && address >= static_cast<const char*>(fiber->stack.base) &&
      address < static_cast<const char*>(fiber->stack.base) + kPage) {
    write_text("asyncio: stack overflow in task '");
    write_text(static_cast<const TaskRecord*>(fiber)->name.c_str());
    write_text("' (guard page hit); give it a larger stack with TaskOptions::stack_size\n");
    _exit(134);
  }
  (void)signal;
  (void)context;
  sigaction(SIGSEGV, &previous_segv_action, nullptr);
}

void install_overflow_handler() {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // Each thread needs its own alternate stack: the faulting stack has no room left.
  thread_local std::vector<char> alternate_stack;
  if (alternate_stack.empty()) {
    alternate_stack.resize(64 * 1024);
    stack_t ss{};
    ss.ss_sp = alternate_stack.data();
    ss.ss_size = alternate_stack.size();
    sigaltstack(&ss, nullptr);
  }
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_sigaction = &on_segv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_segv_action);
  });
#endif
}

}  // namespace

Stack allocate_stack(std::size_t size) {
  if (size == 0) size = kDefaultStackSize;
  if (size < 4 * kPage) size = 4 * kPage;
  size = (size + kPage - 1) / kPage * kPage;
  install_overflow_handler();
  return pool.allocate(size);
}

void release_stack(Stack stack) noexcept {
  if (!stack.base) return;
#if defined(__SANITIZE_ADDRESS__)
  // A finished task never returns from its last switch: the redzones of the frames it stood
  // in stay poisoned, and the next task on this stack would trip over them.
  ASAN_UNPOISON_MEMORY_REGION(stack.limit, stack.size - kPage);
#endif
  pool.release(stack);
}

std::size_t usable_stack_size(const Stack& stack) {
  return stack.size - kPage - sizeof(std::uint64_t) * 2;
}

}  // namespace asyncio::detail::port
