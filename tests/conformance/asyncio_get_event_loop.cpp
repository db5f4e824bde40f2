// Port of MicroPython's tests/extmod/asyncio_get_event_loop.py: get_event_loop() outside a
// task, then run_until_complete().
#include "conformance.hpp"

namespace {

void main_task() {
  py::print("start");
  asyncio::sleep(0.01);
  py::print("end");
}

}  // namespace

int main() {
  asyncio::Loop& loop = asyncio::get_event_loop();
  (void)loop;  // MicroPython's loop.run_until_complete() is a free function here
  asyncio::run_until_complete(asyncio::create_task(main_task));
  return 0;
}
