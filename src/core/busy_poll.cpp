// Busy polling on top of the backend's peek (docs/semantics.md#io-polling).
#include "asyncio/detail/busy_poll.hpp"

namespace asyncio::detail {

namespace {
// The adaptive window's first step, as KVM's halt_poll_ns_grow_start (10 µs).
constexpr Micros kAdaptiveWindowStartUs = 10;

void pause_cpu() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield");
#endif
}
}  // namespace

void BusyPoller::configure(Micros us, bool adaptive) {
  ceiling_us_ = us;
  adaptive_ = adaptive;
  window_us_ = adaptive ? 0 : us;
}

bool BusyPoller::spin(IoBackend& backend, Micros deadline) {
  wait_started_ = -1;
  DescriptorWaits* descriptors = backend.descriptor_waits();
  // Timers and ThreadSafeFlags alone never spin: only descriptors can be peeked at.
  if (ceiling_us_ <= 0 || !descriptors || !backend.has_waiters()) return false;
  wait_started_ = port::now();
  if (window_us_ <= 0) return false;  // adaptive, after a long wait: block at once
  Micros until = wait_started_ + window_us_;
  if (deadline >= 0 && deadline < until) until = deadline;
  do {
    if (descriptors->peek_descriptors()) return true;
    pause_cpu();
  } while (port::now() < until);
  return false;
}

void BusyPoller::adapt() {
  if (!adaptive_ || wait_started_ < 0) return;
  const Micros waited = port::now() - wait_started_;
  wait_started_ = -1;
  if (waited > ceiling_us_) {
    // No spin within the ceiling would have caught it: halve the window (KVM's shrink of 2),
    // so that one late reply on a noisy machine does not undo what the others taught.
    window_us_ = window_us_ / 2 >= kAdaptiveWindowStartUs ? window_us_ / 2 : 0;
  } else if (waited > window_us_) {
    // A spin a little longer would have caught it: double the window, up to the ceiling.
    const Micros grown = window_us_ > 0 ? window_us_ * 2 : kAdaptiveWindowStartUs;
    window_us_ = grown < ceiling_us_ ? grown : ceiling_us_;
  }
}

}  // namespace asyncio::detail
