// Port of MicroPython's tests/extmod/asyncio_wait_for.py: wait_for() returning a value,
// timing out, forwarding an exception or a cancellation, and being cancelled itself.
//
// A timeout of None is -1.
//
// Every time is 4 times the Python test's: a task created just before a 10 ms sleep must have
// started by the time the sleep ends, which a loaded machine (or a sanitizer) does not always
// manage in 10 ms. The printed lines are the same.
#include <cstdlib>

#include "conformance.hpp"

namespace {

constexpr double kTimeScale = 4;

int task(int id, double t) {
  py::print("task start", id);
  asyncio::sleep(t);
  py::print("task end", id);
  return id * 2;
}

void task_catch() {
  py::print("task_catch start");
  try {
    asyncio::sleep(kTimeScale * 0.2);
  } catch (const asyncio::CancelledError&) {
    py::print("ignore cancel");
  }
  py::print("task_catch done");
}

void task_raise() {
  py::print("task start");
  throw py::value_error();
}

void task_cancel_other(double t, asyncio::Task<int> other) {
  py::print("task_cancel_other start");
  asyncio::sleep(t);
  py::print("task_cancel_other cancel");
  other.cancel();
}

void task_wait_for_cancel(int id, double t, double t_wait) {
  py::print("task_wait_for_cancel start");
  try {
    asyncio::wait_for([=] { return task(id, t); }, t_wait);
  } catch (const asyncio::CancelledError&) {
    py::print("task_wait_for_cancel cancelled");
    throw;
  }
}

void task_wait_for_cancel_ignore(double t_wait) {
  py::print("task_wait_for_cancel_ignore start");
  try {
    asyncio::wait_for(task_catch, t_wait);
  } catch (const asyncio::CancelledError&) {
    py::print("task_wait_for_cancel_ignore cancelled");
    throw;
  }
}

void main_task() {
  const char* sep = "----------";

  // When wait_for succeeds.
  py::print(asyncio::wait_for([] { return task(1, kTimeScale * 0.01); }, kTimeScale * 10));

  py::print(sep);

  // When wait_for times out.
  try {
    py::print(asyncio::wait_for([] { return task(2, kTimeScale * 10); }, kTimeScale * 0.01));
  } catch (const asyncio::TimeoutError&) {
    py::print("timeout");
  }

  py::print(sep);

  // When wait_for times out but the task ignores the cancel and finishes on its own.
  try {
    asyncio::wait_for(task_catch, kTimeScale * 0.1);
    py::print("None");
  } catch (const asyncio::TimeoutError&) {
    py::print("TimeoutError");
  }

  py::print(sep);

  // When the task raises an exception.
  try {
    asyncio::wait_for(task_raise, kTimeScale * 1);
    py::print("None");
  } catch (const asyncio::ValueError&) {
    py::print("ValueError");
  }

  py::print(sep);

  // Timeout of None means wait forever.
  py::print(asyncio::wait_for([] { return task(3, kTimeScale * 0.1); }, -1.0));

  py::print(sep);

  // When the task is cancelled by another task.
  auto t = asyncio::create_task(task, 4, kTimeScale * 10);
  asyncio::create_task(task_cancel_other, kTimeScale * 0.01, t);
  try {
    py::print(asyncio::wait_for(t, kTimeScale * 1));
  } catch (const asyncio::CancelledError&) {
    py::print(py::repr(std::current_exception()));
  }

  py::print(sep);

  // When the wait_for task is cancelled.
  auto w = asyncio::create_task(task_wait_for_cancel, 4, kTimeScale * 1, kTimeScale * 2);
  asyncio::sleep(kTimeScale * 0.01);
  w.cancel();
  asyncio::sleep(kTimeScale * 0.01);

  py::print(sep);

  // When the wait_for task is cancelled and the task it's waiting on ignores the cancel.
  w = asyncio::create_task(task_wait_for_cancel_ignore, kTimeScale * 2);
  asyncio::sleep(kTimeScale * 0.01);
  w.cancel();
  asyncio::sleep(kTimeScale * 0.01);

  py::print(sep);

  // When the current task doing the wait_for is cancelled at different stages.
  for (int num_sleep = 1; num_sleep < 5; ++num_sleep) {
    w = asyncio::create_task(task_wait_for_cancel, 4 + num_sleep, 0, kTimeScale * 2);
    for (int i = 0; i < num_sleep; ++i) asyncio::sleep(0);
    if (w.done()) {
      std::fputs("assert not t.done() failed\n", stderr);
      std::exit(1);
    }
    py::print("cancel wait_for");
    w.cancel();
    try {
      w.wait();
    } catch (const asyncio::CancelledError&) {
      py::print(py::repr(std::current_exception()));
    }
    py::print(sep);
  }

  py::print("finish");
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
