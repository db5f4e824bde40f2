// Port of MicroPython's tests/extmod/asyncio_lock_cancel.py: cancelling waiters of a Lock
// just before it is released hands it to the next waiter that was not cancelled.
#include "conformance.hpp"

namespace {

void task(int i, asyncio::Lock& lock, bool& lock_flag) {
  py::print("task", i, "start");
  try {
    lock.acquire();
  } catch (const asyncio::CancelledError&) {
    py::print("task", i, "cancel");
    return;
  }
  py::print("task", i, "lock_flag", lock_flag);
  lock_flag = true;
  asyncio::sleep(0);
  lock.release();
  lock_flag = false;
  py::print("task", i, "done");
}

void main_task() {
  // Create a lock and acquire it so the tasks below must wait.
  asyncio::Lock lock;
  lock.acquire();

  // Create 4 tasks and let them all run.
  bool lock_flag = true;
  auto t0 = asyncio::create_task(task, 0, std::ref(lock), std::ref(lock_flag));
  auto t1 = asyncio::create_task(task, 1, std::ref(lock), std::ref(lock_flag));
  auto t2 = asyncio::create_task(task, 2, std::ref(lock), std::ref(lock_flag));
  auto t3 = asyncio::create_task(task, 3, std::ref(lock), std::ref(lock_flag));
  asyncio::sleep(0);

  // Cancel 2 of the tasks (which are waiting on the lock) and release the lock.
  t1.cancel();
  t2.cancel();
  lock.release();
  lock_flag = false;

  // Let the tasks run to completion.
  for (int i = 0; i < 4; ++i) asyncio::sleep(0);

  // The lock should be unlocked.
  py::print(lock.locked());
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
