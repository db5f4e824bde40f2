// Port of MicroPython's tests/extmod/asyncio_loop_stop.py: Loop.stop() before and while
// tasks run, and run_forever() resuming where it stopped.
#include "conformance.hpp"

namespace {

asyncio::Loop* loop = nullptr;

void task() {
  py::print("task");
}

void main_task() {
  py::print("start");

  // Stop the loop after next yield.
  loop->stop();

  // Check that calling stop() again doesn't do/break anything.
  loop->stop();

  // This await should stop.
  py::print("sleep");
  asyncio::sleep(0);

  // Schedule stop, then create a new task, so the task will run after the loop stops.
  loop->stop();
  asyncio::create_task(task);

  // This await should stop.
  asyncio::sleep(0);
  py::print("end");
  loop->stop();
}

}  // namespace

int main() {
  loop = &asyncio::new_event_loop();
  asyncio::create_task(main_task);
  for (int i = 0; i < 3; ++i) {
    py::print("run", i);
    loop->run_forever();
  }
  return 0;
}
