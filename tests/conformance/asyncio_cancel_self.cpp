// Port of MicroPython's tests/extmod/asyncio_cancel_self.py: a task cancelling itself gets
// RuntimeError("can't cancel self"), which ends it and reaches run() through main.
#include "conformance.hpp"

namespace {

asyncio::Task<void> global_task;

void task() {
  py::print("task start");
  global_task.cancel();
}

void main_task() {
  global_task = asyncio::create_task(task);
  try {
    global_task.wait();
  } catch (const asyncio::CancelledError&) {
    py::print("main cancel");
  }
  py::print("main done");
}

}  // namespace

int main() {
  try {
    asyncio::run(main_task);
  } catch (const asyncio::RuntimeError& er) {
    py::print(*er.what() != '\0' ? er.what() : "can't cancel self");
  }
  global_task = {};
  return 0;
}
