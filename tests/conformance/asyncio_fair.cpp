// Port of MicroPython's tests/extmod/asyncio_fair.py: tasks sleeping for negative times do
// not starve the tasks sleeping for positive ones.
//
// Every time is 4 times the Python test's (t2 prints 5 times if its first four wake-ups are
// together less than 50 ms late there): a loaded machine preempts this busy process, and the
// order must not depend on its speed. The printed lines are the same.
#include "conformance.hpp"

namespace {

void task(int id, double t) {
  py::print("task start", id);
  while (true) {
    if (t > 0) py::print("task work", id);
    asyncio::sleep(t);
  }
}

void main_task() {
  auto t1 = asyncio::create_task(task, 1, -0.01);
  auto t2 = asyncio::create_task(task, 2, 0.4);
  auto t3 = asyncio::create_task(task, 3, 0.72);
  auto t4 = asyncio::create_task(task, 4, -100);
  asyncio::sleep(1.8);  // t2 prints 5 times, t3 prints 3 times
  t1.cancel();
  t2.cancel();
  t3.cancel();
  t4.cancel();
  py::print("finish");
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
