// bench/timers: 1000 tasks each looping on sleep_ms(random 1..50) for 3 s, on each loop
// backend: wake-ups delivered, CPU per wake-up (the whole process's user + system time over
// the run, divided by the wake-ups) and lateness (wake time minus requested due time, both on
// CLOCK_MONOTONIC, read in the task). A raw timerfd serving the same random schedule from one
// thread runs in the same process for reference. The targets, against that peer in the same
// run: a lateness p99 of at most the loop's timer grid plus the peer's p99, and at most half
// the peer's CPU per wake-up.

#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "asyncio/linux.hpp"
#include "bench_util.hpp"

namespace {

constexpr const char* kUsage =
    "usage: timers [--json] [--quick] [--tasks 1000] [--duration-ms 3000] [--rounds 1]\n"
    "              [--impl uring,epoll,timerfd_raw] [--timer-resolution-us N]\n"
    "Timer precision and CPU cost of tasks looping on sleep_ms(random 1..50).\n"
    "With several rounds, the impls are interleaved and the median of each figure is reported.\n"
    "--timer-resolution-us sets the loop's timer grid (Loop::set_timer_resolution; default\n"
    "Loop::kDefaultTimerResolutionUs). 'loop wake-ups/s' counts the process's voluntary\n"
    "context switches: each is one blocking wait that slept.\n";

// The workload: periods drawn uniformly from 1..50 ms.
constexpr int kMinPeriodMs = 1;
constexpr int kMaxPeriodMs = 50;
// Before the window opens, each implementation serves its timers for this long, so that
// every timer has been served once: the first pass (1,000 fresh stacks for the loop) runs
// a few ms and would make the first wake-ups late, in the loop more than in the peer.
constexpr std::int64_t kWarmUpMs = kMaxPeriodMs;
// A fixed seed makes every impl and every run draw the same periods for timer i.
constexpr std::uint32_t kSeed = 20240601;

/// SplitMix64: 8 bytes of state. Each timer has its own generator, so that timer i draws the
/// same sequence in every implementation; a std::mt19937 per timer (2.5 KB of state each,
/// 2.5 MB for 1000 timers, refilled on the first draw) made every wake-up miss the cache on
/// the benchmark's own bookkeeping, in every implementation alike.
class SplitMix64 {
 public:
  using result_type = std::uint64_t;
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  result_type operator()() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

/// Each timer's period stream: timer i draws the same sequence in every implementation.
class Periods {
 public:
  explicit Periods(int timer) : random_(kSeed + static_cast<std::uint64_t>(timer)) {}
  int next_ms() { return distribution_(random_); }

 private:
  SplitMix64 random_;
  std::uniform_int_distribution<int> distribution_{kMinPeriodMs, kMaxPeriodMs};
};

/// What one run measured.
struct Result {
  std::int64_t wakeups = 0;
  double cpu_us_per_wakeup = 0;
  double lateness_p50_us = 0;
  double lateness_p99_us = 0;
  double lateness_min_us = 0;
  std::int64_t early = 0;  // wake-ups before the due time: a scheduler bug if ever non-zero
  std::int64_t loop_wakeups = 0;  // voluntary context switches in the window
  std::int64_t grid_us = 0;       // the loop's timer grid (0: none, the raw peer)
};

/// Voluntary context switches of the process so far: one per blocking wait that slept.
std::int64_t voluntary_switches() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_nvcsw;
}

/// The loop's clock counts whole microseconds, so a task due at a nanosecond time can be woken
/// up to 1 us before it without the loop waking early by its own clock.
constexpr std::int64_t kClockResolutionNs = 1000;

/// Collects wake-ups while a run's measuring window is open.
class Recorder {
 public:
  explicit Recorder(std::size_t expected) { lateness_us_.reserve(expected); }

  void open() {
    switches_start_ = voluntary_switches();
    cpu_start_us_ = bench::process_cpu_us();
    open_ = true;
  }
  void close() {
    cpu_end_us_ = bench::process_cpu_us();
    switches_end_ = voluntary_switches();
    open_ = false;
    closed_ = true;
  }
  bool is_open() const { return open_; }
  /// The window has opened and closed: the tasks stop.
  bool is_closed() const { return closed_; }

  void record(std::int64_t due_ns, std::int64_t woke_ns) {
    if (!open_) return;
    lateness_us_.push_back(static_cast<double>(woke_ns - due_ns) / 1e3);
    if (woke_ns < due_ns - kClockResolutionNs) ++early_;
  }

  Result result() const {
    Result result;
    result.wakeups = static_cast<std::int64_t>(lateness_us_.size());
    result.cpu_us_per_wakeup =
        static_cast<double>(cpu_end_us_ - cpu_start_us_) / static_cast<double>(result.wakeups);
    result.lateness_p50_us = bench::percentile(lateness_us_, 50);
    result.lateness_p99_us = bench::percentile(lateness_us_, 99);
    result.lateness_min_us = bench::percentile(lateness_us_, 0);
    result.early = early_;
    result.loop_wakeups = switches_end_ - switches_start_;
    return result;
  }

