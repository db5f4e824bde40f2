// Port of MicroPython's tests/extmod/asyncio_micropython.py: sleep_ms() and wait_for_ms().
//
// The Python test also sleeps for half the range of MicroPython's wrapping millisecond ticks
// and expects OverflowError; here sleep_ms() takes 64-bit milliseconds with no wrap, so that
// call would just sleep for six days and is left out (asyncio_micropython.exp.patch).
#include "conformance.hpp"

namespace {

int task(int id, int t) {
  py::print("task start", id);
  asyncio::sleep_ms(t);
  py::print("task end", id);
  return id * 2;
}

void main_task() {
  // Test sleep_ms.
  const auto t0 = py::ticks_ms();
  asyncio::sleep_ms(1);
  py::print(py::ticks_ms() - t0 < 100);

  // Test wait_for_ms.
  py::print(asyncio::wait_for_ms([] { return task(1, 5); }, 50));
  try {
    py::print(asyncio::wait_for_ms([] { return task(2, 50); }, 5));
  } catch (const asyncio::TimeoutError&) {
    py::print("timeout");
  }

  py::print("finish");
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
