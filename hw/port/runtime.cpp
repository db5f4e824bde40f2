// What newlib and the C++ runtime expect from an operating system, for a bare-metal image
// linked with -nostartfiles and --specs=nano.specs: a heap, an exit, a write for printf.
#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "console.hpp"
#include "hal.hpp"

extern "C" {

// The heap: from the end of .bss to the handler stack (hw/<board>/*.ld). malloc grows it
// through _sbrk; failing here makes operator new throw std::bad_alloc instead of letting the
// heap run into the stacks (newlib's libnosys _sbrk has no limit).
extern char __heap_start[], __heap_end[];

void* _sbrk(std::ptrdiff_t increment) {
  static char* brk = __heap_start;
  if (increment > __heap_end - brk || increment < __heap_start - brk) {
    errno = ENOMEM;
    return reinterpret_cast<void*>(-1);
  }
  char* previous = brk;
  brk += increment;
  return previous;
}

// printf/puts from user code go to the console (newlib-nano: integer formats only unless the
// firmware links with -u _printf_float).
int _write(int fd, const char* data, int size) {
  if (fd != 1 && fd != 2) {
    errno = EBADF;
    return -1;
  }
  hal::console_write(data, static_cast<std::size_t>(size));
  return size;
}

// A failed assert() (the core keeps them in debug builds). newlib's own version formats the
// message with fiprintf, which links the whole printf family: about 3 KiB of flash.
[[noreturn]] void __assert_func(const char* file, int line, const char* function,
                                const char* expression) {
  hw::print("FATAL: assertion failed: ");
  hw::print(expression);
  hw::print(" in ");
  hw::print(function ? function : "?");
  hw::print(" at ");
  hw::print(file);
  hw::print(":");
  hw::print_int(line);
  hw::print_line("");
  hal::exit(3);
}

// exit(), abort() and std::terminate() end up here.
[[noreturn]] void _exit(int code) { hal::exit(code == 0 ? 0 : 3); }

// Normally defined by crtbegin.o, which -nostartfiles drops; libstdc++ refers to it when it
// registers static destructors (which never run here: main does not return to anything).
void* __dso_handle = &__dso_handle;

}  // extern "C"
