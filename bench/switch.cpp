// bench/switch: task-switch rate of N tasks looping on sleep_ms(0) in fast-I/O mode, on each
// loop backend, against the same workload on Boost.Fiber (this_fiber::yield) and Boost.Asio
// (handlers re-posting themselves on a one-thread io_context). The targets: io_uring
// >= 1.5x Boost.Fiber, epoll >= Boost.Fiber.
//
// This file is built twice: as `switch`, against the library as this tree builds it (LTO on
// by default), and as `switch_consumer`, the way a program using the installed library is
// built (no LTO, a library compiled without LTO). `switch` runs `switch_consumer` in every
// round and reports its rates as the impls uring_consumer and epoll_consumer, so that both
// builds are compared with Boost.Fiber in the same run.
//
// Every implementation runs the same SwitchMeter: each worker counts one switch per yield, and
// worker 0 keeps time. Measuring starts only once every worker has run, so task creation and
// first-run costs stay out of the figure.

// Boost 1.74's Asio uses std::exchange without including <utility>; under g++ 12 in C++20
// mode nothing else pulls it in first ().
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/fiber/all.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "asyncio/linux.hpp"
#include "bench_util.hpp"

namespace {

constexpr const char* kUsage =
    "usage: switch [--json] [--quick] [--tasks 10,1000] [--duration-ms 200] [--repeat 5]\n"
    "              [--impl uring,epoll,uring_stall,epoll_stall,uring_consumer,epoll_consumer,\n"
    "                      boost_fiber,boost_asio]\n"
    "Switch rate of N tasks looping on sleep_ms(0) (fast-I/O mode) vs Boost.Fiber and Asio.\n"
    "Each (impl, N) runs --repeat times, interleaved; the median rate is reported.\n"
    "*_consumer: the same loop in a copy of this program built as a consumer builds it\n"
    "(no LTO), run as a child process in every round.\n"
    "*_stall: the same loop with the stall detector on (10 ms threshold), to show its cost.\n";

/// Counts switches and decides when a run ends.
class SwitchMeter {
 public:
  explicit SwitchMeter(std::int64_t duration_ns) : duration_ns_(duration_ns) {}

  /// Called by every worker after each switch; false tells the worker to stop.
  bool on_switch(bool timekeeper) {
    ++switches_;
    if (timekeeper) keep_time();
    return !stopped_;
  }

  double switches_per_sec() const {
    return static_cast<double>(end_count_ - start_count_) * 1e9 /
           static_cast<double>(end_ns_ - start_ns_);
  }

 private:
  // Worker 0 is the timekeeper. By its second switch every worker has run once (all three
  // schedulers are FIFO), so the clock starts there. It then reads the clock every 64th turn:
  // one clock_gettime (~28 ns) per at least 640 switches costs < 0.5 %.
  static constexpr std::uint64_t kWarmupTurns = 2;
  static constexpr std::uint64_t kTurnsPerClockRead = 64;

  void keep_time() {
    ++keeper_turns_;
    if (keeper_turns_ == kWarmupTurns) {
      start_ns_ = bench::now_ns();
      start_count_ = switches_;
    } else if (keeper_turns_ > kWarmupTurns && keeper_turns_ % kTurnsPerClockRead == 0) {
      std::int64_t now = bench::now_ns();
      if (now - start_ns_ >= duration_ns_) {
        end_ns_ = now;
        end_count_ = switches_;
        stopped_ = true;
      }
    }
  }

