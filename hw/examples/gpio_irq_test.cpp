// gpio_irq_test: a ThreadSafeFlag set from a GPIO edge interrupt (IO_IRQ_BANK0) wakes the task
// waiting on it, in normal mode (the loop polls) and in low-power mode (the loop sleeps in WFI
// with the clocks gated; the edge's interrupt wakes it).
//
// Something outside drives GPIO 2: in rp2040js the runner toggles it every 50 ms of simulated
// time (--gpio-toggle 2:50); on a board, a 10 Hz square wave. Every toggle is an edge (both
// edges are enabled). The period is above the 20 ms low-power slot on purpose: low-power mode
// batches flags that keep coming within a slot into one wake-up at the slot's end (docs/semantics.md#low-power),
// which would merge edges; a quiet slot ends the batching, so each slower edge wakes the loop
// at once. The handler timestamps the edge, counts it and sets the flag; the task counts
// its wake-ups and measures handler-to-task latency. Each mode must see one wake-up per edge.
#include <asyncio/asyncio.hpp>
#include <atomic>

#include "console.hpp"
#include "cortex_m.hpp"
#include "hal.hpp"

namespace {

constexpr unsigned kInputPin = 2;
constexpr int kEdgesPerMode = 10;

asyncio::ThreadSafeFlag flag;
std::atomic<std::int32_t> edges{0};
std::atomic<hal::Micros> edge_time{0};

// Interrupt context: only atomics and ThreadSafeFlag::set().
void on_edge(unsigned /*pin*/) {
  edge_time.store(hal::now(), std::memory_order_relaxed);
  edges.fetch_add(1, std::memory_order_relaxed);
  flag.set();
}

struct Result {
  int wakeups = 0;
  int edges = 0;
  hal::Micros max_latency_us = 0;
  hal::Micros total_latency_us = 0;
};

Result measure() {
  Result result;
  std::int32_t edges_before;
  {
    // Together, or an edge in between would be counted without a wake-up (or the reverse).
    const cortex_m::InterruptGuard guard;
    flag.clear();
    edges_before = edges.load();
  }
  while (result.wakeups < kEdgesPerMode) {
    flag.wait();
    const hal::Micros latency = hal::now() - edge_time.load(std::memory_order_relaxed);
    ++result.wakeups;
    result.total_latency_us += latency;
    if (latency > result.max_latency_us) result.max_latency_us = latency;
  }
  result.edges = edges.load() - edges_before;
  return result;
}

bool run_mode(bool low_power) {
  asyncio::power_mode(low_power);
  const Result result = asyncio::run(measure);
  // One wake-up per edge: a flag set twice before its waiter ran would merge two edges.
  const bool ok = result.wakeups == kEdgesPerMode && result.edges == kEdgesPerMode;
  hw::JsonLine()
      .str("demo", "gpio_irq_test")
      .str("mode", low_power ? "low_power" : "normal")
      .integer("edges", result.edges)
      .integer("wakeups", result.wakeups)
      .fixed("mean_latency_ms", result.total_latency_us / kEdgesPerMode, 3)
      .fixed("max_latency_ms", result.max_latency_us, 3)
      .boolean("ok", ok)
      .str("board", hal::board_name());
  return ok;
}

}  // namespace

int main() {
  hal::gpio_set_input(kInputPin);
  hal::gpio_set_irq(kInputPin, hal::Edge::kBoth, on_edge);
  bool ok = run_mode(false);
  ok = run_mode(true) && ok;
  hal::gpio_set_irq(kInputPin, hal::Edge::kBoth, nullptr);
  hw::print_line(ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
