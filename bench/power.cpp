// bench/power: what low-power mode saves. Each workload runs in normal and in
// low-power mode, each run in its own process under tools/power_proxy (found next to this
// executable, at ../tools/power_proxy), and one table compares them:
//   blink      one task toggling every 1 s;
//   timers     100 tasks sleeping periods of 1-50 ms;
//   pipe_1khz  a pipe written at 1 kHz by another process, read by a task;
//   idle       one task waiting on a ThreadSafeFlag nobody sets;
//   tsf_1khz   a ThreadSafeFlag set at 1 kHz from another thread;
// and, as the peer that the latencies are read against, measured in the same run:
//   vm_wake    no loop: a plain thread sleeping to each 20 ms boundary (clock_nanosleep,
//              default slack), its latency how late the VM woke it. Low power serves timers
//              at these boundaries, so timers' lateness there is at most the slot plus this.
//
// How it measures. The bench re-executes itself with the hidden `--workload NAME --mode M`
// through the proxy. The workload marks its steady state for the proxy (POWER_PROXY_MARK_FD),
// so that exec, the loader and the loop's setup (2-4 wake-ups) do not count. The pipe's
// writer is forked by this parent, outside the proxy's cgroup, and hands the reader its pipe
// by inheritance: the proxy then measures the reader alone. In tsf_1khz the setter thread is
// part of the measured process and the proxy counts every thread, so there the figures are
// the loop thread's own (getrusage RUSAGE_THREAD); the JSON says "scope":"loop_thread".
// Without the proxy the bench measures in-process (getrusage) and says so on stderr.
// Each workload runs --rounds times (default 3); the table and the JSON give each mode's median
// round (lost: the sum; max lateness: the worst round). Blink and idle, one wake-up a second or
// less, run both modes at once; the busier workloads alternate them round by round.
// "cpu_us_per_wakeup" is CPU us/s over wake-ups/s; vm_wake's is the VM's bare cost of a wake-up,
// the floor for blink, whose "toggle_cpu_p50_us" is the median toggle's loop-thread CPU.
//
// Latency: blink and timers, how late each sleep returned; pipe_1khz, now minus the writer's
// CLOCK_MONOTONIC stamp (8 bytes per write); tsf_1khz, from each set() to the waiter's run that
// served it (sets coalesce: one run serves every set since the last), and on its own, as
// "first_set_p99_ms" in the JSON, for the first set each run served, the one that waited
// longest. "lost": bytes never read; sets after which the waiter never ran.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "asyncio/linux.hpp"
#include "bench_util.hpp"

