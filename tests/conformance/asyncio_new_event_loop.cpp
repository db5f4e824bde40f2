// Port of MicroPython's tests/extmod/asyncio_new_event_loop.py: a loop stopped and closed
// with a task still pending, then a new loop running the same program.
#include "conformance.hpp"

namespace {

asyncio::Loop* loop = nullptr;

void exception_handler(asyncio::Loop& the_loop, const asyncio::ExceptionContext& context) {
  // Don't print anything about the task left pending when the loop is closed.
  if (context.message != "Task was destroyed but it is pending!") {
    asyncio::Loop::default_exception_handler(the_loop, context);
  }
}

void task() {
  for (int i = 0; i < 4; ++i) {
    py::print("task", i);
    asyncio::sleep(0);
    asyncio::sleep(0);
  }
}

void main_task() {
  py::print("start");
  asyncio::create_task(task);
  asyncio::sleep(0);  // yields, meaning new task will run once
  py::print("stop");
  loop->stop();
}

void run_once(asyncio::Loop& the_loop) {
  loop = &the_loop;
  loop->set_exception_handler(exception_handler);
  asyncio::create_task(main_task);
  loop->run_forever();
  loop->close();
}

}  // namespace

int main() {
  // Use default event loop to run some tasks.
  run_once(asyncio::get_event_loop());
  // Create new event loop, old one should not keep running.
  run_once(asyncio::new_event_loop());
  return 0;
}
