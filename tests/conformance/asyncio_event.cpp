// Port of MicroPython's tests/extmod/asyncio_event.py: Event set/clear/wait, waiters woken
// together, a waiter cancelled around set(), and wait_for on Event.wait().
#include "conformance.hpp"

namespace {

void task(int id, asyncio::Event& ev) {
  py::print("start", id);
  py::print(py::returned([&] { return ev.wait(); }));
  py::print("end", id);
}

void task_delay_set(double t, asyncio::Event& ev) {
  asyncio::sleep(t);
  py::print("set event");
  ev.set();
}

void main_task() {
  // Set and clear without anything waiting, and test is_set().
  asyncio::Event ev;
  py::print(ev.is_set());
  ev.set();
  py::print(ev.is_set());
  ev.clear();
  py::print(ev.is_set());

  // Create 2 tasks waiting on the event.
  py::print("----");
  asyncio::create_task(task, 1, std::ref(ev));
  asyncio::create_task(task, 2, std::ref(ev));
  py::print("yield");
  asyncio::sleep(0);
  py::print("set event");
  ev.set();
  py::print("yield");
  asyncio::sleep(0);

  // Create a task waiting on the already-set event.
  py::print("----");
  asyncio::create_task(task, 3, std::ref(ev));
  py::print("yield");
  asyncio::sleep(0);

  // Clear event, start a task, then set event again.
  py::print("----");
  py::print("clear event");
  ev.clear();
  asyncio::create_task(task, 4, std::ref(ev));
  asyncio::sleep(0);
  py::print("set event");
  ev.set();
  asyncio::sleep(0);

  // Cancel a task waiting on an event (set event then cancel task).
  py::print("----");
  {
    asyncio::Event ev5;
    auto t = asyncio::create_task(task, 5, std::ref(ev5));
    asyncio::sleep(0);
    ev5.set();
    t.cancel();
    asyncio::sleep(0.1);
  }

  // Cancel a task waiting on an event (cancel task then set event).
  py::print("----");
  asyncio::Event ev6;
  auto t = asyncio::create_task(task, 6, std::ref(ev6));
  asyncio::sleep(0);
  t.cancel();
  ev6.set();
  asyncio::sleep(0.1);

  // Wait for an event that does get set in time.
  py::print("----");
  ev6.clear();
  asyncio::create_task(task_delay_set, 0.01, std::ref(ev6));
  asyncio::wait_for([&] { return ev6.wait(); }, 0.1);
  asyncio::sleep(0);

  // Wait for an event that doesn't get set in time.
  py::print("----");
  ev6.clear();
  asyncio::create_task(task_delay_set, 0.1, std::ref(ev6));
  try {
    asyncio::wait_for([&] { return ev6.wait(); }, 0.01);
  } catch (const asyncio::TimeoutError&) {
    py::print("TimeoutError");
  }
  ev6.wait();
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
