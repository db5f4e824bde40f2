// Port of MicroPython's tests/extmod/asyncio_exception.py: an exception raised by the main
// task, by an awaited task, and by main while another task is pending reaches run()'s caller.
#include "conformance.hpp"

namespace {

void print_value_error(const asyncio::ValueError& er) {
  std::string args = er.what();
  if (!args.empty() && args.back() == ',') args.pop_back();
  py::print("ValueError", args);
}

// main() raises an exception directly.
void main1() {
  py::print("main start");
  throw py::value_error("1,");
}

// main() raises an exception through a task it awaits.
void task2() {
  py::print("task start");
  throw py::value_error("2,");
}

void main2() {
  py::print("main start");
  auto t = asyncio::create_task(task2);
  t.wait();
  py::print("main done");
}

// main() raises an exception while a task is pending.
void task3() {}

void main3() {
  py::print("main start");
  asyncio::create_task(task3);
  throw py::value_error("3,");
}

template <class Main>
void run_and_catch(Main main_task) {
  try {
    asyncio::run(main_task);
  } catch (const asyncio::ValueError& er) {
    print_value_error(er);
  }
}

}  // namespace

int main() {
  run_and_catch(main1);
  run_and_catch(main2);
  run_and_catch(main3);
  return 0;
}
