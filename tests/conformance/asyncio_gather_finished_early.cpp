// Port of MicroPython's tests/extmod/asyncio_gather_finished_early.py: gather() on tasks that
// have already finished, with and without an exception, with and without return_exceptions.
#include <string>
#include <vector>

#include "conformance.hpp"

namespace {

void custom_handler(asyncio::Loop&, const asyncio::ExceptionContext&) {}

void task_that_finishes_early(const char* id, asyncio::Event& event, bool fail) {
  py::print("task_that_finishes_early", id);
  event.set();
  if (fail) throw py::value_error(std::string("'intentional exception', '") + id + "'");
}

void task_that_runs() {
  for (int i = 0; i < 5; ++i) {
    py::print("task_that_runs", i);
    asyncio::sleep(0);
  }
}

std::string list(const std::vector<asyncio::Outcome<void>>& outcomes) {
  std::string text = "[";
  for (const auto& outcome : outcomes) {
    if (text.size() > 1) text += ", ";
    text += outcome.ok() ? "None" : py::repr(outcome.exception());
  }
  return text + "]";
}

std::string nones(std::size_t count) {
  std::string text = "[";
  for (std::size_t i = 0; i < count; ++i) text += i == 0 ? "None" : ", None";
  return text + "]";
}

void main_task(bool start_task_that_runs, bool task_fail, bool return_exceptions) {
  py::print("== start", start_task_that_runs, task_fail, return_exceptions);

  // Set exception handler to suppress exception output.
  asyncio::get_event_loop().set_exception_handler(custom_handler);

  asyncio::Event event_a;
  asyncio::Event event_b;
  std::vector<asyncio::Task<void>> tasks;
  if (start_task_that_runs) tasks.push_back(asyncio::create_task(task_that_runs));
  tasks.push_back(
      asyncio::create_task(task_that_finishes_early, "a", std::ref(event_a), task_fail));
  tasks.push_back(
      asyncio::create_task(task_that_finishes_early, "b", std::ref(event_b), task_fail));

  // Make sure task_that_finishes_early() are both done, before calling gather().
  event_a.wait();
  event_b.wait();

  // Gather the tasks.
  std::string result;
  try {
    if (return_exceptions) {
      result = "('complete', " + list(asyncio::gather(asyncio::return_exceptions, tasks)) + ")";
    } else {
      result = "('complete', " + nones(asyncio::gather(tasks).size()) + ")";
    }
  } catch (const std::exception&) {
    const bool done = start_task_that_runs && tasks[0].done();
    result = "('exception', " + py::repr(std::current_exception()) + ", " + py::str(done) + ")";
  }

  // Wait for the final task to finish (if it was started).
  if (start_task_that_runs) tasks[0].wait();

  // Print results of gather.
  py::print(result);
}

}  // namespace

int main() {
  // Run the test in the 8 different combinations of its arguments.
  for (int i = 0; i < 8; ++i) {
    asyncio::run(main_task, (i & 4) != 0, (i & 2) != 0, (i & 1) != 0);
  }
  return 0;
}