 private:
  std::vector<double> lateness_us_;
  bool closed_ = false;
  std::int64_t early_ = 0;
  std::int64_t cpu_start_us_ = 0;
  std::int64_t cpu_end_us_ = 0;
  std::int64_t switches_start_ = 0;
  std::int64_t switches_end_ = 0;
  bool open_ = false;
};

/// Room for every wake-up of a run: the mean period is 25.5 ms; twice that rate is a margin
/// against reallocating (and so disturbing the CPU figure) in the middle of a run.
std::size_t expected_wakeups(int timers, std::int64_t duration_ms) {
  constexpr double kMeanPeriodMs = (kMinPeriodMs + kMaxPeriodMs) / 2.0;
  return static_cast<std::size_t>(2.0 * timers * static_cast<double>(duration_ms) / kMeanPeriodMs);
}

/// Ours: `timers` tasks on a fresh loop of `backend`. The main task opens the window once
/// every task has run once, sleeps through it, then closes it; tasks end at their next
/// wake-up.
Result measure_asyncio(const std::string& backend, int timers, std::int64_t duration_ms,
                       asyncio::Micros resolution_us) {
  Recorder recorder(expected_wakeups(timers, duration_ms));
  bench::use_backend(backend);
  if (resolution_us >= 0) asyncio::get_event_loop().set_timer_resolution(resolution_us);
  asyncio::run([&] {
    std::vector<asyncio::Task<void>> tasks;
    for (int i = 0; i < timers; ++i) {
      tasks.push_back(asyncio::create_task([&recorder, periods = Periods(i)]() mutable {
        do {
          int period_ms = periods.next_ms();
          std::int64_t due_ns = bench::now_ns() + std::int64_t{period_ms} * 1'000'000;
          asyncio::sleep_ms(period_ms);
          recorder.record(due_ns, bench::now_ns());
        } while (!recorder.is_closed());
      }));
    }
    // The figure is the steady state: every task runs its first iteration (the first switch
    // onto a fresh stack, the first draw) and is served once before the window opens, as the
    // timerfd peer's timers are.
    asyncio::sleep_ms(0);
    asyncio::sleep_ms(kWarmUpMs);
    recorder.open();
    asyncio::sleep_ms(duration_ms);
    recorder.close();
    asyncio::gather(tasks);
  });
  Result result = recorder.result();
  result.grid_us = asyncio::get_event_loop().timer_resolution();
  return result;
}

// ---- The reference: software timers in a min-heap driving one timerfd ----

class TimerFd {
 public:
  TimerFd() : fd_(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error(std::string("timerfd_create: ") + std::strerror(errno));
  }
  ~TimerFd() { close(fd_); }
  TimerFd(const TimerFd&) = delete;
  TimerFd& operator=(const TimerFd&) = delete;

