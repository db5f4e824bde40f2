// The port contract: everything the portable core (src/core/) needs from a platform.
//
// A port is one folder (src/linux/, hw/<board>/) that defines these functions and one
// IoBackend. The core never includes an OS header; it reaches the machine only through this
// file. Keep it small: a new platform should need a few hundred lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace asyncio {

class Loop;

/// Monotonic time in microseconds. 64 bits: it never wraps in practice.
using Micros = std::int64_t;

namespace detail {

struct TaskRecord;
class Scheduler;

/// The value a port writes at the far end of a task stack that has no guard page. The core
/// checks it at every switch away from a task: an overwritten sentinel means the task
/// overflowed its stack.
inline constexpr std::uint64_t kStackSentinel = 0x5AFE57AC4B0770Full;

/// A task stack: [base, base + size). `base` is the lowest address; `limit` the lowest address
/// a fiber may use (above a guard page, if any). `sentinel`, when the port sets it, points at
/// a word holding kStackSentinel just above `limit`.
struct Stack {
  // The two fields read at every switch come first.
  void* limit = nullptr;
  std::uint64_t* sentinel = nullptr;
  void* base = nullptr;
  std::size_t size = 0;

  /// Checked by the core at every switch away from a task, on that task's stack: the stack
  /// pointer must be above the limit and the sentinel must be intact.
  bool intact() const {
    const char probe = 0;
    if (limit && static_cast<const void*>(&probe) < limit) return false;
    return !sentinel || *sentinel == kStackSentinel;
  }
};

/// Saved state of one execution context (a task, or the thread that called run()).
/// The fields are the port's to use; the core only passes Fiber objects around.
struct Fiber {
  // Ordered so that what a switch touches shares the record's first cache line.
  void* context = nullptr;               // the port's saved register state / stack pointer
  void* exception_state[2] = {};         // C++ runtime's per-thread exception globals (see port)
  Stack stack;                           // empty for the thread's own stack
  void* sanitizer_state[2] = {};         // fake-stack / TSan fiber handles
  void (*entry)(Fiber*) = nullptr;       // first function run on a new fiber
};

/// Where a readiness mask comes from; MicroPython's MP_STREAM_POLL_* values.
enum : unsigned { kPollRead = 0x0001, kPollWrite = 0x0004, kPollError = 0x0008, kPollHangup = 0x0010 };

/// Waiting on the platform's descriptors (file descriptors on Linux): a capability a backend
/// offers through IoBackend::descriptor_waits(); a port without descriptors offers none.
class DescriptorWaits {
 public:
  /// Registers `task` as waiting for `events` (kPollRead or kPollWrite) on `fd`; the backend
  /// wakes it with Scheduler::wake_io. Throws OSError (bad descriptor…) or RuntimeError (that
  /// direction already has a waiter).
  virtual void start_wait(int fd, unsigned events, TaskRecord* task) = 0;
  /// Withdraws a wait that was not delivered (the task was cancelled or timed out).
  virtual void cancel_wait(int fd, unsigned events, TaskRecord* task) = 0;
  /// One poll of the descriptors without blocking, as cheap as the platform allows (busy
  /// polling calls it in a loop). True if it delivered anything (I/O or a wake()).
  virtual bool peek_descriptors() = 0;
  /// Ends the waits on `fd` (both directions) with the errno `error`.
  virtual void abort(int fd, int error) = 0;

 protected:
  ~DescriptorWaits() = default;
};

/// The I/O half of a port: polling without blocking, blocking until a deadline, and being
/// woken from another thread, a signal handler or an interrupt.
class IoBackend {
 public:
  virtual ~IoBackend() = default;

  /// Short lowercase name ("uring", "epoll", "rp2040") for logs and benchmarks.
  virtual const char* name() const = 0;

  /// Called at every task switch (docs/semantics.md#fast-io) while needs_poll(). Must be cheap
  /// when nothing is ready: no system call in the common case. Wakes every task whose I/O is
  /// ready through Scheduler::wake_io.
  virtual void poll_if_ready() = 0;
  /// False when poll_if_ready() has nothing to do: no task waits on the backend and it holds
  /// no request back. The switch path then skips the call. Not virtual, for the same reason.
  bool needs_poll() const { return waiters_ > 0 || unsubmitted_; }

  /// Blocks until `deadline` (absolute, port clock; -1 = no deadline), an I/O event or wake().
  /// May return early (spurious wake-ups are fine). Delivers ready I/O like poll_if_ready.
  virtual void wait(Micros deadline) = 0;

  /// Low-power mode's interrupt mitigation (docs/semantics.md#low-power): sleeps until `deadline` WITHOUT being
  /// woken by I/O or wake(); readiness is picked up by the next poll. A port that cannot (or
  /// should not, because its interrupts are the point) may keep the default, a plain wait().
  /// When `timer_due` is false no timer falls due by `deadline`, and the port may end the sleep
  /// a little early: Linux does, by its timer slack, so that the window in which the kernel may
  /// coalesce the wake-up ends at the slot boundary instead of starting there.
  virtual void sleep_without_io(Micros deadline, bool /*timer_due*/) { wait(deadline); }

  /// Lets the platform end waits and sleeps up to `us` µs late, so that it can coalesce the
  /// thread's wake-ups with others (0: the platform's default). A port that ends
  /// sleep_without_io early when no timer is due does so by this slack. Default: nothing.
  virtual void set_timer_slack(Micros /*us*/) {}

