// Port of MicroPython's tests/extmod/asyncio_cancel_task.py: cancelling a task before it
// starts, while it sleeps, repeatedly, after it ends, and while it awaits another task.
//
// Every time is 4 times the Python test's: a task created just before a 10 ms sleep must have
// started by the time the sleep ends, which a loaded machine (or a sanitizer) does not always
// manage in 10 ms. The printed lines are the same.
#include "conformance.hpp"

namespace {

constexpr double kTimeScale = 4;

void task(double s, bool allow_cancel) {
  try {
    py::print("task start");
    asyncio::sleep(s);
    py::print("task done");
  } catch (const asyncio::CancelledError&) {
    py::print("task cancel");
    if (allow_cancel) throw;
  }
}

void task2(bool allow_cancel) {
  py::print("task 2");
  try {
    asyncio::create_task(task, kTimeScale * 0.05, allow_cancel).wait();
  } catch (const asyncio::CancelledError&) {
    py::print("task 2 cancel");
    throw;
  }
  py::print("task 2 done");
}

void main_task() {
  // Cancel task immediately.
  auto t = asyncio::create_task(task, kTimeScale * 2, true);
  py::print(t.cancel());

  // Cancel task after it has started.
  t = asyncio::create_task(task, kTimeScale * 2, true);
  asyncio::sleep(kTimeScale * 0.01);
  py::print(t.cancel());
  py::print("main sleep");
  asyncio::sleep(kTimeScale * 0.01);

  // Cancel task multiple times after it has started.
  t = asyncio::create_task(task, kTimeScale * 2, true);
  asyncio::sleep(kTimeScale * 0.01);
  for (int i = 0; i < 4; ++i) py::print(t.cancel());
  py::print("main sleep");
  asyncio::sleep(kTimeScale * 0.01);

  // Await on a cancelled task.
  py::print("main wait");
  try {
    t.wait();
  } catch (const asyncio::CancelledError&) {
    py::print("main got CancelledError");
  }

  // Cancel task after it has finished.
  t = asyncio::create_task(task, kTimeScale * 0.01, false);
  asyncio::sleep(kTimeScale * 0.05);
  py::print(t.cancel());

  // Nested: task2 waits on task, task2 is cancelled (should cancel task then task2).
  py::print("----");
  t = asyncio::create_task(task2, true);
  asyncio::sleep(kTimeScale * 0.01);
  py::print("main cancel");
  t.cancel();
  py::print("main sleep");
  asyncio::sleep(kTimeScale * 0.1);

  // Nested: task2 waits on task, task2 is cancelled but task doesn't allow it (task2 should
  // continue).
  py::print("----");
  t = asyncio::create_task(task2, false);
  asyncio::sleep(kTimeScale * 0.01);
  py::print("main cancel");
  t.cancel();
  py::print("main sleep");
  asyncio::sleep(kTimeScale * 0.1);
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
