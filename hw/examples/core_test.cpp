// core_test: the scheduler's semantics on the target, where the context switch, the atomics,
// the exception runtime and the interrupts are the real ones. Prints one line per check and
// PASS (or FAIL with the failed checks); the runner turns that into an exit status.
//
// The full behavioural suite runs on Linux (tests/); this firmware checks what the port could
// break: ordering through the context switch (docs/semantics.md#run-order), fast I/O vs round-robin (docs/semantics.md#fast-io), cancellation
// and exceptions across fibers (docs/semantics.md#tasks), a ThreadSafeFlag set from an interrupt (docs/semantics.md#threadsafeflag), stack use.
#include <asyncio/asyncio.hpp>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "console.hpp"
#include "hal.hpp"
#include "hw.hpp"

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  hw::print(ok ? "ok   " : "FAIL ");
  hw::print_line(what);
  if (!ok) ++failures;
}

// docs/semantics.md#run-order: tasks due at the same time run in arrival order; sleep_ms(0) goes behind them.
void ordering() {
  std::string trace;
  auto worker = [&trace](char name) {
    for (int i = 0; i < 2; ++i) {
      trace += name;
      asyncio::sleep_ms(0);
    }
  };
  auto a = asyncio::create_task(worker, 'a');
  auto b = asyncio::create_task(worker, 'b');
  auto c = asyncio::create_task(worker, 'c');
  asyncio::gather(a, b, c);
  check(trace == "abcabc", "S1 FIFO among due tasks, sleep_ms(0) goes last");

  trace.clear();
  auto sleeper = [&trace](char name, int ms) {
    asyncio::sleep_ms(ms);
    trace += name;
  };
  auto late = asyncio::create_task(sleeper, 'L', 20);
  auto early = asyncio::create_task(sleeper, 'E', 10);
  const hal::Micros start = hal::now();
  asyncio::gather(late, early);
  const hal::Micros took = hal::now() - start;
  check(trace == "EL", "S1 timers run in due order");
  check(took >= 20'000 && took < 21'000, "sleep_ms(20) takes 20 ms, never less");
}

// docs/semantics.md#fast-io: a task woken by a pollable runs before pending tasks only in fast-I/O mode.
class ReadyOnce final : public asyncio::Pollable {
 public:
  bool ready = false;
  unsigned poll(unsigned events) override { return ready ? events & asyncio::POLL_RD : 0; }
};

std::string io_order(bool fast_io) {
  asyncio::roundrobin(!fast_io);
  std::string trace;
  ReadyOnce device;
  auto reader = asyncio::create_task([&] {
    asyncio::wait_pollable(device, asyncio::POLL_RD);
    trace += 'R';
  });
  auto busy = [&trace](char name) {
    for (int i = 0; i < 3; ++i) {
      trace += name;
      asyncio::sleep_ms(0);
    }
  };
  auto x = asyncio::create_task(busy, 'x');
  auto y = asyncio::create_task(busy, 'y');
  asyncio::sleep_ms(0);  // let the reader start waiting and x, y run once
  device.ready = true;
  asyncio::gather(reader, x, y);
  asyncio::roundrobin(true);
  return trace;
}

void io_policies() {
  // Round-robin: the reader queues behind x and y; fast I/O: it runs at the next switch.
  check(io_order(false) == "xyxyRxy", "S2 round-robin queues an I/O-woken task last");
  check(io_order(true) == "xyRxyxy", "S2 fast I/O runs an I/O-woken task first");
}

// docs/semantics.md#tasks: cancellation surfaces as CancelledError at the suspension point, unwinds destructors, and
// is not caught by catch (const std::exception&).
void cancellation() {
  bool unwound = false, swallowed = false;
  struct Guard {
    bool& flag;
    ~Guard() { flag = true; }
  };
  auto victim = asyncio::create_task([&] {
    Guard guard{unwound};
    try {
      asyncio::sleep_ms(1000);
    } catch (const std::exception&) {
      swallowed = true;
    }
  });
  asyncio::sleep_ms(1);
  check(victim.cancel(), "cancel() on a pending task returns true");
  try {
    asyncio::await(victim);
    check(false, "awaiting a cancelled task raises CancelledError");
  } catch (const asyncio::CancelledError&) {
    check(true, "awaiting a cancelled task raises CancelledError");
  }
  check(unwound && !swallowed && victim.cancelled(),
        "CancelledError unwinds the task and escapes catch (std::exception&)");
  check(!victim.cancel(), "cancel() on a finished task returns false");

  auto thrower = asyncio::create_task([]() -> int { throw std::runtime_error("boom"); });
  try {
    asyncio::await(thrower);
    check(false, "an exception propagates to the awaiting task");
  } catch (const std::runtime_error& error) {
    check(std::string(error.what()) == "boom", "an exception propagates to the awaiting task");
  }

  auto slow = asyncio::create_task([] {
    asyncio::sleep_ms(100);
    return 1;
  });
  try {
    asyncio::wait_for_ms(slow, 10);
    check(false, "wait_for_ms times out with TimeoutError");
  } catch (const asyncio::TimeoutError&) {
    check(slow.cancelled(), "wait_for_ms times out with TimeoutError and cancels the task");
  }
}

// docs/semantics.md#threadsafeflag: a ThreadSafeFlag set by an interrupt handler wakes its waiter, in both power modes.
asyncio::ThreadSafeFlag irq_flag;
std::atomic<int> irq_count{0};
void on_alarm() {
  irq_count.fetch_add(1);
  irq_flag.set();
}

void flag_from_interrupt(bool low_power) {
  asyncio::power_mode(low_power);
  const hal::Micros start = hal::now();
  hal::set_user_alarm(start + 3000, on_alarm);
  irq_flag.wait();  // nothing else to run: the loop must wait for the interrupt (docs/semantics.md#waiting)
  const hal::Micros latency = hal::now() - (start + 3000);
  asyncio::power_mode(false);
  // 200 µs of scheduling, plus the board's alarm grain (1 ms on the tickful an505).
  check(irq_count.load() > 0 && latency >= 0 && latency < 200 + hal::wake_resolution(),
        low_power ? "S5 TSF set from an interrupt wakes a light-sleeping loop"
                  : "S5 TSF set from an interrupt wakes a polling loop");
}

void stacks() {
  auto task = asyncio::create_task(asyncio::TaskOptions{"probe", 0}, [] {
    try {
      throw std::runtime_error("measure the unwinder");
    } catch (const std::exception&) {
    }
    asyncio::sleep_ms(0);
    return hw::stack_used(static_cast<asyncio::detail::Fiber*>(
                              asyncio::current_task().record_pointer())
                              ->stack);
  });
  const std::size_t used = asyncio::await(task);
  hw::JsonLine()
      .str("test", "stack")
      .integer("default_stack_bytes", hw::kDefaultStackSize)
      .integer("used_after_throw_bytes", static_cast<std::int64_t>(used))
      .str("board", hal::board_name());
  check(used > 0 && used < hw::kDefaultStackSize, "a throw/catch fits the default stack");
}

void all_checks() {
  ordering();
  io_policies();
  cancellation();
  flag_from_interrupt(false);
  flag_from_interrupt(true);
  stacks();
}

}  // namespace

int main() {
  hw::print("core_test on ");
  hw::print_line(hal::board_name());
  try {
    asyncio::run(all_checks);
  } catch (const std::exception& error) {
    hw::print("FAIL uncaught exception: ");
    hw::print_line(error.what());
    return 1;
  }
  hw::print_line(failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}
