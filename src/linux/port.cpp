// The Linux port's clock and SIGINT routing (include/asyncio/detail/port.hpp); its log is
// log.cpp.
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cstdlib>

#include "asyncio/detail/port.hpp"
#include "asyncio/loop.hpp"

namespace asyncio::detail::port {

Micros now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Micros>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

Micros coarse_now() {
  // CLOCK_MONOTONIC_COARSE: the last tick's reading, several times cheaper than
  // CLOCK_MONOTONIC through the vDSO, and never ahead of it.
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<Micros>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

namespace {
// The loop that SIGINT interrupts: one per process, as signal dispositions are.
std::atomic<Loop*> interrupted_loop{nullptr};
struct sigaction previous_sigint;

void on_sigint(int /*signal*/) {
  Loop* loop = interrupted_loop.load();
  // A second Ctrl-C while the first is still being served ends the program, as the default
  // disposition does: a task that ignores its cancellation must not make the program unkillable.
  if (!loop || !loop->interrupt()) {
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
  }
}
}  // namespace

void route_interrupts(Loop& loop, bool on) noexcept {
  if (on) {
    struct sigaction current {};
    sigaction(SIGINT, nullptr, &current);
    // As CPython's asyncio.run: a program that installed its own SIGINT handler keeps it.
    if (current.sa_handler != SIG_DFL) return;
    Loop* expected = nullptr;
    if (!interrupted_loop.compare_exchange_strong(expected, &loop)) return;
    struct sigaction action {};
    action.sa_handler = &on_sigint;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_sigint);
    return;
  }
  if (interrupted_loop.load() != &loop) return;
  sigaction(SIGINT, &previous_sigint, nullptr);
  interrupted_loop.store(nullptr);
}

std::uintptr_t thread_id() noexcept { return static_cast<std::uintptr_t>(pthread_self()); }

// Low-power mode on Linux: batched 20 ms waits (src/core/idle_low_power.cpp) and a raised timer
// slack (LinuxBackend::set_timer_slack).
bool low_power_supported() noexcept { return true; }

}  // namespace asyncio::detail::port
