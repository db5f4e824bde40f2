// Port of MicroPython's tests/extmod/asyncio_basic.py: sleeps of 1, 200, 400 and -1000 ms.
#include "conformance.hpp"

namespace {

void delay_print(double t, const char* s) {
  asyncio::sleep(t);
  py::print(s);
}

void main_task() {
  py::print("start");

  asyncio::sleep(0.001);
  py::print("after sleep");

  const auto t0 = py::ticks_ms();
  delay_print(0.2, "short");
  const auto t1 = py::ticks_ms();
  delay_print(0.4, "long");
  const auto t2 = py::ticks_ms();
  delay_print(-1, "negative");
  const auto t3 = py::ticks_ms();

  std::printf("took %lld %lld %lld\n", static_cast<long long>(py::took(t1 - t0, 200)),
              static_cast<long long>(py::took(t2 - t1, 400)),
              static_cast<long long>(py::took(t3 - t2, 0)));
}

}  // namespace

int main() {
  asyncio::run(main_task);
  return 0;
}