namespace {

constexpr const char* kUsage =
    "usage: power [--json] [--quick] [--seconds N] [--rounds N]\n"
    "             [--workloads blink,timers,pipe_1khz,idle,tsf_1khz,vm_wake]\n"
    "Runs each workload in normal and low-power mode under tools/power_proxy and compares\n"
    "wake-ups/s, CPU us/s, lost events, p99 latency and modelled power. The backend is\n"
    "ASYNCIO_BACKEND's (epoll|uring; default auto). vm_wake is the peer the latencies are\n"
    "read against: the VM's own wake-up at 20 ms boundaries, without our loop.\n";

const std::vector<std::string> kWorkloads = {"blink",    "timers",   "pipe_1khz",
                                             "idle",     "tsf_1khz", "vm_wake"};
const std::vector<std::string> kModes = {"normal", "low_power"};
/// The VM's own wake-up, the peer the latencies are read against (no loop, one mode).
const std::string kVmWake = "vm_wake";
const std::vector<std::string> kPlain = {"plain"};
// Low-power mode's added latency bound (docs/semantics.md#low-power's 20 ms slot): latencies above it are counted.
constexpr double kSlotMs = 20.0;

std::int64_t micros(const timeval& t) {
  return std::int64_t{t.tv_sec} * 1'000'000 + t.tv_usec;
}

// ---- The workload side (one process per workload and mode) ----

/// Voluntary switches and CPU of the calling thread or of the whole process.
struct Usage {
  std::int64_t wakeups = 0;
  std::int64_t cpu_us = 0;
  static Usage of(int who) {
    rusage usage{};
    getrusage(who, &usage);
    return {usage.ru_nvcsw, micros(usage.ru_utime) + micros(usage.ru_stime)};
  }
};

/// What one workload run reports to the parent: one JSON line on stdout.
struct Outcome {
  std::vector<double> latency_ms;
  std::vector<double> first_latency_ms;  // tsf_1khz: the first set each waiter run served
  std::vector<double> toggle_cpu_us;     // blink: the loop thread's CPU for each toggle
  std::int64_t lost = 0;
  std::int64_t events = 0;
};

/// The steady-state window: marked for the proxy, and measured in-process as a fallback and
/// for the loop thread's own figures.
class Window {
 public:
  void begin() {
    mark('b');
    start_ns_ = bench::now_ns();
    thread_ = Usage::of(RUSAGE_THREAD);
    process_ = Usage::of(RUSAGE_SELF);
  }
  void end() {
    thread_end_ = Usage::of(RUSAGE_THREAD);
    process_end_ = Usage::of(RUSAGE_SELF);
    end_ns_ = bench::now_ns();
    mark('e');
  }
  void report(bench::JsonLine& line) const {
    line.add("seconds", static_cast<double>(end_ns_ - start_ns_) / 1e9)
        .add("thread_wakeups", thread_end_.wakeups - thread_.wakeups)
        .add("thread_cpu_us", thread_end_.cpu_us - thread_.cpu_us)
        .add("process_wakeups", process_end_.wakeups - process_.wakeups)
        .add("process_cpu_us", process_end_.cpu_us - process_.cpu_us);
  }

