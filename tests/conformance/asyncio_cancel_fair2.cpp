// Port of MicroPython's tests/extmod/asyncio_cancel_fair2.py: several tasks cancelling one
// task repeatedly.
#include "conformance.hpp"

namespace {

void task_a() {
  try {
    while (true) {
      py::print("sleep a");
      asyncio::sleep(0);
    }
  } catch (const asyncio::CancelledError&) {
    py::print("cancelled a");
  }
}

void task_b(int id, asyncio::Task<void> other) {
  while (other.cancel()) {
    py::print("sleep b", id);
    asyncio::sleep(0);
  }
  py::print("done b", id);
}

void main_task() {
  auto t = asyncio::create_task(task_a);
  for (int i = 0; i < 3; ++i) asyncio::create_task(task_b, i, t);
  t.wait();
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
