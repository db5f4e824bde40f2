// Port of MicroPython's tests/extmod/asyncio_wait_for_linked_task.py: tasks that each await
// the previous one, waited for from a task and with run_until_complete().
#include <vector>

#include "conformance.hpp"

namespace {

class Worker {
 public:
  void plan_tasks() {
    tasks_.push_back(launch_task({}, "task0"));
    tasks_.push_back(launch_task(tasks_[0], "task1"));
    tasks_.push_back(launch_task(tasks_[1], "task2"));
  }

  void wait_for_task(std::size_t index) { tasks_[index].wait(); }

  void sync_wait_for_task(std::size_t index) { asyncio::run_until_complete(tasks_[index]); }

 private:
  static asyncio::Task<void> launch_task(asyncio::Task<void> prerequisite, const char* name) {
    return asyncio::create_task(job, prerequisite, name);
  }

  static void job(asyncio::Task<void> prerequisite, const char* name) {
    if (prerequisite) prerequisite.wait();
    asyncio::sleep(0.1);
    py::print(name, "work completed");
  }

  std::vector<asyncio::Task<void>> tasks_;
};

void async_test() {
  py::print("--- async test");
  Worker worker;
  worker.plan_tasks();
  worker.wait_for_task(0);
  py::print("-> task0 done");
  worker.wait_for_task(2);
  py::print("-> task2 done");
}

void sync_test() {
  py::print("--- sync test");
  Worker worker;
  worker.plan_tasks();
  worker.sync_wait_for_task(0);
  py::print("-> task0 done");
  worker.sync_wait_for_task(2);
  py::print("-> task2 done");
}

}  // namespace

int main() {
  asyncio::run_until_complete(asyncio::create_task(async_test));
  sync_test();
  return 0;
}
