// Port of MicroPython's tests/extmod/asyncio_wait_task.py: awaiting a task once or twice,
// before and after it finishes, and awaiting one that raised.
#include "conformance.hpp"

namespace {

void task(int t) {
  py::print("task", t);
}

void delay_print(double t, const char* s) {
  asyncio::sleep(t);
  py::print(s);
}

void task_raise() {
  py::print("task_raise");
  throw py::value_error();
}

void main_task() {
  py::print("start");

  // Wait on a task.
  auto t = asyncio::create_task(task, 1);
  t.wait();

  // Wait on a task that's already done.
  t = asyncio::create_task(task, 2);
  asyncio::sleep(0.001);
  t.wait();

  // Wait again on same task.
  t.wait();

  py::print("----");

  // Create 2 tasks.
  auto ts1 = asyncio::create_task(delay_print, 0.2, "hello");
  auto ts2 = asyncio::create_task(delay_print, 0.4, "world");

  // Time how long the tasks take to finish, they should execute in parallel.
  py::print("start");
  const auto t0 = py::ticks_ms();
  ts1.wait();
  const auto t1 = py::ticks_ms();
  ts2.wait();
  const auto t2 = py::ticks_ms();
  std::printf("took %lld %lld\n", static_cast<long long>(py::took(t1 - t0, 200)),
              static_cast<long long>(py::took(t2 - t1, 200)));

  // Wait on a task that raises an exception.
  t = asyncio::create_task(task_raise);
  try {
    t.wait();
  } catch (const asyncio::ValueError&) {
    py::print("ValueError");
  }

  // Wait on a task that raises, but the waiter won't start until after the task finishes.
  asyncio::get_event_loop().set_exception_handler(
      [](asyncio::Loop&, const asyncio::ExceptionContext&) {});
  t = asyncio::create_task(task_raise);
  for (int i = 0; i < 5; ++i) asyncio::sleep(0);
  try {
    t.wait();
  } catch (const asyncio::ValueError&) {
    py::print("ValueError");
  }
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