  std::int64_t duration_ns_;
  std::uint64_t switches_ = 0;
  std::uint64_t keeper_turns_ = 0;
  bool stopped_ = false;
  std::int64_t start_ns_ = 0;
  std::int64_t end_ns_ = 0;
  std::uint64_t start_count_ = 0;
  std::uint64_t end_count_ = 0;
};

/// The stall threshold of the `<backend>_stall` impls: the detector armed, never firing.
constexpr auto kStallThreshold = std::chrono::milliseconds(10);

/// Ours: N tasks on a fresh loop of `backend`, fast-I/O mode; main waits in gather. With
/// `stall_detector`, the loop's stall detector is on, to show what it costs.
double measure_asyncio(const std::string& backend, int tasks, std::int64_t duration_ns,
                       bool stall_detector = false) {
  SwitchMeter meter(duration_ns);
  bench::use_backend(backend);
  asyncio::roundrobin(false);
  if (stall_detector) asyncio::get_event_loop().set_stall_threshold(kStallThreshold);
  asyncio::run([&] {
    std::vector<asyncio::Task<void>> workers;
    for (int i = 0; i < tasks; ++i) {
      workers.push_back(asyncio::create_task([&meter, keeper = i == 0] {
        do {
          asyncio::sleep_ms(0);
        } while (meter.on_switch(keeper));
      }));
    }
    asyncio::gather(workers);
  });
  return meter.switches_per_sec();
}

/// Boost.Fiber with its default round_robin scheduler; the main fiber waits in join().
double measure_boost_fiber(int tasks, std::int64_t duration_ns) {
  SwitchMeter meter(duration_ns);
  std::vector<boost::fibers::fiber> workers;
  for (int i = 0; i < tasks; ++i) {
    workers.emplace_back([&meter, keeper = i == 0] {
      do {
        boost::this_fiber::yield();
      } while (meter.on_switch(keeper));
    });
  }
  for (auto& worker : workers) worker.join();
  return meter.switches_per_sec();
}

/// An Asio handler that counts itself and posts itself again: Asio's equivalent of a task
/// looping on sleep_ms(0).
struct Reposter {
  boost::asio::io_context* context;
  SwitchMeter* meter;
  bool keeper;
  void operator()() const {
    if (meter->on_switch(keeper)) boost::asio::post(*context, *this);
  }
};

/// Boost.Asio: N handlers on an io_context told it has one thread, run on this thread.
double measure_boost_asio(int tasks, std::int64_t duration_ns) {
  SwitchMeter meter(duration_ns);
  boost::asio::io_context context(1);
  for (int i = 0; i < tasks; ++i) boost::asio::post(context, Reposter{&context, &meter, i == 0});
  context.run();
  return meter.switches_per_sec();
}

struct Implementation {
  std::string name;
  std::function<double(int tasks, std::int64_t duration_ns)> measure;
};

#ifdef ASYNCIO_SWITCH_CONSUMER
/// Runs the consumer build of this program once for `backend` and returns its rate, or NaN
/// (with a note on stderr) if it cannot be run.
double measure_consumer(const std::string& backend, int tasks, std::int64_t duration_ns) {
  const std::string command = std::string("'") + ASYNCIO_SWITCH_CONSUMER +
                              "' --json --repeat 1 --impl " + backend + " --tasks " +
                              std::to_string(tasks) + " --duration-ms " +
                              std::to_string(static_cast<double>(duration_ns) / 1e6) + " 2>/dev/null";
  FILE* child = popen(command.c_str(), "r");
  double rate = std::nan("");
  if (!child) return rate;
  char line[512];
  while (std::fgets(line, sizeof line, child)) {
    const char* key = std::strstr(line, "\"switches_per_sec\":");
    if (key) rate = std::strtod(key + std::strlen("\"switches_per_sec\":"), nullptr);
  }
  if (pclose(child) != 0 || std::isnan(rate)) {
    std::fprintf(stderr, "note: %s did not run (build the switch_consumer target)\n",
                 ASYNCIO_SWITCH_CONSUMER);
    return std::nan("");
  }
  return rate;
}
#endif

std::vector<Implementation> implementations(const std::string& filter) {
  std::vector<Implementation> all;
  for (const auto& backend : bench::available_backends(filter)) {
    all.push_back({backend, [backend](int tasks, std::int64_t duration_ns) {
                     return measure_asyncio(backend, tasks, duration_ns);
                   }});
  }
  for (const auto& backend : bench::available_backends("")) {
    const std::string name = backend + "_stall";
    if (!bench::selected(filter, name)) continue;
    all.push_back({name, [backend](int tasks, std::int64_t duration_ns) {
                     return measure_asyncio(backend, tasks, duration_ns, true);
                   }});
  }
#ifdef ASYNCIO_SWITCH_CONSUMER
  for (const auto& backend : bench::available_backends("")) {
    const std::string name = backend + "_consumer";
    if (!bench::selected(filter, name)) continue;
    all.push_back({name, [backend](int tasks, std::int64_t duration_ns) {
                     return measure_consumer(backend, tasks, duration_ns);
                   }});
  }
#endif
  if (bench::selected(filter, "boost_fiber")) all.push_back({"boost_fiber", measure_boost_fiber});
  if (bench::selected(filter, "boost_asio")) all.push_back({"boost_asio", measure_boost_asio});
  return all;
}

std::vector<int> parse_task_counts(const std::string& list) {
  std::vector<int> counts;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t comma = std::min(list.find(',', start), list.size());
    counts.push_back(std::atoi(list.substr(start, comma - start).c_str()));
    start = comma + 1;
  }
  return counts;
}

