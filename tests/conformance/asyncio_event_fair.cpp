// Port of MicroPython's tests/extmod/asyncio_event_fair.py: tasks that set, clear and wait on
// an Event in a loop do not starve the others.
#include "conformance.hpp"

namespace {

void task1(int id) {
  for (int i = 0; i < 4; ++i) {
    py::print("sleep", id);
    asyncio::sleep(0);
  }
}

void task2(int id, asyncio::Event& ev) {
  for (int i = 0; i < 4; ++i) {
    ev.set();
    ev.clear();
    py::print("wait", id);
    ev.wait();
  }
}

void main_task() {
  asyncio::Event ev;
  auto t0 = asyncio::create_task(task1, 0);
  auto t1 = asyncio::create_task(task2, 2, std::ref(ev));
  auto t2 = asyncio::create_task(task1, 1);
  auto t3 = asyncio::create_task(task2, 3, std::ref(ev));
  t1.wait();
  ev.set();
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
