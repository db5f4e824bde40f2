// Port of MicroPython's tests/extmod/asyncio_threadsafeflag.py: ThreadSafeFlag set before
// and after the wait, from a task and from outside the loop, and cleared.
//
// The Python test sets the flag once from micropython.schedule(); here a second thread sets
// it, joined before the task yields, which is the same "set from outside asyncio" case.
#include <thread>

#include "conformance.hpp"

namespace {

void task(int id, asyncio::ThreadSafeFlag& flag) {
  py::print("task", id);
  flag.wait();
  py::print("task", id, "done");
}

void set_from_schedule(asyncio::ThreadSafeFlag& flag) {
  flag.set();
}

void main_task() {
  asyncio::ThreadSafeFlag flag;

  // Set the flag from within the loop.
  auto t = asyncio::create_task(task, 1, std::ref(flag));
  py::print("yield");
  asyncio::sleep(0);
  py::print("set event");
  flag.set();
  py::print("yield");
  asyncio::sleep(0);
  py::print("wait task");
  t.wait();

  // Set the flag from outside the loop.
  py::print("----");
  t = asyncio::create_task(task, 2, std::ref(flag));
  py::print("yield");
  asyncio::sleep(0);
  py::print("set event");
  std::thread(set_from_schedule, std::ref(flag)).join();
  py::print("yield");
  asyncio::sleep(0);
  py::print("wait task");
  t.wait();

  // Set the flag before creating the task.
  py::print("----");
  py::print("set event");
  flag.set();
  t = asyncio::create_task(task, 3, std::ref(flag));
  py::print("yield");
  asyncio::sleep(0);
  py::print("wait task");
  t.wait();

  // Set the flag and then clear it before creating the task.
  py::print("----");
  py::print("set event");
  flag.set();
  py::print("yield");
  asyncio::sleep(0);
  py::print("clear event");
  flag.clear();
  py::print("yield");
  asyncio::sleep(0);
  t = asyncio::create_task(task, 4, std::ref(flag));
  py::print("yield");
  asyncio::sleep(0);
  py::print("set event");
  flag.set();
  py::print("yield");
  asyncio::sleep(0);
  py::print("wait task");
  t.wait();
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