struct Settings {
  bool json = false;
  std::vector<int> task_counts;
  std::int64_t duration_ns = 0;
  int repeat = 0;
  std::string impl_filter;
};

Settings parse(int argc, char** argv) {
  bench::Args args(argc, argv, kUsage);
  Settings settings;
  settings.json = args.flag("--json");
  bool quick = args.flag("--quick");
  settings.task_counts = parse_task_counts(args.text("--tasks", "10,1000"));
  // 200 ms runs are long against the timekeeper's clock-read grain (~2 ms at N = 1000) and
  // short enough that 5 interleaved repeats of 4 impls x 2 sizes take ~8 s.
  settings.duration_ns =
      static_cast<std::int64_t>(args.number("--duration-ms", quick ? 20 : 200) * 1e6);
  settings.repeat = static_cast<int>(args.number("--repeat", quick ? 3 : 5));
  settings.impl_filter = args.text("--impl", "");
  args.require(settings.repeat >= 1, "--repeat must be at least 1");
  args.require(settings.duration_ns > 0, "--duration-ms must be positive");
  for (int tasks : settings.task_counts) args.require(tasks >= 1, "--tasks must be positive");
  args.finish();
  return settings;
}

void report(const Settings& settings, const std::vector<Implementation>& impls,
            std::map<std::pair<std::string, int>, std::vector<double>>& rates) {
  bench::Table table(
      {"impl", "tasks", "switches/s (median)", "ns/switch", "vs boost_fiber", "min..max M/s"});
  for (int tasks : settings.task_counts) {
    const auto& fiber_rates = rates[{"boost_fiber", tasks}];
    double fiber = bench::median(fiber_rates);
    for (const auto& impl : impls) {
      const auto& samples = rates[{impl.name, tasks}];
      double rate = bench::median(samples);
      if (settings.json) {
        bench::JsonLine()
            .add("bench", "switch")
            .add("impl", impl.name)
            .add("tasks", tasks)
            .add("switches_per_sec", rate)
            .add("build", impl.name.ends_with("_consumer") ? "consumer" : "in-tree")
            .add("stall_detector_ms",
                 impl.name.ends_with("_stall") ? static_cast<int>(kStallThreshold.count()) : 0)
            .print();
      }
      auto [low, high] = std::minmax_element(samples.begin(), samples.end());
      table.add_row({impl.name, std::to_string(tasks), bench::fixed(rate, 0),
                     bench::fixed(1e9 / rate, 1),
                     fiber_rates.empty() ? "-" : bench::fixed(rate / fiber, 2) + "x",
                     bench::fixed(*low / 1e6, 1) + ".." + bench::fixed(*high / 1e6, 1)});
    }
  }
  table.print(bench::human_out(settings.json));
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings = parse(argc, argv);
  auto impls = implementations(settings.impl_filter);
  // Repeats are interleaved (every impl once per round) so that a burst of noise from a
  // co-tenant on this shared VM hits every implementation alike.
  std::map<std::pair<std::string, int>, std::vector<double>> rates;
  for (int round = 0; round < settings.repeat; ++round) {
    for (int tasks : settings.task_counts) {
      for (const auto& impl : impls) {
        rates[{impl.name, tasks}].push_back(impl.measure(tasks, settings.duration_ns));
      }
    }
  }
  report(settings, impls, rates);
  return 0;
}
