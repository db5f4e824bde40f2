// tsf_test: ThreadSafeFlag latency under load (the seed's asyncio_alt/demos/tsf_test.py).
//
// One task waits on a ThreadSafeFlag and measures the time from set() to its own resumption
// while ten tasks each block the CPU for 5 ms and then yield. The flag is set by:
//   task    another asyncio task, as in the seed (which "cheats": the set happens at a task
//           switch, so in fast I/O mode the waiter runs at once);
//   thread  a second thread about every 100 ms: a truly asynchronous source, so up to one
//           5 ms block passes before the next switch notices the set;
//   signal  a SIGALRM handler about every 100 ms (set() is async-signal-safe).
// Round-robin scheduling queues the woken waiter behind every blocker (up to ~50 ms); fast
// I/O runs it at the next task switch.

#include <signal.h>
#include <time.h>

#include <asyncio/linux.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "demo_util.hpp"

namespace {

constexpr const char* kUsage =
    "tsf_test [--source task|thread|signal] [--iterations N] [--json] "
    "[--backend epoll|uring|auto]";
constexpr int kBlockerCount = 10;
constexpr int kBlockMs = 5;
constexpr int kPeriodMs = 100;

enum class Source { kTask, kThread, kSignal };

// The signal handler touches only these atomics and ThreadSafeFlag::set().
static_assert(std::atomic<int>::is_always_lock_free);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<void*>::is_always_lock_free);

/// What a source and the waiting task share. Every set gets its own timestamp: when a stall
/// (the process descheduled, say) lets two sets arrive before the waiter runs, they coalesce
/// into one wake-up (docs/semantics.md#threadsafeflag), and the latency is measured from the older one, the set the
/// waiter was late for, not from the newer one (which would look fast).
struct Trigger {
  explicit Trigger(int total_sets) : set_times_ns(static_cast<std::size_t>(total_sets)) {}

  asyncio::ThreadSafeFlag flag;
  std::vector<std::atomic<std::int64_t>> set_times_ns;  // [i]: when set i happened
  std::atomic<int> fired{0};                            // sets so far (one writer: the source)
  /// The source sets the flag only while fired < allowed, so that every set of one mode is
  /// measured in that mode and none straddles the switch to the next.
  std::atomic<int> allowed{0};

  /// Called by the source. Async-signal-safe: atomics and ThreadSafeFlag::set() only.
  void fire() noexcept {
    const int n = fired.load();
    if (n >= allowed.load()) return;
    set_times_ns[static_cast<std::size_t>(n)].store(demo::now_ns());
    fired.store(n + 1);
    flag.set();
  }
};

/// The next period of an asynchronous source: 100 ms plus a pseudo-random 0-5 ms. A fixed
/// period would lock onto the blockers' 5 ms cycle (100 ms is exactly 20 blocks) and measure
/// the same phase of a block over and over; the jitter makes each set land at a random point
/// of the block under way, as a real interrupt would. xorshift32: async-signal-safe, and the
/// fixed seed makes runs repeatable.
class Jitter {
 public:
  std::int64_t next_period_ns() noexcept {
    std::uint32_t x = state_.load(std::memory_order_relaxed);
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    state_.store(x, std::memory_order_relaxed);
    return std::int64_t{kPeriodMs} * 1'000'000 + std::int64_t{x % 5000} * 1000;
  }

 private:
  std::atomic<std::uint32_t> state_{2463534242u};
};

/// Calls trigger.fire() about every 100 ms from a second thread.
class ThreadSource {
 public:
  explicit ThreadSource(Trigger& trigger)
      : thread_([this, &trigger] {
          // Relative, not absolute, sleeps: after a stall (the thread descheduled for a while)
          // an absolute schedule would catch up with two sets in quick succession, and the
          // second would coalesce with the first before the waiter ran.
          while (running_.load()) {
            std::this_thread::sleep_for(std::chrono::nanoseconds(jitter_.next_period_ns()));
            trigger.fire();
          }
        }) {}
  ThreadSource(const ThreadSource&) = delete;
  ThreadSource& operator=(const ThreadSource&) = delete;
  ~ThreadSource() {
    running_.store(false);
    thread_.join();
  }

 private:
  std::atomic<bool> running_{true};
  Jitter jitter_;
  std::thread thread_;  // declared last: it uses the members above as soon as it starts
};

/// What the SIGALRM handler reaches; set while a SignalSource exists.
struct SignalTarget {
  Trigger* trigger = nullptr;
  timer_t timer{};
  Jitter jitter;
};
std::atomic<SignalTarget*> signal_target{nullptr};

/// Re-arms `timer` as a one-shot `ns` from now. timer_settime is async-signal-safe.
void arm_timer(timer_t timer, std::int64_t ns) {
  itimerspec when{};
  when.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  when.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  timer_settime(timer, 0, &when, nullptr);
}

extern "C" void on_alarm(int) {
  // set() may write an eventfd; the interrupted code must find errno as it left it.
  const int saved_errno = errno;
  if (SignalTarget* target = signal_target.load()) {
    target->trigger->fire();
    arm_timer(target->timer, target->jitter.next_period_ns());
  }
  errno = saved_errno;
}

