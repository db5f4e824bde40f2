// Port of MicroPython's tests/extmod/asyncio_basic2.py: run() returns main's value while
// another task still sleeps.
#include "conformance.hpp"

namespace {

void forever() {
  py::print("forever start");
  asyncio::sleep(10);
}

int main_task() {
  py::print("main start");
  asyncio::create_task(forever);
  asyncio::sleep(0.001);
  py::print("main done");
  return 42;
}

}  // namespace

int main() {
  py::print(asyncio::run(main_task));
  return 0;
}
