// Port of MicroPython's tests/extmod/asyncio_wait_for_fwd.py: cancelling a task that is in
// wait_for() forwards the cancellation to the task it waits for.
#include "conformance.hpp"

namespace {

bool awaiting(double t, bool return_if_fail) {
  try {
    py::print("awaiting started");
    asyncio::sleep(t);
  } catch (const asyncio::CancelledError&) {
    py::print("awaiting canceled");
    if (return_if_fail) return false;  // return has no effect if Cancelled
    throw;
  } catch (const std::exception& er) {
    py::print("caught exception", er.what());
    throw;
  }
  return true;
}

void test_cancellation_forwarded(bool catch_outside, bool catch_inside) {
  py::print("----------");

  auto wait = [=] {
    try {
      asyncio::wait_for([=] { return awaiting(2, catch_inside); }, 1);
    } catch (const asyncio::TimeoutError&) {
      py::print("Got timeout error");
      throw;
    } catch (const asyncio::CancelledError&) {
      py::print("Got canceled");
      if (!catch_outside) throw;
    }
  };

  auto cancel = [](asyncio::Task<void> t) {
    py::print("cancel started");
    asyncio::sleep(0.01);
    py::print("cancel wait()");
    t.cancel();
  };

  auto t = asyncio::create_task(wait);
  auto k = asyncio::create_task(cancel, t);
  try {
    t.wait();
  } catch (const asyncio::CancelledError&) {
    py::print("waiting got cancelled");
  }
}

}  // namespace

int main() {
  asyncio::run(test_cancellation_forwarded, false, false);
  asyncio::run(test_cancellation_forwarded, false, true);
  asyncio::run(test_cancellation_forwarded, true, true);
  asyncio::run(test_cancellation_forwarded, true, false);
  return 0;
}
