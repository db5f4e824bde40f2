// Port of MicroPython's tests/extmod/asyncio_set_exception_handler.py: a custom exception
// handler gets the exceptions nobody retrieved, and not one that is awaited a turn later.
#include <string>

#include "conformance.hpp"

namespace {

using HandlerFunction = void (*)(asyncio::Loop&, const asyncio::ExceptionContext&);

void custom_handler(asyncio::Loop&, const asyncio::ExceptionContext& context) {
  py::print("custom_handler", py::repr(context.exception));
}

void task(int i) {
  throw py::value_error(std::to_string(i) + ", " + std::to_string(i + 1));
}

void main_task() {
  asyncio::Loop& loop = asyncio::get_event_loop();

  // Set exception handler and test it was set.
  py::print(loop.get_exception_handler() ? "set" : "None");
  loop.set_exception_handler(custom_handler);
  const auto handler = loop.get_exception_handler();
  const auto* function = handler.target<HandlerFunction>();
  py::print(function != nullptr && *function == custom_handler);

  // Create a task that raises and uses the custom exception handler.
  asyncio::create_task(task, 0);
  py::print("sleep");
  for (int i = 0; i < 2; ++i) asyncio::sleep(0);

  // Create 2 tasks to test order of printing exception.
  asyncio::create_task(task, 1);
  asyncio::create_task(task, 2);
  py::print("sleep");
  for (int i = 0; i < 2; ++i) asyncio::sleep(0);

  // Create a task, let it run, then await it (no exception should be printed).
  auto t = asyncio::create_task(task, 3);
  asyncio::sleep(0);
  try {
    t.wait();
  } catch (const asyncio::ValueError&) {
    py::print(py::repr(std::current_exception()));
  }

  py::print("done");
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