  /// Arms the timer for the absolute CLOCK_MONOTONIC time `due_ns` (at once if past).
  void arm(std::int64_t due_ns) {
    itimerspec spec{};
    spec.it_value.tv_sec = due_ns / 1'000'000'000;
    spec.it_value.tv_nsec = due_ns % 1'000'000'000;
    timerfd_settime(fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
  }
  /// Blocks until the armed time passes.
  void wait() {
    std::uint64_t expirations = 0;
    while (read(fd_, &expirations, sizeof expirations) < 0 && errno == EINTR) {
    }
  }

 private:
  int fd_;
};

/// The same schedule as the tasks: each timer, once served, asks for its next period from
/// the moment it was served, as a task calls sleep_ms right after it wakes.
Result measure_timerfd_raw(int timers, std::int64_t duration_ms) {
  using Entry = std::pair<std::int64_t, int>;  // (due ns, timer)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  std::vector<Periods> periods;
  Recorder recorder(expected_wakeups(timers, duration_ms));
  TimerFd timer;
  for (int i = 0; i < timers; ++i) {
    periods.emplace_back(i);
    heap.emplace(bench::now_ns() + std::int64_t{periods[i].next_ms()} * 1'000'000, i);
  }
  const std::int64_t open_ns = bench::now_ns() + kWarmUpMs * 1'000'000;
  const std::int64_t end_ns = open_ns + duration_ms * 1'000'000;
  while (bench::now_ns() < end_ns) {
    if (!recorder.is_open() && bench::now_ns() >= open_ns) recorder.open();
    timer.arm(heap.top().first);
    timer.wait();
    std::int64_t now = bench::now_ns();
    while (heap.top().first <= now) {
      auto [due_ns, i] = heap.top();
      heap.pop();
      recorder.record(due_ns, now);
      now = bench::now_ns();
      heap.emplace(now + std::int64_t{periods[i].next_ms()} * 1'000'000, i);
    }
  }
  recorder.close();
  return recorder.result();
}

// ---- Driver ----

struct Implementation {
  std::string name;
  std::function<Result(int timers, std::int64_t duration_ms)> measure;
};

std::vector<Implementation> implementations(const std::string& filter,
                                            asyncio::Micros resolution_us) {
  std::vector<Implementation> all;
  for (const auto& backend : bench::available_backends(filter)) {
    all.push_back({backend, [backend, resolution_us](int timers, std::int64_t duration_ms) {
                     return measure_asyncio(backend, timers, duration_ms, resolution_us);
                   }});
  }
  if (bench::selected(filter, "timerfd_raw")) all.push_back({"timerfd_raw", measure_timerfd_raw});
  return all;
}

struct Settings {
  bool json = false;
  int timers = 0;
  std::int64_t duration_ms = 0;
  int rounds = 0;
  std::string impl_filter;
  asyncio::Micros resolution_us = -1;  // -1: the loop's default
};

Settings parse(int argc, char** argv) {
  bench::Args args(argc, argv, kUsage);
  Settings settings;
  settings.json = args.flag("--json");
  bool quick = args.flag("--quick");
  settings.timers = static_cast<int>(args.number("--tasks", 1000));
  // A full run takes 3 s; --quick keeps a smoke run of three impls under 2 s.
  settings.duration_ms =
      static_cast<std::int64_t>(args.number("--duration-ms", quick ? 400 : 3000));
  settings.rounds = static_cast<int>(args.number("--rounds", 1));
  settings.impl_filter = args.text("--impl", "");
  settings.resolution_us = static_cast<asyncio::Micros>(args.number("--timer-resolution-us", -1));
  args.require(settings.timers >= 1, "--tasks must be positive");
  args.require(settings.duration_ms > 0, "--duration-ms must be positive");
  args.require(settings.rounds >= 1, "--rounds must be at least 1");
  args.finish();
  return settings;
}

/// The median over rounds of one figure.
double median_of(const std::vector<Result>& results, double Result::*figure) {
  std::vector<double> values;
  for (const auto& result : results) values.push_back(result.*figure);
  return bench::median(values);
}

void report(const Settings& settings, const std::vector<Implementation>& impls,
            std::map<std::string, std::vector<Result>>& results) {
  bench::Table table({"impl", "wake-ups", "wake-ups/s", "loop wake-ups/s", "CPU us/wake-up",
                      "lateness p50 us", "p99 us", "min us", "early", "grid us"});
  for (const auto& impl : impls) {
    const auto& runs = results[impl.name];
    std::vector<double> wakeups, early, loop_wakeups;
    for (const auto& run : runs) {
      wakeups.push_back(static_cast<double>(run.wakeups));
      early.push_back(static_cast<double>(run.early));
      loop_wakeups.push_back(static_cast<double>(run.loop_wakeups));
    }
    const double loop_wakeups_per_sec =
        bench::median(loop_wakeups) * 1e3 / static_cast<double>(settings.duration_ms);
    auto wakeups_median = static_cast<std::int64_t>(bench::median(wakeups));
    double cpu = median_of(runs, &Result::cpu_us_per_wakeup);
    double p50 = median_of(runs, &Result::lateness_p50_us);
    double p99 = median_of(runs, &Result::lateness_p99_us);
    const std::int64_t grid_us = runs.empty() ? 0 : runs.front().grid_us;
    if (settings.json) {
      bench::JsonLine()
          .add("bench", "timers")
          .add("impl", impl.name)
          .add("wakeups", wakeups_median)
          .add("cpu_us_per_wakeup", cpu)
          .add("lateness_p50_us", p50)
          .add("lateness_p99_us", p99)
          .add("loop_wakeups_per_sec", loop_wakeups_per_sec)
          .add("timer_grid_us", grid_us)
          .print();
    }
    table.add_row({impl.name, std::to_string(wakeups_median),
                   bench::fixed(static_cast<double>(wakeups_median) * 1e3 /
                                    static_cast<double>(settings.duration_ms),
                                0),
                   bench::fixed(loop_wakeups_per_sec, 0), bench::fixed(cpu, 3), bench::fixed(p50, 1), bench::fixed(p99, 1),
                   bench::fixed(median_of(runs, &Result::lateness_min_us), 1),
                   bench::fixed(bench::median(early), 0), std::to_string(grid_us)});
  }
  table.print(bench::human_out(settings.json));
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings = parse(argc, argv);
  auto impls = implementations(settings.impl_filter, settings.resolution_us);
  std::map<std::string, std::vector<Result>> results;
  for (int round = 0; round < settings.rounds; ++round) {
    for (const auto& impl : impls) {
      results[impl.name].push_back(impl.measure(settings.timers, settings.duration_ms));
    }
  }
  report(settings, impls, results);
  return 0;
}
