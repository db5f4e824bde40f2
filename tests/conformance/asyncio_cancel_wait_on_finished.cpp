// Port of MicroPython's tests/extmod/asyncio_cancel_wait_on_finished.py: cancelling a task
// that awaits a task which has just finished.
#include "conformance.hpp"

namespace {

void sleep_task() {
  py::print("sleep_task sleep");
  asyncio::sleep(0);
  py::print("sleep_task wake");
}

void wait_task(asyncio::Task<void> t) {
  py::print("wait_task wait");
  t.wait();
  py::print("wait_task wake");
}

void main_task() {
  auto waiting_task = asyncio::create_task(wait_task, asyncio::create_task(sleep_task));

  py::print("main sleep");
  asyncio::sleep(0);
  py::print("main sleep");
  asyncio::sleep(0);

  waiting_task.cancel();
  py::print("main wait");
  try {
    waiting_task.wait();
  } catch (const asyncio::CancelledError&) {
    py::print(py::repr(std::current_exception()));
  }
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
