// bench/memory: 100,000 concurrent tasks, created at once, each blocked (on an Event, or in a
// long sleep); reports the peak RSS (VmHWM) and the bytes each task costs, then releases them
// and finishes cleanly. The target: peak RSS <= 1 GiB.
//
// One measurement per process: VmHWM is a high-water mark and never goes down, so a second
// backend measured in the same process would report the first one's peak.

#include <cstdio>
#include <string>
#include <vector>

#include "asyncio/asyncio.hpp"
#include "bench_util.hpp"

namespace {

constexpr const char* kUsage =
    "usage: memory [--json] [--quick] [--tasks 100000] [--wait event|sleep] [--backend auto]\n"
    "              [--stack-size BYTES]\n"
    "Peak RSS and bytes per task of N tasks blocked at once. --wait event: the tasks wait on\n"
    "one Event, then it is set; --wait sleep: they sleep for an hour, then are cancelled.\n";

// Long enough that no sleeping task wakes during a run: they are cancelled long before.
constexpr std::int64_t kLongSleepMs = 3'600'000;

struct Settings {
  bool json = false;
  int tasks = 0;
  bool sleep = false;
  std::string backend;
  std::size_t stack_size = 0;
};

struct Result {
  std::int64_t rss_before = 0;
  std::int64_t peak_rss = 0;
  double create_ms = 0;
  double release_ms = 0;
  int finished = 0;
};

/// Creates every task, lets each run until it blocks, reads the high-water mark, then
/// releases them all and waits for every one to end.
Result measure(const Settings& settings) {
  Result result;
  asyncio::run([&] {
    asyncio::Event release;
    asyncio::TaskOptions options{.name = "", .stack_size = settings.stack_size};
    std::vector<asyncio::Task<void>> tasks;
    tasks.reserve(static_cast<std::size_t>(settings.tasks));
    result.rss_before = bench::current_rss_bytes();
    std::int64_t start = bench::now_ns();
    for (int i = 0; i < settings.tasks; ++i) {
      tasks.push_back(asyncio::create_task(options, [&] {
        if (settings.sleep) {
          asyncio::sleep_ms(kLongSleepMs);
        } else {
          release.wait();
        }
      }));
    }
    // sleep_ms(0) queues main behind every new task: each runs until it blocks, so each has
    // touched its stack before the high-water mark is read.
    asyncio::sleep_ms(0);
    result.create_ms = static_cast<double>(bench::now_ns() - start) / 1e6;
    result.peak_rss = bench::peak_rss_bytes();

    start = bench::now_ns();
    if (settings.sleep) {
      for (auto& task : tasks) task.cancel();
    } else {
      release.set();
    }
    asyncio::gather(asyncio::return_exceptions, tasks);
    for (const auto& task : tasks) {
      bool as_expected = settings.sleep ? task.cancelled() : task.done() && !task.exception();
      if (as_expected) ++result.finished;
    }
    result.release_ms = static_cast<double>(bench::now_ns() - start) / 1e6;
  });
  return result;
}

Settings parse(int argc, char** argv) {
  bench::Args args(argc, argv, kUsage);
  Settings settings;
  settings.json = args.flag("--json");
  bool quick = args.flag("--quick");
  // The target's figure is for 100,000 tasks; a tenth of that is enough for a smoke run.
  settings.tasks = static_cast<int>(args.number("--tasks", quick ? 10'000 : 100'000));
  std::string wait = args.text("--wait", "event");
  settings.sleep = wait == "sleep";
  settings.backend = args.text("--backend", "auto");
  settings.stack_size = static_cast<std::size_t>(args.number("--stack-size", 0));
  args.require(settings.tasks >= 1, "--tasks must be positive");
  args.require(wait == "event" || wait == "sleep", "--wait is event or sleep");
  args.finish();
  return settings;
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings = parse(argc, argv);
  asyncio::new_event_loop(asyncio::Loop::Options{.backend = settings.backend});
  std::string backend = asyncio::get_event_loop().backend_name();
  Result result = measure(settings);
  double per_task = static_cast<double>(result.peak_rss - result.rss_before) /
                    static_cast<double>(settings.tasks);
  if (settings.json) {
    bench::JsonLine()
        .add("bench", "memory")
        .add("impl", backend)
        .add("tasks", settings.tasks)
        .add("peak_rss_bytes", result.peak_rss)
        .add("bytes_per_task", per_task)
        .print();
  }
  bench::Table table({"impl", "tasks", "wait", "RSS before MiB", "peak RSS MiB", "bytes/task",
                      "create+block ms", "release ms"});
  table.add_row({backend, std::to_string(settings.tasks), settings.sleep ? "sleep" : "event",
                 bench::fixed(static_cast<double>(result.rss_before) / (1 << 20), 1),
                 bench::fixed(static_cast<double>(result.peak_rss) / (1 << 20), 1),
                 bench::fixed(per_task, 0), bench::fixed(result.create_ms, 1),
                 bench::fixed(result.release_ms, 1)});
  table.print(bench::human_out(settings.json));
  if (result.finished != settings.tasks) {
    std::fprintf(stderr, "error: %d of %d tasks ended as expected\n", result.finished,
                 settings.tasks);
    return 1;
  }
  return 0;
}