 private:
  /// Tells tools/power_proxy where the window starts or ends and waits for its answer (the
  /// protocol is described at Mark in tools/power_proxy.cpp). Nothing without the proxy.
  static void mark(char what) {
    static const int mark_fd = descriptor("POWER_PROXY_MARK_FD");
    static const int ack_fd = descriptor("POWER_PROXY_ACK_FD");
    if (mark_fd < 0 || ack_fd < 0) return;
    struct {
      char what;
      char unused[3];
      std::int32_t tid;
    } record{what, {}, static_cast<std::int32_t>(gettid())};
    char answer = 0;
    if (write(mark_fd, &record, sizeof record) != sizeof record || read(ack_fd, &answer, 1) != 1) {
      std::fprintf(stderr, "power: the proxy did not answer a window mark\n");
    }
  }
  static int descriptor(const char* variable) {
    const char* text = std::getenv(variable);
    return text == nullptr ? -1 : std::atoi(text);
  }
  std::int64_t start_ns_ = 0, end_ns_ = 0;
  Usage thread_, process_, thread_end_, process_end_;
};

double ms_since(std::int64_t stamp_ns) {
  return static_cast<double>(bench::now_ns() - stamp_ns) / 1e6;
}

/// Sleeps until `due_ns` on bench::now_ns()'s clock (CLOCK_MONOTONIC); a signal does not end
/// the sleep early. The 1 kHz sources and vm_wake keep absolute schedules with it.
void sleep_until_ns(std::int64_t due_ns) {
  const timespec until{due_ns / 1'000'000'000, due_ns % 1'000'000'000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) {
  }
}

/// (a) One task toggling a (pretend) LED every second, on an absolute schedule.
void blink(double seconds, Window& window, Outcome& outcome) {
  bool led = false;
  window.begin();
  const std::int64_t start = bench::now_ns();
  const auto toggles = static_cast<std::int64_t>(seconds);
  std::int64_t cpu_ns = bench::this_thread_cpu_ns();
  for (std::int64_t k = 1; k <= toggles; ++k) {
    const std::int64_t due = start + k * 1'000'000'000;
    asyncio::sleep_us((due - bench::now_ns() + 999) / 1000);
    led = !led;
    outcome.latency_ms.push_back(ms_since(due));
    ++outcome.events;
    // One toggle's whole cycle on this thread: its wake-up, its work, its next sleep. The
    // window's sum counts a toggle that cost 3x the others in full; the median does not.
    const std::int64_t cpu_now = bench::this_thread_cpu_ns();
    outcome.toggle_cpu_us.push_back(static_cast<double>(cpu_now - cpu_ns) / 1e3);
    cpu_ns = cpu_now;
  }
  window.end();
}

/// (b) 100 tasks sleeping 1..50 ms in turn; lateness of every sleep.
void timers(double seconds, Window& window, Outcome& outcome) {
  constexpr int kTasks = 100;
  const std::int64_t stop = bench::now_ns() + static_cast<std::int64_t>(seconds * 1e9);
  std::vector<asyncio::Task<void>> tasks;
  window.begin();
  for (int i = 0; i < kTasks; ++i) {
    const std::int64_t period_us = 1000 + std::int64_t{i} * 49'000 / (kTasks - 1);
    tasks.push_back(asyncio::create_task([&outcome, stop, period_us] {
      while (bench::now_ns() < stop) {
        const std::int64_t due = bench::now_ns() + period_us * 1000;
        asyncio::sleep_us(period_us);
        outcome.latency_ms.push_back(ms_since(due));
        ++outcome.events;
      }
    }));
  }
  for (auto& task : tasks) asyncio::await(task);
  window.end();
}

/// (c) Reads 8-byte stamps from `fd` (the writer is another process) until end of file.
void pipe_reader(int fd, int go_fd, std::int64_t expected, Window& window, Outcome& outcome) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  char buffer[4096];
  std::size_t held = 0;  // bytes of a stamp split across reads
  std::int64_t bytes = 0;
  window.begin();
  char go = 'g';
  if (write(go_fd, &go, 1) != 1) throw std::runtime_error("cannot start the writer");
  close(go_fd);
  for (;;) {
    asyncio::wait_readable(fd);
    ssize_t got = read(fd, buffer + held, sizeof buffer - held);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (got <= 0) break;
    bytes += got;
    std::size_t total = held + static_cast<std::size_t>(got);
    std::size_t whole = total / 8 * 8;
    for (std::size_t at = 0; at < whole; at += 8) {
      std::int64_t stamp = 0;
      std::memcpy(&stamp, buffer + at, 8);
      outcome.latency_ms.push_back(ms_since(stamp));
    }
    held = total - whole;
    std::memmove(buffer, buffer + whole, held);
  }
  window.end();
  outcome.events = bytes;
  outcome.lost = expected * 8 - bytes;
}

/// (d) One task waiting on a flag nobody sets, for `seconds`.
void idle(double seconds, Window& window, Outcome& outcome) {
  asyncio::ThreadSafeFlag flag;
  window.begin();
  try {
    asyncio::wait_for_ms([&flag] { flag.wait(); }, static_cast<std::int64_t>(seconds * 1000));
    ++outcome.lost;  // nobody sets it: waking up for it would be a spurious wake-up
  } catch (const asyncio::TimeoutError&) {
  }
  window.end();
}

