// Port of MicroPython's tests/extmod/asyncio_task_done.py: Task.done() before a task runs,
// while it sleeps, and after it returns or raises.
#include "conformance.hpp"

namespace {

void task(double t, bool raise) {
  py::print("task start");
  if (t >= 0) asyncio::sleep(t);
  if (raise) throw py::value_error();
  py::print("task done");
}

void await_printing_error(const asyncio::Task<void>& t) {
  try {
    t.wait();
  } catch (const asyncio::ValueError&) {
    py::print(py::repr(std::current_exception()));
  }
}

void main_task() {
  // Task that finishes immediately.
  py::print("==========");
  auto t = asyncio::create_task(task, -1, false);
  py::print(t.done());
  asyncio::sleep(0);
  py::print(t.done());
  t.wait();
  py::print(t.done());

  // Task that starts, runs and finishes.
  py::print("==========");
  t = asyncio::create_task(task, 0.01, false);
  py::print(t.done());
  asyncio::sleep(0);
  py::print(t.done());
  t.wait();
  py::print(t.done());

  // Task that raises immediately.
  py::print("==========");
  t = asyncio::create_task(task, -1, true);
  py::print(t.done());
  asyncio::sleep(0);
  py::print(t.done());
  await_printing_error(t);
  py::print(t.done());

  // Task that raises after a delay.
  py::print("==========");
  t = asyncio::create_task(task, 0.01, true);
  py::print(t.done());
  asyncio::sleep(0);
  py::print(t.done());
  await_printing_error(t);
  py::print(t.done());
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
