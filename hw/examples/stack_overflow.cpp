// stack_overflow: a task that outgrows its stack must stop the firmware with a message naming
// it, never run on with corrupted memory. The runner expects exactly that message and a
// failure exit.
//
// On the M0+ the core's check at the next switch finds the sentinel at the top of the guard
// destroyed ("asyncio: stack overflow in task 'hog'; give it a larger ..."); on the M33 the process-stack limit (PSPLIM)
// faults at the first push below the guard ("HardFault ... (stack overflow: PSPLIM) in task
// 'hog'").
#include <asyncio/asyncio.hpp>

#include "console.hpp"

namespace {

// Volatile stores the compiler cannot drop. 832 bytes plus the frames below it outgrow the
// 768 bytes above the 256-byte guard of a 1 KiB stack, and land in the guard.
[[gnu::noinline]] void use_stack() {
  volatile unsigned char buffer[832];
  for (auto& byte : buffer) byte = 0;
}

void hog() {
  use_stack();
  asyncio::sleep_ms(0);
}

}  // namespace

int main() {
  asyncio::run([] {
    asyncio::create_task(asyncio::TaskOptions{"hog", 1024}, hog).wait();
  });
  hw::print_line("not reached: the overflow went unnoticed");
  return 0;
}
