// Port of MicroPython's tests/extmod/asyncio_lock.py: Lock acquire/release, FIFO hand-over
// between tasks, locked() around a hand-over, and waiters cancelled while they wait.
#include <mutex>

#include "conformance.hpp"

namespace {

void task_loop(int id, asyncio::Lock& lock) {
  py::print("task start", id);
  for (int i = 0; i < 3; ++i) {
    std::lock_guard guard(lock);
    py::print("task have", id, i);
  }
  py::print("task end", id);
}

void task_sleep(asyncio::Lock& lock) {
  {
    std::lock_guard guard(lock);
    py::print("task have", lock.locked());
    asyncio::sleep(0.2);
  }
  py::print("task release", lock.locked());
  lock.acquire();
  py::print("task have again");
  lock.release();
}

void task_cancel(int id, asyncio::Lock& lock, asyncio::Task<void>* to_cancel) {
  try {
    {
      std::lock_guard guard(lock);
      py::print("task got", id);
      asyncio::sleep(0.1);
    }
    py::print("task release", id);
    if (to_cancel) to_cancel->cancel();
  } catch (const asyncio::CancelledError&) {
    py::print("task cancel", id);
  }
}

void main_task() {
  asyncio::Lock lock;

  // Basic acquire/release.
  py::print(lock.locked());
  lock.acquire();
  py::print(lock.locked());
  asyncio::sleep(0);
  lock.release();
  py::print(lock.locked());
  asyncio::sleep(0);

  // Use with "async with".
  {
    std::lock_guard guard(lock);
    py::print("have lock");
  }

  // 3 tasks wanting the lock.
  py::print("----");
  asyncio::create_task(task_loop, 1, std::ref(lock));
  asyncio::create_task(task_loop, 2, std::ref(lock));
  auto t3 = asyncio::create_task(task_loop, 3, std::ref(lock));
  lock.acquire();
  asyncio::sleep(0);
  lock.release();
  t3.wait();

  // 2 sleeping tasks both wanting the lock.
  py::print("----");
  asyncio::create_task(task_sleep, std::ref(lock));
  asyncio::sleep(0.1);
  task_sleep(lock);

  // 3 tasks, the first cancelling the second, the third should still succeed.
  py::print("----");
  asyncio::Task<void> ts;
  asyncio::create_task(task_cancel, 0, std::ref(lock), &ts);
  ts = asyncio::create_task(task_cancel, 1, std::ref(lock), nullptr);
  asyncio::create_task(task_cancel, 2, std::ref(lock), nullptr);
  asyncio::sleep(0.3);
  py::print(lock.locked());

  // 3 tasks, the second and third being cancelled while waiting on the lock.
  py::print("----");
  auto t0 = asyncio::create_task(task_cancel, 0, std::ref(lock), nullptr);
  auto t1 = asyncio::create_task(task_cancel, 1, std::ref(lock), nullptr);
  auto t2 = asyncio::create_task(task_cancel, 2, std::ref(lock), nullptr);
  asyncio::sleep(0.05);
  t1.cancel();
  asyncio::sleep(0.1);
  t2.cancel();
  asyncio::sleep(0.1);
  py::print(lock.locked());
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