/// (e) Another thread sets a flag every millisecond (absolute schedule); the task waits.
/// The setter stands for a 1 kHz source independent of the loop, like pipe_1khz's writer
/// process: it sleeps with `source_slack_ns`, the slack the process had before low-power
/// mode, not the mode's 1 ms that a thread started from the loop thread inherits (which tied
/// its sets to the loop's own wake-ups; the per-set p99 is ~20 ms either way).
void threadsafe_flag(double seconds, long source_slack_ns, Window& window, Outcome& outcome) {
  asyncio::ThreadSafeFlag flag;
  const auto total = static_cast<std::int64_t>(seconds * 1000);
  std::vector<std::int64_t> set_ns(static_cast<std::size_t>(total));  // when set i happened
  std::atomic<std::int64_t> sets{0};  // set_ns[0, sets) are written
  std::atomic<bool> done{false};
  window.begin();
  std::thread setter([&] {
    prctl(PR_SET_TIMERSLACK, source_slack_ns, 0, 0, 0);
    const std::int64_t start = bench::now_ns();
    for (std::int64_t i = 0; i < total; ++i) {
      sleep_until_ns(start + (i + 1) * 1'000'000);
      set_ns[static_cast<std::size_t>(i)] = bench::now_ns();
      sets.store(i + 1, std::memory_order_release);
      flag.set();
    }
    done.store(true);
    flag.set();
  });
  std::int64_t served = 0;  // sets counted before the waiter's last run
  auto waiter = asyncio::create_task([&] {
    for (;;) {
      flag.wait();
      const std::int64_t upto = sets.load(std::memory_order_acquire);
      // Every set this run serves, as every stamp in pipe_1khz; the first of them waited
      // longest, and is also reported on its own.
      if (upto > served) {
        outcome.first_latency_ms.push_back(ms_since(set_ns[static_cast<std::size_t>(served)]));
      }
      for (std::int64_t i = served; i < upto; ++i) {
        outcome.latency_ms.push_back(ms_since(set_ns[static_cast<std::size_t>(i)]));
      }
      served = upto;
      ++outcome.events;
      if (done.load() && served == total) return;
    }
  });
  try {
    asyncio::wait_for_ms(waiter, static_cast<std::int64_t>(seconds * 1000) + 1000);
  } catch (const asyncio::TimeoutError&) {
  }
  window.end();
  setter.join();
  outcome.lost = total - served;
}

/// The VM's own timer wake-up: a plain thread, no loop, sleeps to each 20 ms boundary with the
/// process's default slack and records how late it woke.
void vm_wake(double seconds, Window& window, Outcome& outcome) {
  constexpr std::int64_t kSlotNs = 20'000'000;
  window.begin();
  const std::int64_t stop = bench::now_ns() + static_cast<std::int64_t>(seconds * 1e9);
  for (std::int64_t due = (bench::now_ns() / kSlotNs + 1) * kSlotNs; due < stop; due += kSlotNs) {
    sleep_until_ns(due);
    outcome.latency_ms.push_back(ms_since(due));
    ++outcome.events;
  }
  window.end();
}

int run_workload(const std::string& name, const std::string& mode, double seconds, int fd,
                 int go_fd, std::int64_t expected) {
  const long source_slack_ns = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  Window window;
  Outcome outcome;
  std::string backend = "none";
  asyncio::LoopStats stats;
  std::int64_t run_start_ns = 0;
  double loop_seconds = 0;
  if (name == kVmWake) {
    vm_wake(seconds, window, outcome);
  } else {
    asyncio::power_mode(mode == "low_power");
    run_start_ns = bench::now_ns();
    asyncio::run([&] {
      if (name == "blink") blink(seconds, window, outcome);
      if (name == "timers") timers(seconds, window, outcome);
      if (name == "pipe_1khz") pipe_reader(fd, go_fd, expected, window, outcome);
      if (name == "idle") idle(seconds, window, outcome);
      if (name == "tsf_1khz") threadsafe_flag(seconds, source_slack_ns, window, outcome);
    });
    backend = asyncio::get_event_loop().backend_name();
    stats = asyncio::get_event_loop().stats();
    loop_seconds = static_cast<double>(bench::now_ns() - run_start_ns) / 1e9;
  }
  bench::JsonLine line;
  line.add("workload_result", name)
      .add("mode", mode)
      .add("backend", backend)
      .add("events", outcome.events)
      .add("lost", outcome.lost)
      .add("latency_p99_ms", bench::percentile(outcome.latency_ms, 99))
      .add("latency_max_ms", bench::percentile(outcome.latency_ms, 100))
      .add("first_set_p99_ms", bench::percentile(outcome.first_latency_ms, 99))
      .add("toggle_cpu_p50_us", bench::median(outcome.toggle_cpu_us))
      .add("samples", static_cast<std::int64_t>(outcome.latency_ms.size()))
      .add("late_over_slot", static_cast<std::int64_t>(
                                 std::count_if(outcome.latency_ms.begin(), outcome.latency_ms.end(),
                                               [](double ms) { return ms > kSlotMs; })))
      // The loop's own view (Loop::stats), over the whole run rather than the window.
      .add("loop_seconds", loop_seconds)
      .add("loop_task_switches", static_cast<std::int64_t>(stats.task_switches))
      .add("loop_task_wakeups", static_cast<std::int64_t>(stats.task_wakeups))
      .add("loop_blocking_waits", static_cast<std::int64_t>(stats.blocking_waits))
      .add("loop_time_blocked_ms", static_cast<double>(stats.time_blocked_us) / 1000.0)
      .add("loop_io_polls", static_cast<std::int64_t>(stats.io_polls))
      .add("loop_empty_io_polls", static_cast<std::int64_t>(stats.empty_io_polls))
      .add("loop_low_power_batches", static_cast<std::int64_t>(stats.low_power_batches));
  window.report(line);
  line.print();
  return 0;
}

