// The asyncio_alt demo tsf_test (examples/tsf_test.cpp) as an order case: one task waits on a
// ThreadSafeFlag among ten tasks that each block for 5 ms and yield. The flag is set by a task
// (the seed's way: the set happens at a task switch) or by a second thread in the middle of a
// block (an asynchronous source). On the virtual clock the waiter's latency counts the blocks
// that ran before it: round-robin queues it behind all ten blockers (50 ms, or 55 with the
// block under way), fast I/O runs it at the next switch (0, or the 5 ms block under way).
#include <asyncio/linux.hpp>
#include <cstdio>
#include <thread>
#include <vector>

#include "virtual_clock.hpp"

namespace {

constexpr int kBlockerCount = 10;
constexpr int kBlockMs = 5;
constexpr int kIterations = 3;

struct Trigger {
  asyncio::ThreadSafeFlag flag;
  std::int64_t set_at = 0;        // virtual µs of the last set
  bool thread_set_armed = false;  // blocker 0 sets the flag from a thread in its next block
  asyncio::Event seen;            // the waiter has measured the last set
  const char* label = "";
};

void block(int n, Trigger& trigger) {
  while (true) {
    if (n == 0 && trigger.thread_set_armed) {
      trigger.thread_set_armed = false;
      trigger.set_at = virtual_clock::now_us();
      std::thread([&trigger] { trigger.flag.set(); }).join();
    }
    virtual_clock::block_cpu_ms(kBlockMs);
    asyncio::sleep_ms(0);
  }
}

void waiter(Trigger& trigger) {
  for (int i = 0;; ++i) {
    trigger.flag.wait();
    const auto latency_ms = (virtual_clock::now_us() - trigger.set_at) / 1000;
    std::printf("%s %d: %lld ms\n", trigger.label, i % kIterations,
                static_cast<long long>(latency_ms));
    trigger.seen.set();
  }
}

void measure(Trigger& trigger, const char* label, bool from_thread) {
  trigger.label = label;
  for (int i = 0; i < kIterations; ++i) {
    asyncio::sleep_ms(10);  // let the blockers settle into their round
    trigger.seen.clear();
    if (from_thread) {
      trigger.thread_set_armed = true;
    } else {
      trigger.set_at = virtual_clock::now_us();
      trigger.flag.set();
    }
    trigger.seen.wait();
  }
}

void tsf_test() {
  Trigger trigger;
  std::vector<asyncio::Task<void>> tasks;
  for (int n = 0; n < kBlockerCount; ++n) {
    tasks.push_back(asyncio::create_task(block, n, std::ref(trigger)));
  }
  tasks.push_back(asyncio::create_task(waiter, std::ref(trigger)));

  std::printf(
      "This tests the latency of a ThreadSafeFlag in the presence of\n"
      "multiple running tasks: first under normal roundrobin scheduling.\n"
      "Ideal time is 0.\n");
  measure(trigger, "roundrobin, set by a task", false);
  measure(trigger, "roundrobin, set by a thread", true);

  std::printf("Now using I/O priority scheduling (roundrobin(false)).\n");
  asyncio::roundrobin(false);
  measure(trigger, "fast_io, set by a task", false);
  measure(trigger, "fast_io, set by a thread", true);

  for (auto& task : tasks) task.cancel();
  asyncio::gather(asyncio::return_exceptions, tasks);
}

}  // namespace

int main() {
  asyncio::run(tsf_test);
  return 0;
}
