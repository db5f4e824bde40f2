// The per-thread loop registry: the scheduler running on this thread, the thread's own loop
// (get_event_loop, new_event_loop) and its module-level modes.
#include "asyncio/detail/registry.hpp"

#include <memory>

#include "asyncio/errors.hpp"
#include "asyncio/loop.hpp"
#include "registry_modes.hpp"

namespace asyncio {
namespace detail {

constinit thread_local Scheduler* running_scheduler = nullptr;

namespace {
thread_local std::shared_ptr<Loop> thread_loop;
// asyncio_alt's module-level modes: every loop the thread makes starts in them.
thread_local bool thread_roundrobin = true;
thread_local bool thread_low_power = false;
}  // namespace

bool default_roundrobin() { return thread_roundrobin; }
bool default_low_power() { return thread_low_power; }

}  // namespace detail

using detail::thread_loop;

Loop& Loop::current_thread_loop() {
  if (!thread_loop) thread_loop = std::make_shared<Loop>();
  return *thread_loop;
}

void Loop::set_current_thread_loop(std::shared_ptr<Loop> loop) {
  if (thread_loop && thread_loop->is_running()) {
    throw RuntimeError("new_event_loop: the current loop is running");
  }
  // Close while still installed, so that unwinding tasks find their own loop.
  if (thread_loop) thread_loop->close();
  thread_loop = std::move(loop);
  if (thread_loop) thread_loop->scheduler_.set_owner_thread(detail::port::thread_id());
}

Loop& get_event_loop() {
  Loop* running = Loop::running();
  return running ? *running : Loop::current_thread_loop();
}

Loop& new_event_loop(Loop::Options options) {
  if (!thread_loop) {
    thread_loop = std::make_shared<Loop>(std::move(options));
  } else {
    thread_loop->renew(std::move(options));
  }
  return *thread_loop;
}

bool roundrobin() { return get_event_loop().roundrobin(); }

void roundrobin(bool on) {
  get_event_loop().roundrobin(on);
  detail::thread_roundrobin = on;
}

bool power_mode() { return get_event_loop().power_mode(); }

void power_mode(bool on) {
  get_event_loop().power_mode(on);  // ValueError where unsupported: the default stays
  detail::thread_low_power = on;
}

}  // namespace asyncio