  /// The port's own measures for low-power mode, called as the loop enters (true) and leaves
  /// it: a board light-sleeps in wait() instead of spinning. Default: nothing.
  virtual void set_low_power(bool /*on*/) {}

  /// Interrupts wait(). Async-signal-safe and callable from any thread or interrupt handler.
  virtual void wake() noexcept = 0;

  /// True when tasks wait on this backend (file descriptors): the loop must then not conclude
  /// that nothing can ever happen. Not virtual: the switch path asks it.
  bool has_waiters() const { return waiters_ > 0; }

  /// True while the backend holds back output it took (a batch of io_uring sends): the loop
  /// hands it over with submit_held_output() before it runs a task that was not woken by I/O,
  /// which may run for long (docs/semantics.md#streams). Not virtual: the switch path asks it.
  bool holds_output() const { return holds_output_; }
  /// Gives the platform the output held back. Default: nothing (a port that holds none).
  virtual void submit_held_output() {}

  /// The finest grid (µs) on which the backend can end a wait without busy waiting: the loop
  /// never rounds a timer deadline to a finer one. 1 on Linux; a board's tick on a board.
  virtual Micros timer_resolution() const { return 1; }

  /// Loop::set_stall_threshold: report a task that runs longer than `us` without suspending
  /// (0: off). Returns true if the port watches for stalls itself (Linux samples the running
  /// task); otherwise the core reports each stall when the task suspends.
  virtual bool set_stall_threshold(Micros /*us*/) { return false; }

  /// A backend that keeps its own clock (virtual time, asyncio/testing.hpp) returns it here;
  /// the loop then reads time from it instead of port::now(). Default: the port's clock.
  virtual const Micros* virtual_clock() const noexcept { return nullptr; }

  /// Descriptor waits (wait_io, streams on descriptors), or null where the port has none.
  virtual DescriptorWaits* descriptor_waits() { return nullptr; }

 protected:
  /// Tasks waiting on this backend's descriptors; a backend with descriptors keeps it.
  int waiters_ = 0;
  /// Set while output is held back (holds_output()); a backend that batches output keeps it.
  bool holds_output_ = false;
  /// Set while the backend holds requests it has not handed to the platform yet (io_uring's
  /// submission queue); a backend that batches requests keeps it.
  bool unsubmitted_ = false;
};

namespace port {

/// Monotonic clock in microseconds since an arbitrary epoch.
Micros now();

/// The same clock, read as cheaply as the platform allows: it may lag now() by a few ms (one
/// kernel tick on Linux) but never runs ahead of it. Stamps the ready queue's order, which
/// needs a fresh reading at every enqueue but only millisecond precision
/// (docs/semantics.md#fast-io). A port without a cheaper clock returns now().
Micros coarse_now();

/// From `on` = true until the matching false, an interrupt request from the console (SIGINT on
/// Linux) calls loop.interrupt(), unless the program handles that request itself. A port
/// without such a request does nothing. asyncio::run() calls it around its run.
void route_interrupts(Loop& loop, bool on) noexcept;

/// A stack for a new task, with its sentinel written. Must be usable by make_fiber; `size` is
/// a request (0 = default).
/// Throws std::bad_alloc (or the port's equivalent) when memory is exhausted.
Stack allocate_stack(std::size_t size);
void release_stack(Stack stack) noexcept;

/// Prepares `fiber` (with fiber->stack and fiber->entry set) so that the first switch_fiber to
/// it calls fiber->entry(fiber) on its own stack. entry must never return.
void make_fiber(Fiber* fiber);

/// Saves the running context into `from` and resumes `to`. Returns when something switches
/// back to `from`. `from_finished` says `from` will never be resumed (its stack may be reused).
/// The Linux port defines it inline (asyncio/detail/linux/fiber_switch.hpp, included at the end
/// of this file): the scheduler's switch path then needs no LTO to reach the register switch.
#if !defined(__linux__)
void switch_fiber(Fiber* from, Fiber* to, bool from_finished) noexcept;
#endif

/// Called by the core once for each loop; returns the backend chosen for this platform.
/// `requested` names one ("uring", "epoll", "auto"); empty lets the port decide (on Linux the
/// ASYNCIO_BACKEND environment variable, then "auto"). Throws ValueError for an unknown name
/// and OSError when the requested backend cannot be created.
std::unique_ptr<IoBackend> make_backend(Loop& loop, const char* requested);

/// An identity of the calling thread, compared with the one that runs a loop to refuse
/// loop-thread-only calls from elsewhere. A port without threads returns a constant.
std::uintptr_t thread_id() noexcept;

/// Error sink (logs on Linux, UART on hw). `message` is one line, without newline.
void log_error(const char* message) noexcept;
void log_info(const char* message) noexcept;

/// Prints `message` and ends the program: a broken invariant such as a stack overflow.
[[noreturn]] void fatal(const char* message) noexcept;

/// Low-power support: true when the port can trade latency for fewer wake-ups (docs/semantics.md#low-power).
bool low_power_supported() noexcept;

}  // namespace port
}  // namespace detail
}  // namespace asyncio

#if defined(__linux__)
#include "asyncio/detail/linux/fiber_switch.hpp"
#endif