/// Calls trigger.fire() about every 100 ms from a SIGALRM handler (a POSIX timer).
class SignalSource {
 public:
  explicit SignalSource(Trigger& trigger) {
    target_.trigger = &trigger;
    sigevent event{};
    event.sigev_notify = SIGEV_SIGNAL;
    event.sigev_signo = SIGALRM;
    if (timer_create(CLOCK_MONOTONIC, &event, &target_.timer) != 0) {
      throw std::system_error(errno, std::generic_category(), "timer_create");
    }
    struct sigaction action {};
    action.sa_handler = on_alarm;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGALRM, &action, &previous_) != 0) {
      const int error = errno;
      timer_delete(target_.timer);
      throw std::system_error(error, std::generic_category(), "sigaction");
    }
    signal_target.store(&target_);
    arm_timer(target_.timer, target_.jitter.next_period_ns());
  }
  SignalSource(const SignalSource&) = delete;
  SignalSource& operator=(const SignalSource&) = delete;
  ~SignalSource() {
    // Stop the handler from re-arming before deleting the timer it re-arms.
    signal_target.store(nullptr);
    timer_delete(target_.timer);
    sigaction(SIGALRM, &previous_, nullptr);
  }

 private:
  SignalTarget target_;
  struct sigaction previous_ {};
};

/// The measurement in progress: which mode, how many samples so far, and when to stop.
struct Round {
  const char* mode = demo::kRoundRobin;
  int count = 0;     // wake-ups measured in this mode
  int seen = 0;      // sets the waiter has taken, over all modes
  int last_set = 0;  // the mode ends once the waiter has seen sets [0, last_set)
  asyncio::Event done;
};

void block() {
  while (true) {
    demo::block_cpu_ms(kBlockMs);
    asyncio::sleep_ms(0);
  }
}

void wait_for_sets(Trigger& trigger, Round& round, demo::Report& report) {
  while (true) {
    trigger.flag.wait();
    const std::int64_t now = demo::now_ns();
    const int fired = trigger.fired.load();
    // A set landing between our wake-up and the load above was taken with this one, and
    // leaves the flag set: the next wait() returns at once with nothing new.
    if (fired == round.seen) continue;
    const std::int64_t oldest = trigger.set_times_ns[static_cast<std::size_t>(round.seen)].load();
    report.iteration(round.mode, round.count++, demo::ns_to_ms(now - oldest),
                     fired - round.seen - 1);
    round.seen = fired;
    if (round.seen >= round.last_set) round.done.set();
  }
}

void measure(Source source, Trigger& trigger, Round& round, int iterations, demo::Report& report) {
  round.count = 0;
  round.last_set += iterations;
  round.done.clear();
  trigger.allowed.store(round.last_set);
  if (source == Source::kTask) {
    for (int i = 0; i < iterations; ++i) {
      trigger.fire();
      asyncio::sleep_ms(kPeriodMs);
    }
  }
  // Every set must wake the waiter (docs/semantics.md#threadsafeflag); a lost one would otherwise hang the demo.
  const std::int64_t limit_ms = std::int64_t{iterations} * kPeriodMs + 5000;
  try {
    asyncio::wait_for_ms([&round] { round.done.wait(); }, limit_ms);
  } catch (const asyncio::TimeoutError&) {
    throw std::runtime_error("the source made " + std::to_string(trigger.fired.load()) + " of " +
                             std::to_string(round.last_set) + " sets, the waiter saw " +
                             std::to_string(round.seen) + ": a wake-up was lost");
  }
  report.summary(round.mode);
}

void tsf_test(Source source, Trigger& trigger, int iterations, demo::Report& report) {
  Round round;
  std::vector<asyncio::Task<void>> tasks;
  for (int n = 0; n < kBlockerCount; ++n) tasks.push_back(asyncio::create_task(block));
  tasks.push_back(asyncio::create_task([&] { wait_for_sets(trigger, round, report); }));

  report.say(
      "This tests the latency of a ThreadSafeFlag in the presence of\n"
      "multiple running tasks: first under normal roundrobin scheduling.\n"
      "Ideal time is 0.");
  round.mode = demo::kRoundRobin;
  measure(source, trigger, round, iterations, report);

  report.say("Now using I/O priority scheduling (roundrobin(false)).");
  asyncio::roundrobin(false);
  round.mode = demo::kFastIo;
  measure(source, trigger, round, iterations, report);

  for (auto& task : tasks) task.cancel();
  asyncio::gather(asyncio::return_exceptions, tasks);
}

const char* source_name(Source source) {
  switch (source) {
    case Source::kTask:
      return "task";
    case Source::kThread:
      return "thread";
    case Source::kSignal:
      return "signal";
  }
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  Source source = Source::kTask;
  const demo::Options options = demo::parse_options(
      argc, argv, kUsage, [&source](std::string_view flag, const std::string& value) {
        if (flag != "--source") return false;
        if (value == "task") {
          source = Source::kTask;
        } else if (value == "thread") {
          source = Source::kThread;
        } else if (value == "signal") {
          source = Source::kSignal;
        } else {
          demo::usage_error(kUsage, "--source must be task, thread or signal");
        }
        return true;
      });
  try {
    asyncio::Loop& loop =
        asyncio::new_event_loop(asyncio::Loop::Options{.backend = options.backend});
    demo::Report report("tsf_test", options.json,
                        {{"source", source_name(source)}, {"backend", loop.backend_name()}});
    if (!options.json) {
      std::printf("tsf_test on the %s backend, flag set by a %s\n", loop.backend_name(),
                  source_name(source));
    }
    // Declared after the loop and before the sources: the flag outlives every set().
    Trigger trigger(2 * options.iterations);
    std::unique_ptr<ThreadSource> thread_source;
    std::unique_ptr<SignalSource> signal_source;
    if (source == Source::kThread) thread_source = std::make_unique<ThreadSource>(trigger);
    if (source == Source::kSignal) signal_source = std::make_unique<SignalSource>(trigger);
    asyncio::run([&] { tsf_test(source, trigger, options.iterations, report); });
  } catch (const std::exception& error) {
    std::fprintf(stderr, "tsf_test: %s\n", error.what());
    return 1;
  }
  return 0;
}
