// Per-loop diagnostics of the Linux port: the stall detector's sampling timer and the task
// dump a signal requests (docs/using.md#observing-the-loop).
#pragma once

#include <signal.h>
#include <time.h>

#include <atomic>
#include <cstdint>

#include "asyncio/loop.hpp"

namespace asyncio::detail {

class LoopMonitor {
 public:
  /// Makes `loop` reachable by dump_tasks_on_signal and applies ASYNCIO_STALL_MS.
  explicit LoopMonitor(Loop& loop);
  ~LoopMonitor();
  LoopMonitor(const LoopMonitor&) = delete;
  LoopMonitor& operator=(const LoopMonitor&) = delete;

  /// 0: off. Otherwise samples the calling thread every threshold / 4.
  void set_stall_threshold(Micros us);

  /// From a signal handler: every loop dumps its tasks to stderr at its next switch.
  static void request_dumps() noexcept;

 private:
  struct DumpNode final : FlagNode {
    explicit DumpNode(LoopMonitor& owner) : monitor(owner) {}
    void on_signalled() override;
    LoopMonitor& monitor;
  };
  struct StallNode final : FlagNode {
    explicit StallNode(LoopMonitor& owner) : monitor(owner) {}
    void on_signalled() override;
    LoopMonitor& monitor;
  };

  static void on_sample(int signal_number, siginfo_t* info, void* context);
  /// The sampler, in a signal handler on the loop thread: async-signal-safe.
  void sample() noexcept;
  void stop_timer() noexcept;

  Loop& loop_;
  timer_t timer_{};
  bool timer_made_ = false;
  Micros threshold_us_ = 0;
  // The sampler's state: written in the handler, read on the same thread.
  std::uint64_t last_activity_ = 0;
  Micros quiet_since_ = 0;
  bool reported_ = false;
  Micros last_backtrace_ = -1'000'000'000;
  std::atomic<Micros> stall_started_{0};
  std::atomic<Micros> stall_limit_{0};
  char stalled_name_[64] = {};
  DumpNode dump_node_{*this};
  StallNode stall_node_{*this};
  int slot_ = -1;  // in the registry of loops a dump request reaches
};

}  // namespace asyncio::detail
