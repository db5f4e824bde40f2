// Port of MicroPython's tests/extmod/asyncio_await_return.py: a task's return value.
#include "conformance.hpp"

namespace {

int foo() {
  return 42;
}

void main_task() {
  py::print(foo());

  auto task = asyncio::create_task(foo);
  py::print(asyncio::await(task));
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
