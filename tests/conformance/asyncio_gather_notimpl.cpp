// Port of MicroPython's tests/extmod/asyncio_gather_notimpl.py: awaiting a task that a gather
// waits on, and gathering a task that another task already awaits.
#include "conformance.hpp"

namespace {

void custom_handler(asyncio::Loop&, const asyncio::ExceptionContext& context) {
  py::print(py::repr(context.exception));
}

int task(int id) {
  py::print("task start", id);
  asyncio::sleep(0.01);
  py::print("task end", id);
  return id;
}

void gather_task(asyncio::Task<int> t0, asyncio::Task<int> t1) {
  py::print("gather_task start");
  asyncio::gather(t0, t1);
  py::print("gather_task end");
}

void main_task() {
  asyncio::get_event_loop().set_exception_handler(custom_handler);

  // Test case where can't wait on a task being gathered.
  auto t0 = asyncio::create_task(task, 1);
  auto t1 = asyncio::create_task(task, 2);
  auto gt = asyncio::create_task(gather_task, t0, t1);
  asyncio::sleep(0);  // let the gather start
  try {
    t0.wait();  // MicroPython cannot await this task because it is part of the gather
  } catch (const asyncio::RuntimeError&) {
    py::print(py::repr(std::current_exception()));
  }
  gt.wait();

  py::print("====");

  // Test case where can't gather on a task being waited.
  t0 = asyncio::create_task(task, 1);
  t1 = asyncio::create_task(task, 2);
  asyncio::create_task(gather_task, t0, t1);
  t0.wait();  // wait on this task before the gather starts
  t1.wait();
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
