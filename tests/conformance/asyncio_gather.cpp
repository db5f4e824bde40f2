// Port of MicroPython's tests/extmod/asyncio_gather.py: gather's values, return_exceptions,
// the first failure, and cancelling a task while it gathers.
#include <functional>
#include <string>
#include <vector>

#include "conformance.hpp"

namespace {

int factorial(const char* name, int number) {
  int f = 1;
  for (int i = 2; i <= number; ++i) {
    std::printf("Task %s: Compute factorial(%d)...\n", name, i);
    asyncio::sleep(0.01);
    f *= i;
  }
  std::printf("Task %s: factorial(%d) = %d\n", name, number, f);
  return f;
}

int task(int id, double t = 0.1) {
  py::print("start", id);
  asyncio::sleep(t);
  py::print("end", id);
  return id;
}

int task_loop(int id) {
  py::print("task_loop start", id);
  while (true) {
    asyncio::sleep(0.1);
    py::print("task_loop loop", id);
  }
}

int task_raise(int id, double t = 0.1) {
  py::print("task_raise start", id);
  asyncio::sleep(t);
  py::print("task_raise raise", id);
  throw py::value_error(std::to_string(id) + ",");
}

// Python passes coroutines, which gather turns into tasks when gather_task runs.
void gather_task(std::function<int()> c0, std::function<int()> c1) {
  py::print("gather_task");
  asyncio::gather(c0, c1);
  py::print("gather_task2");
}

std::string list(const std::vector<asyncio::Outcome<int>>& outcomes) {
  std::string text = "[";
  for (const auto& outcome : outcomes) {
    if (text.size() > 1) text += ", ";
    text += outcome.ok() ? std::to_string(outcome.value()) : py::repr(outcome.exception());
  }
  return text + "]";
}

void print_caught(const std::vector<asyncio::Task<int>>& tasks) {
  try {
    asyncio::gather(tasks);
  } catch (const asyncio::ValueError&) {
    py::print(py::repr(std::current_exception()));
  }
  py::print(tasks[0].done(), tasks[1].done());
}

void main_task() {
  // Simple gather with return values.
  auto [fa, fb, fc] =
      asyncio::gather([] { return factorial("A", 2); }, [] { return factorial("B", 3); },
                      [] { return factorial("C", 4); });
  std::printf("[%d, %d, %d]\n", fa, fb, fc);

  py::print("====");

  // Gather with no awaitables.
  asyncio::gather();
  py::print("[]");

  py::print("====");

  // Test return_exceptions, where one task is cancelled and the other finishes normally.
  std::vector<asyncio::Task<int>> tasks;
  tasks.push_back(asyncio::create_task(task, 1, 0.1));
  tasks.push_back(asyncio::create_task(task, 2, 0.1));
  tasks[0].cancel();
  py::print(list(asyncio::gather(asyncio::return_exceptions, tasks)));

  py::print("====");

  // Test return_exceptions, where one task raises an exception and the other finishes normally.
  tasks = {};
  tasks.push_back(asyncio::create_task(task, 1, 0.1));
  tasks.push_back(asyncio::create_task(task_raise, 2, 0.1));
  py::print(list(asyncio::gather(asyncio::return_exceptions, tasks)));

  py::print("====");

  // Test case where one task raises an exception and other task keeps running.
  tasks = {};
  tasks.push_back(asyncio::create_task(task_loop, 1));
  tasks.push_back(asyncio::create_task(task_raise, 2, 0.1));
  print_caught(tasks);
  for (const auto& t : tasks) t.cancel();
  asyncio::sleep(0.2);

  py::print("====");

  // Test case where both tasks raise an exception.
  // Use t=0 so they raise one after the other, between the gather starting and finishing.
  tasks = {};
  tasks.push_back(asyncio::create_task(task_raise, 1, 0));
  tasks.push_back(asyncio::create_task(task_raise, 2, 0));
  print_caught(tasks);

  py::print("====");

  // Cancel a multi gather.
  auto t = asyncio::create_task(
      gather_task, [] { return task(1); }, [] { return task(2); });
  asyncio::sleep(0.05);
  t.cancel();
  asyncio::sleep(0.2);

  // Test edge cases where the gather is cancelled just as tasks are created and ending.
  for (int i = 1; i < 4; ++i) {
    py::print("====");
    t = asyncio::create_task(
        gather_task, [] { return task(1, 0); }, [] { return task(2, 0); });
    for (int j = 0; j < i; ++j) asyncio::sleep(0);
    t.cancel();
    asyncio::sleep(0.2);
  }
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
