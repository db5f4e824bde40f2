// Port of MicroPython's tests/extmod/asyncio_current_task.py: current_task() inside a task is
// that task, outside any task it raises RuntimeError.
#include "conformance.hpp"

namespace {

void task(asyncio::TaskBase* result) {
  *result = asyncio::current_task();
}

void main_task() {
  asyncio::TaskBase result;
  auto t = asyncio::create_task(task, &result);
  asyncio::sleep(0);
  asyncio::sleep(0);
  py::print(t == result);
}

void print_current_task() {
  try {
    py::print(asyncio::current_task().name());
  } catch (const asyncio::RuntimeError&) {
    py::print("RuntimeError");
  }
}

}  // namespace

int main() {
  print_current_task();
  asyncio::run(main_task);
  print_current_task();
  return 0;
}