// ---- The parent side ----

/// The number after `"key":` in a JSON line (NaN if absent or null), or its string value.
double json_number(const std::string& line, const std::string& key) {
  auto at = line.find("\"" + key + "\":");
  if (at == std::string::npos) return std::nan("");
  const char* value = line.c_str() + at + key.size() + 3;
  return std::strncmp(value, "null", 4) == 0 ? std::nan("") : std::strtod(value, nullptr);
}
std::string json_text(const std::string& line, const std::string& key) {
  auto at = line.find("\"" + key + "\":\"");
  if (at == std::string::npos) return "";
  at += key.size() + 4;
  return line.substr(at, line.find('"', at) - at);
}

std::string self_path() {
  char path[PATH_MAX];
  ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  return std::string(path, static_cast<std::size_t>(length));
}

std::string find_proxy() {
  std::string self = self_path();
  std::string proxy = self.substr(0, self.rfind('/')) + "/../tools/power_proxy";
  return access(proxy.c_str(), X_OK) == 0 ? proxy : "";
}

/// The writer of pipe_1khz: waits for the reader's go, then writes `count` stamps, one per ms.
[[noreturn]] void write_stamps(int fd, int go_fd, std::int64_t count) {
  char go = 0;
  if (read(go_fd, &go, 1) != 1) _exit(1);
  const std::int64_t start = bench::now_ns();
  for (std::int64_t i = 0; i < count; ++i) {
    sleep_until_ns(start + (i + 1) * 1'000'000);
    std::int64_t stamp = bench::now_ns();
    if (write(fd, &stamp, 8) != 8) _exit(1);
  }
  _exit(0);
}

/// A started command whose stdout is captured.
struct Child {
  pid_t pid = -1;
  int out = -1;  // read end of its stdout
  std::string name;
};

/// Starts `argv` with its stdout on a pipe; `keep` are descriptors it inherits.
Child spawn_capturing(std::vector<std::string> argv, const std::vector<int>& keep) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::vector<char*> args;  // built before fork: the child only calls async-signal-safe code
  for (auto& word : argv) args.push_back(word.data());
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(out[1], 1);
    for (int fd : keep) fcntl(fd, F_SETFD, 0);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  return {pid, out[0], argv[0]};
}

/// Reads `child`'s stdout to its end, reaps it and returns the lines; throws if it failed.
/// The workloads print a few short lines, far less than a pipe holds, so children started
/// together can be collected one after the other.
std::vector<std::string> collect(Child& child) {
  std::string text;
  char buffer[4096];
  for (ssize_t got; (got = read(child.out, buffer, sizeof buffer)) != 0;) {
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
  }
  close(child.out);
  int status = 0;
  waitpid(child.pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("workload run " + child.name + " failed (status " +
                             std::to_string(status) + ")");
  }
  std::vector<std::string> lines;
  for (std::size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos;
       start = end + 1) {
    lines.push_back(text.substr(start, end - start));
  }
  return lines;
}

