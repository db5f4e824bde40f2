// Port of MicroPython's tests/extmod/asyncio_cancel_fair.py: tasks cancelling each other in
// turn are all still scheduled fairly.
#include <vector>

#include "conformance.hpp"

namespace {

std::vector<asyncio::Task<void>> tasks;

void task(int id, int other) {
  for (int i = 0; i < 3; ++i) {
    try {
      py::print("start", id);
      asyncio::sleep(0);
      py::print("done", id);
    } catch (const asyncio::CancelledError&) {
      py::print("cancelled", id);
    }
    if (other >= 0) {
      py::print(id, "cancels", other);
      tasks[static_cast<std::size_t>(other)].cancel();
    }
  }
}

void main_task() {
  tasks = {
      asyncio::create_task(task, 0, 1),
      asyncio::create_task(task, 1, 0),
      asyncio::create_task(task, 2, -1),
  };
  tasks[2].wait();
  tasks.clear();
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
