// Busy polling (Loop::set_busy_poll): before the loop blocks while tasks wait on descriptors,
// it spins on the backend's non-blocking peek for a while (docs/semantics.md#io-polling).
#pragma once

#include "asyncio/detail/port.hpp"

namespace asyncio::detail {

class BusyPoller {
 public:
  /// A window of `us` µs (0: never spin); `adaptive` makes `us` a ceiling and adapts the
  /// window as KVM's halt polling does.
  void configure(Micros us, bool adaptive);
  Micros ceiling() const { return ceiling_us_; }
  bool adaptive() const { return adaptive_; }

  /// Peeks at `backend`'s descriptors until one delivers, until `deadline` (-1: none) or until
  /// the window ends. True if something was delivered; false at once when the window is 0 or
  /// no task waits on a descriptor.
  bool spin(IoBackend& backend, Micros deadline);
  /// After the blocking wait that followed a spin that delivered nothing: adapts the window
  /// to how long the whole wait took.
  void adapt();

 private:
  Micros ceiling_us_ = 0;     // the window, or its ceiling when adaptive
  Micros window_us_ = 0;      // the window the next spin uses
  Micros wait_started_ = -1;  // when the current spin-then-block began; -1: not spinning
  bool adaptive_ = false;
};

}  // namespace asyncio::detail