struct Row {
  std::string workload, mode, backend, meter, scope;
  double wakeups_per_sec = 0, cpu_us_per_sec = 0, p99 = 0, max = 0, power = 0;
  double first_set_p99 = 0;  // tsf_1khz: p99 of the first set each waiter run served
  double toggle_cpu_p50 = 0;  // blink: the median toggle's CPU (loop thread), us
  double cpu_per_wakeup = 0;  // CPU us per wake-up: vm_wake's is the VM's bare cost of one
  double loop_sleeps_per_sec = 0;  // Loop::stats: the loop's blocking waits
  double loop_batches_per_sec = 0;  // Loop::stats: low-power batching sleeps
  std::int64_t lost = 0;
};

/// One workload in one mode under way: the workload (through the proxy when there is one)
/// and, for pipe_1khz, the writer process this parent forked for it.
struct Run {
  Child child;
  std::string workload, mode;
  pid_t writer = -1;
  int data_read = -1, go_write = -1;  // pipe_1khz: the ends the workload inherited
};

Run start_run(const std::string& proxy, const std::string& workload, const std::string& mode,
              double seconds) {
  std::vector<std::string> argv;
  if (!proxy.empty()) argv = {proxy, "--json", "--quiet", "--"};
  argv.insert(argv.end(), {self_path(), "--workload", workload, "--mode", mode, "--seconds",
                           std::to_string(seconds)});
  Run run{{}, workload, mode};
  std::vector<int> keep;
  if (workload == "pipe_1khz") {
    auto count = static_cast<std::int64_t>(seconds * 1000);
    int data[2], go[2];
    if (pipe2(data, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    run.writer = fork();
    if (run.writer == 0) {
      close(data[0]);
      close(go[1]);
      write_stamps(data[1], go[0], count);
    }
    close(data[1]);
    close(go[0]);
    run.data_read = data[0];
    run.go_write = go[1];
    argv.insert(argv.end(), {"--fd", std::to_string(data[0]), "--go-fd", std::to_string(go[1]),
                             "--expected", std::to_string(count)});
    keep = {data[0], go[1]};
  }
  run.child = spawn_capturing(argv, keep);
  return run;
}

/// Waits for `run` to end and reads its figures.
Row finish_run(Run& run) {
  const std::string& workload = run.workload;
  const std::string& mode = run.mode;
  std::vector<std::string> lines = collect(run.child);
  if (run.writer > 0) {
    close(run.data_read);
    close(run.go_write);
    kill(run.writer, SIGTERM);
    waitpid(run.writer, nullptr, 0);
  }
  std::string result, meter_line;
  for (const auto& line : lines) {
    if (line.find("\"workload_result\"") != std::string::npos) result = line;
    if (line.find("\"tool\":\"power_proxy\"") != std::string::npos) meter_line = line;
  }
  if (result.empty()) throw std::runtime_error(workload + ": no result from the workload");

  Row row{workload, mode, json_text(result, "backend"), "getrusage", "process"};
  row.lost = static_cast<std::int64_t>(json_number(result, "lost"));
  row.p99 = json_number(result, "latency_p99_ms");
  row.max = json_number(result, "latency_max_ms");
  row.first_set_p99 = json_number(result, "first_set_p99_ms");
  row.toggle_cpu_p50 = json_number(result, "toggle_cpu_p50_us");
  double window = json_number(result, "seconds");
  const double run_seconds = json_number(result, "loop_seconds");
  row.loop_sleeps_per_sec = json_number(result, "loop_blocking_waits") / run_seconds;
  row.loop_batches_per_sec = json_number(result, "loop_low_power_batches") / run_seconds;
  // The power model of tools/power_proxy with its default coefficients (see its source).
  double idle_mw = 2000, wakeup_uj = 50, active_mw = 10000;
  if (!meter_line.empty() && workload != "tsf_1khz") {
    row.meter = json_text(meter_line, "meter");
    row.wakeups_per_sec = json_number(meter_line, "wakeups_per_sec");
    row.cpu_us_per_sec = json_number(meter_line, "cpu_us_per_sec");
  } else {
    bool thread = workload == "tsf_1khz";
    row.scope = thread ? "loop_thread" : "process";
    row.wakeups_per_sec =
        json_number(result, thread ? "thread_wakeups" : "process_wakeups") / window;
    row.cpu_us_per_sec = json_number(result, thread ? "thread_cpu_us" : "process_cpu_us") / window;
  }
  row.cpu_per_wakeup =
      row.wakeups_per_sec > 0 ? row.cpu_us_per_sec / row.wakeups_per_sec : std::nan("");
  row.power =
      idle_mw + wakeup_uj * row.wakeups_per_sec / 1000 + active_mw * row.cpu_us_per_sec / 1e6;
  return row;
}

}  // namespace

/// The median round of each figure: CPU and wake-ups of a workload that costs ~50 µs/s are
/// decided by one stray context switch on a shared VM, so one round proves nothing. Lost
/// events add up over rounds, and the worst lateness is the worst of any round.
Row combine(const std::vector<Row>& rounds) {
  Row out = rounds.front();
  // The rounds that have the figure: NaN means none (no latency sample, or no wake-up to
  // divide by). bench::percentile is NaN when no round has it.
  auto present = [&](double Row::*field) {
    std::vector<double> values;
    for (const Row& round : rounds) {
      if (!std::isnan(round.*field)) values.push_back(round.*field);
    }
    return values;
  };
  auto median_of = [&](double Row::*field) { return bench::median(present(field)); };
  out.wakeups_per_sec = median_of(&Row::wakeups_per_sec);
  out.cpu_us_per_sec = median_of(&Row::cpu_us_per_sec);
  out.p99 = median_of(&Row::p99);
  out.first_set_p99 = median_of(&Row::first_set_p99);
  out.cpu_per_wakeup = median_of(&Row::cpu_per_wakeup);
  out.toggle_cpu_p50 = median_of(&Row::toggle_cpu_p50);
  out.power = median_of(&Row::power);
  out.loop_sleeps_per_sec = median_of(&Row::loop_sleeps_per_sec);
  out.loop_batches_per_sec = median_of(&Row::loop_batches_per_sec);
  out.max = bench::percentile(present(&Row::max), 100);
  out.lost = 0;
  for (const Row& round : rounds) out.lost += round.lost;
  return out;
}

int main(int argc, char** argv) {
  bench::Args args(argc, argv, kUsage);
  const bool json = args.flag("--json");
  const bool quick = args.flag("--quick");
  const std::string workload = args.text("--workload", "");
  const std::string mode = args.text("--mode", "normal");
  const std::string filter = args.list("--workloads", kWorkloads);
  const int fd = static_cast<int>(args.number("--fd", -1));
  const int go_fd = static_cast<int>(args.number("--go-fd", -1));
  const auto expected = static_cast<std::int64_t>(args.number("--expected", 0));
  double seconds = args.number("--seconds", quick ? 1.2 : 5);
  const int rounds = static_cast<int>(args.number("--rounds", quick ? 1 : 3));
  args.finish();
  if (rounds < 1) {
    std::fprintf(stderr, "power: --rounds needs at least 1\n");
    return 2;
  }

  try {
    if (!workload.empty()) return run_workload(workload, mode, seconds, fd, go_fd, expected);

    std::string proxy = find_proxy();
    if (proxy.empty()) {
      std::fprintf(stderr,
                   "power: notice: ../tools/power_proxy not found next to this executable; "
                   "measuring in-process with getrusage\n");
    }
    bench::Table table({"workload", "mode", "wakeups/s", "CPU us/s", "lost", "p99 ms", "max ms",
                        "model mW", "loop sleeps/s", "meter"});
    for (const auto& name : kWorkloads) {
      if (!bench::selected(filter, name)) continue;
      std::map<std::string, std::vector<Row>> by_mode;
      const std::vector<std::string>& modes = name == kVmWake ? kPlain : kModes;
      // Blink and idle run both modes at once, each in its own process and cgroup: they use
      // ~60 us of CPU a second, one wake-up each, so neither disturbs the other, and a burst
      // from a co-tenant lands on both alike. Run one after the other, 10 s blink rounds had
      // the same per-toggle CPU in both modes (median 57.0 against 57.5 us over 100 toggles
      // each) but bursts of +40-80 us/s that covered one mode's rounds and not the other's.
      // The busier workloads would disturb each other on two vCPUs, so their modes alternate
      // round by round instead. Each mode reports its median round.
      const bool together = name == "blink" || name == "idle";
      // Blink needs whole seconds to toggle at all; a short run still shows a toggle or two.
      // Idle is the 10 s: its one wake-up is the timeout that ends the run, so the
      // rate is 1 / duration. Blink rounds last 20 s: a toggle costs ~60 us of CPU here and
      // an occasional one 2-5x that, which moves a round of few toggles by itself.
      double duration = name == "blink" ? std::max(seconds, 2.0) : seconds;
      if (name == "idle" && !quick) duration = std::max(seconds, 10.0);
      if (name == "blink" && !quick) duration = std::max(seconds, 20.0);
      for (int round = 0; round < rounds; ++round) {
        if (!json && rounds > 1) {
          std::fprintf(stderr, "power: %s round %d/%d%s\n", name.c_str(), round + 1, rounds,
                       together ? " (both modes at once)" : "");
        }
        std::vector<Run> runs;
        for (const auto& each_mode : modes) {
          runs.push_back(start_run(proxy, name, each_mode, duration));
          if (!together) by_mode[each_mode].push_back(finish_run(runs.back()));
        }
        if (together) {
          for (Run& run : runs) by_mode[run.mode].push_back(finish_run(run));
        }
        if (!json && rounds > 1) {
          std::string figures;
          for (const auto& each_mode : modes) {
            const Row& row = by_mode[each_mode].back();
            figures += (figures.empty() ? "" : "; ") + each_mode + " " +
                       bench::fixed(row.cpu_us_per_sec, 1) + " us/s, " +
                       bench::fixed(row.wakeups_per_sec, 2) + " wake-ups/s";
          }
          std::fprintf(stderr, "power:   %s\n", figures.c_str());
        }
      }
      for (const auto& each_mode : modes) {
        Row row = combine(by_mode[each_mode]);
        if (json) {
          bench::JsonLine line;
          line.add("bench", "power")
              .add("workload", row.workload)
              .add("mode", row.mode)
              .add("wakeups_per_sec", row.wakeups_per_sec)
              .add("cpu_us_per_sec", row.cpu_us_per_sec)
              .add("lost", row.lost)
              .add("latency_p99_ms", row.p99)
              .add("power_mw_model", row.power)
              .add("meter", row.meter)
              .add("scope", row.scope)
              .add("backend", row.backend)
              .add("latency_max_ms", row.max)
              .add("cpu_us_per_wakeup", row.cpu_per_wakeup)
              .add("loop_sleeps_per_sec", row.loop_sleeps_per_sec)
              .add("loop_batches_per_sec", row.loop_batches_per_sec);
          if (row.workload == "tsf_1khz") line.add("first_set_p99_ms", row.first_set_p99);
          if (row.workload == "blink") line.add("toggle_cpu_p50_us", row.toggle_cpu_p50);
          line.print();
        }
        table.add_row({row.workload, row.mode, bench::fixed(row.wakeups_per_sec, 2),
                       bench::fixed(row.cpu_us_per_sec, 1), std::to_string(row.lost),
                       bench::fixed(row.p99, 2), bench::fixed(row.max, 2),
                       bench::fixed(row.power, 1), bench::fixed(row.loop_sleeps_per_sec, 2),
                       row.meter + (row.scope == "loop_thread" ? " (loop thread)" : "")});
      }
    }
    table.print(bench::human_out(json));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "power: %s\n", error.what());
    return 1;
  }
  return 0;
}
