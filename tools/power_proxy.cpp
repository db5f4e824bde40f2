// power_proxy: runs a command and estimates what it costs in power.
//
//   power_proxy [--json] [--quiet] [--no-cgroup] [--idle-mw X] [--wakeup-uj X]
//               [--active-mw X] -- COMMAND [ARGS...]
//
// The command runs in a fresh cgroup v2 child when the cgroup2 hierarchy is writable: CPU time
// is then cpu.stat's usage_usec, which counts every process and thread the command starts.
// Otherwise CPU time is the getrusage() of the waited-for child tree, with a notice on stderr.
// Wake-ups are voluntary context switches (ru_nvcsw of wait4), summed over every thread of the
// command and of the descendants it waited for: each one is a sleep ended by an event.
//
// Output: a summary on stderr (like time(1), so that the command's own stdout stays clean),
// or with --json one object on stdout after everything the command printed. The exit status is
// the command's (128 + signal if it was killed). A progress line goes to stderr every second
// unless --quiet.
//
// A command that knows about us may mark the steady state it wants measured (see Mark below):
// the figures then cover that window only, without exec, loading and set-up.
//
// This VM has no RAPL energy counter, so power is a linear model, not a measurement:
//   power_mw = idle_mw + wakeup_uj * wakeups_per_sec / 1000 + active_mw * cpu_share
// where cpu_share is CPU-seconds per second (1.0 = one core busy). The coefficients are
// order-of-magnitude figures for a laptop-class x86 package, to compare two runs of the same
// program, not to quote watts; pass measured ones with the flags.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

// Idle power of the whole package with the screen off: PowerTOP reports 2-5 W for idle
// laptops of the last decade; 2 W is the low end. A constant: it does not change a comparison.
constexpr double kDefaultIdleMw = 2000;
// Energy of one wake-up (leave a deep C-state, run the scheduler, enter it again). Published
// per-wake-up estimates for x86 laptops range ~10-100 uJ (the reason PowerTOP ranks programs
// by wake-ups); 50 uJ is mid-range. Not measured here: this VM exposes no energy counter.
constexpr double kDefaultWakeupUj = 50;
// Extra power of one fully busy core over idle: ~10 W for a laptop-class x86 core at base
// clock (TDP 15 W parts run 2-4 cores). Again an order of magnitude.
constexpr double kDefaultActiveMw = 10000;

constexpr const char* kUsage =
    "usage: power_proxy [--json] [--quiet] [--no-cgroup] [--idle-mw X] [--wakeup-uj X]\n"
    "                   [--active-mw X] -- COMMAND [ARGS...]\n"
    "Runs COMMAND (in a fresh cgroup v2 child when possible) and prints its CPU us/s,\n"
    "wake-ups/s (voluntary context switches of all its threads) and a modelled power:\n"
    "  idle_mw + wakeup_uj * wakeups/s / 1000 + active_mw * cpu_share\n"
    "defaults: --idle-mw 2000 --wakeup-uj 50 --active-mw 10000 (see the source for provenance)\n";

struct Options {
  bool json = false;
  bool quiet = false;
  bool no_cgroup = false;  // measure with getrusage even where a cgroup could be made
  double idle_mw = kDefaultIdleMw;
  double wakeup_uj = kDefaultWakeupUj;
  double active_mw = kDefaultActiveMw;
  std::vector<char*> command;  // null-terminated for execvp
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "power_proxy: %s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

double parse_number(const char* flag, const char* text) {
  char* end = nullptr;
  double value = std::strtod(text, &end);
  if (*text == '\0' || *end != '\0' || !std::isfinite(value) || value < 0) {
    usage_error(std::string(flag) + " needs a non-negative number, not '" + text + "'");
  }
  return value;
}

Options parse_options(int argc, char** argv) {
  Options options;
  int i = 1;
  for (; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "--") {
      ++i;
      break;
    }
    if (word == "--help" || word == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (word == "--json") {
      options.json = true;
    } else if (word == "--quiet") {
      options.quiet = true;
    } else if (word == "--no-cgroup") {
      options.no_cgroup = true;
    } else if ((word == "--idle-mw" || word == "--wakeup-uj" || word == "--active-mw") &&
               i + 1 < argc) {
      double value = parse_number(argv[i], argv[i + 1]);
      ++i;
      (word == "--idle-mw"     ? options.idle_mw
       : word == "--wakeup-uj" ? options.wakeup_uj
                               : options.active_mw) = value;
    } else {
      usage_error("unknown or incomplete option '" + word + "' (the command goes after --)");
    }
  }
  for (; i < argc; ++i) options.command.push_back(argv[i]);
  if (options.command.empty()) usage_error("no command given after --");
  options.command.push_back(nullptr);
  return options;
}

std::int64_t now_us() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return std::int64_t{now.tv_sec} * 1'000'000 + now.tv_nsec / 1000;
}

// ---- cgroup v2 ----

/// The cgroup2 mount point from /proc/mounts ("" if there is none). Never assumed: it is
/// /sys/fs/cgroup on most machines and /sys/fs/cgroup/unified on hybrid ones like this VM.
std::string cgroup2_mount() {
  std::ifstream mounts("/proc/mounts");
  std::string device, path, type, rest;
  while (mounts >> device >> path >> type && std::getline(mounts, rest)) {
    if (type == "cgroup2") return path;
  }
  return "";
}

/// Our own cgroup v2 path ("0::/a/b" in /proc/self/cgroup), relative to the mount.
std::string own_cgroup() {
  std::ifstream groups("/proc/self/cgroup");
  std::string line;
  while (std::getline(groups, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return "/";
}

bool write_file(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

/// A fresh child cgroup, removed again by remove(). Empty path() when none could be made.
class ChildCgroup {
 public:
  explicit ChildCgroup(bool wanted) {
    if (!wanted) {
      reason_ = "--no-cgroup given";
      return;
    }
    std::string mount = cgroup2_mount();
    if (mount.empty()) {
      reason_ = "no cgroup2 mount in /proc/mounts";
      return;
    }
    // Beside our own group when we may write there, else at the root of the hierarchy.
    std::string name = "/power_proxy." + std::to_string(getpid());
    for (std::string parent : {mount + own_cgroup(), mount}) {
      while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
      if (mkdir((parent + name).c_str(), 0755) == 0) {
        path_ = parent + name;
        return;
      }
      reason_ = "cannot create " + parent + name + ": " + std::strerror(errno);
    }
  }
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }

  bool adopt(pid_t pid) {
    if (write_file(path_ + "/cgroup.procs", std::to_string(pid))) return true;
    reason_ = "cannot move the command into " + path_ + ": " + std::strerror(errno);
    return false;
  }

  /// cpu.stat usage_usec (CPU of every task that ever ran in the group); -1 if unreadable.
  std::int64_t usage_usec() const {
    std::ifstream stat(path_ + "/cpu.stat");
    std::string key;
    std::int64_t value = 0;
    while (stat >> key >> value) {
      if (key == "usage_usec") return value;
    }
    return -1;
  }

  /// rmdir succeeds only once the group is empty; a reaped child may take a moment to leave.
  void remove() {
    if (path_.empty()) return;
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (rmdir(path_.c_str()) == 0 || errno == ENOENT) break;
      usleep(10'000);
    }
    path_.clear();
  }

 private:
  std::string path_;
  std::string reason_;
};

// ---- The command ----

/// Forks the command held on a pipe until release(), so that the parent can move it into the
/// cgroup before it runs a single instruction of its own.
class Command {
 public:
  explicit Command(std::vector<char*>& argv) {
    if (pipe2(gate_, O_CLOEXEC) != 0 || pipe2(exec_error_, O_CLOEXEC) != 0) {
      std::perror("power_proxy: pipe");
      std::exit(125);
    }
    pid_ = fork();
    if (pid_ < 0) {
      std::perror("power_proxy: fork");
      std::exit(125);
    }
    if (pid_ == 0) run_child(argv);
    close(gate_[0]);
    close(exec_error_[1]);
  }
  pid_t pid() const { return pid_; }

  /// Lets the child exec. False (with the message printed) if exec failed.
  bool release() {
    char go = 'g';
    if (write(gate_[1], &go, 1) != 1) return false;
    close(gate_[1]);
    int error = 0;
    ssize_t got = read(exec_error_[0], &error, sizeof error);  // EOF when exec succeeded
    close(exec_error_[0]);
    if (got == sizeof error) {
      std::fprintf(stderr, "power_proxy: cannot run the command: %s\n", std::strerror(error));
      return false;
    }
    return true;
  }

 private:
  [[noreturn]] void run_child(std::vector<char*>& argv) {
    close(gate_[1]);
    close(exec_error_[0]);
    char go = 0;
    if (read(gate_[0], &go, 1) != 1) _exit(125);
    close(gate_[0]);
    signal(SIGINT, SIG_DFL);
    execvp(argv[0], argv.data());
    int error = errno;
    if (write(exec_error_[1], &error, sizeof error) < 0) _exit(127);
    _exit(127);
  }

  pid_t pid_ = -1;
  int gate_[2] = {-1, -1};
  int exec_error_[2] = {-1, -1};
};

/// A field summed over every live thread of `pid`: `file` is "status" or "schedstat"; `key`
/// the status line to read ("" for schedstat's first number, CPU time in ns).
std::int64_t sum_over_threads(pid_t pid, const char* file, const std::string& key) {
  std::int64_t total = 0;
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* directory = opendir(tasks.c_str());
  if (directory == nullptr) return 0;
  while (dirent* entry = readdir(directory)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream stream(tasks + "/" + entry->d_name + "/" + file);
    std::int64_t value = 0;
    if (key.empty()) {
      if (stream >> value) total += value;
      continue;
    }
    std::string word;
    while (stream >> word) {
      if (word == key) {
        if (stream >> value) total += value;
        break;
      }
      stream.ignore(4096, '\n');
    }
  }
  closedir(directory);
  return total;
}

/// What the command has cost up to one instant.
struct Sample {
  std::int64_t time_us = 0;
  std::int64_t cpu_us = 0;
  std::int64_t wakeups = 0;
};

/// A sample of the live command: the cgroup's CPU (or, without one, the threads' schedstat)
/// and the voluntary switches of its live threads. Threads that already exited are missed,
/// which is why the whole-run figures come from wait4 instead.
Sample sample_live(pid_t pid, const ChildCgroup& group) {
  Sample sample;
  sample.time_us = now_us();
  sample.cpu_us =
      group.path().empty() ? sum_over_threads(pid, "schedstat", "") / 1000 : group.usage_usec();
  sample.wakeups = sum_over_threads(pid, "status", "voluntary_ctxt_switches:");
  return sample;
}

/// The measurement window a cooperating command may mark, so that start-up and tear-down
/// (exec, the loader, ring setup: 2-4 wake-ups here) do not count. The protocol: the thread
/// that marks writes a Mark to the descriptor in $POWER_PROXY_MARK_FD ('b' where its steady
/// state starts, 'e' where it ends), then blocks reading one byte from $POWER_PROXY_ACK_FD.
/// We sample once that thread is asleep, then answer. Waiting for the sleep makes the count
/// exact: the begin mark's own sleep falls before the window, the end mark's inside it, and
/// that one is taken off.
struct Mark {
  char what;
  char unused[3];
  std::int32_t tid;
};

struct Window {
  bool begun = false;
  bool ended = false;
  Sample begin;
  Sample end;
};

/// Waits (at most 100 ms) until thread `tid` of `pid` sleeps: state S in its stat file.
void wait_until_asleep(pid_t pid, std::int32_t tid) {
  std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat";
  for (int attempt = 0; attempt < 2000; ++attempt) {
    std::ifstream stat(path);
    std::string line;
    if (!std::getline(stat, line)) return;
    auto close_paren = line.rfind(')');  // the name may contain spaces and parentheses
    if (close_paren == std::string::npos || close_paren + 2 >= line.size()) return;
    if (line[close_paren + 2] == 'S') return;
    usleep(50);
  }
}

/// Takes the window sample a mark asks for, then lets the marking thread go on.
void on_mark(pid_t pid, const Mark& mark, int ack_fd, const ChildCgroup& group, Window& window) {
  wait_until_asleep(pid, mark.tid);
  if (mark.what == 'b' && !window.begun) {
    window.begin = sample_live(pid, group);
    window.begun = true;
  } else if (mark.what == 'e' && window.begun && !window.ended) {
    window.end = sample_live(pid, group);
    window.end.wakeups -= 1;  // the end mark's own wait for our answer
    window.ended = true;
  }
  char go = 'g';
  if (write(ack_fd, &go, 1) != 1) std::perror("power_proxy: answering a mark");
}

/// Waits for the command, taking window samples on its marks and printing a progress line
/// on stderr every second unless `quiet`. Returns the wait status; fills `usage` with the
/// rusage of the command's whole tree.
int wait_for_command(pid_t pid, int mark_fd, int ack_fd, bool quiet, const ChildCgroup& group,
                     std::int64_t start_us, Window& window, rusage& usage) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  std::int64_t next_progress_us = start_us + 1'000'000;
  while (pidfd >= 0) {
    pollfd entries[2] = {{pidfd, POLLIN, 0}, {mark_fd, POLLIN, 0}};
    // Quiet, there is nothing to do between marks and the exit: no timeout, so that the proxy
    // adds no wake-up of its own to the machine it measures (it woke every second, a few ms
    // before each toggle of a 1 s blink).
    int timeout_ms =
        quiet ? -1
              : static_cast<int>(std::max<std::int64_t>(0, next_progress_us - now_us()) / 1000) + 1;
    int ready = poll(entries, mark_fd >= 0 ? 2 : 1, timeout_ms);
    if (ready < 0 && errno != EINTR) break;
    if (ready > 0 && (entries[1].revents & POLLIN)) {
      Mark mark{};
      if (read(mark_fd, &mark, sizeof mark) == sizeof mark)
        on_mark(pid, mark, ack_fd, group, window);
    } else if (ready > 0 && (entries[1].revents & (POLLHUP | POLLERR))) {
      mark_fd = -1;  // the command closed its end; only the exit is left to wait for
    }
    if (ready > 0 && (entries[0].revents & POLLIN)) break;
    if (!quiet && now_us() >= next_progress_us) {
      next_progress_us += 1'000'000;
      Sample now = sample_live(pid, group);
      double seconds = static_cast<double>(now.time_us - start_us) / 1e6;
      std::fprintf(stderr, "power_proxy: %.0f s, %lld wake-ups, CPU %.0f us/s\n", seconds,
                   static_cast<long long>(now.wakeups), static_cast<double>(now.cpu_us) / seconds);
    }
  }
  if (pidfd >= 0) close(pidfd);
  int status = 0;
  while (wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) {
      std::perror("power_proxy: wait4");
      std::exit(125);
    }
  }
  return status;
}

std::int64_t micros(const timeval& t) {
  return std::int64_t{t.tv_sec} * 1'000'000 + t.tv_usec;
}

struct Report {
  const char* meter = "getrusage";
  bool window = false;
  double seconds = 0;
  double cpu_us_per_sec = 0;
  double wakeups_per_sec = 0;
  double power_mw = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_options(argc, argv);
  // Ctrl-C reaches the command through the process group; we stay to clean the cgroup up.
  signal(SIGINT, SIG_IGN);

  // The window marks (see Mark): the command inherits one end of each pipe, without O_CLOEXEC.
  int marks[2] = {-1, -1}, acks[2] = {-1, -1};
  if (pipe2(marks, O_CLOEXEC) == 0 && pipe2(acks, O_CLOEXEC) == 0) {
    for (int* end : {&marks[1], &acks[0]}) {
      int inherited = fcntl(*end, F_DUPFD, 3);
      close(*end);
      *end = inherited;
    }
    setenv("POWER_PROXY_MARK_FD", std::to_string(marks[1]).c_str(), 1);
    setenv("POWER_PROXY_ACK_FD", std::to_string(acks[0]).c_str(), 1);
  }
  ChildCgroup group(!options.no_cgroup);
  Command command(options.command);
  if (marks[1] >= 0) close(marks[1]);
  if (acks[0] >= 0) close(acks[0]);
  if (!group.path().empty() && !group.adopt(command.pid())) group.remove();
  if (group.path().empty()) {
    std::fprintf(stderr, "power_proxy: notice: %s; measuring with getrusage instead\n",
                 group.reason().c_str());
  }

  std::int64_t start_us = now_us();
  if (!command.release()) {
    rusage ignored{};
    wait4(command.pid(), nullptr, 0, &ignored);
    group.remove();
    return 127;
  }
  rusage usage{};
  Window window;
  int status = wait_for_command(command.pid(), marks[0], acks[1], options.quiet, group, start_us,
                                window, usage);
  std::int64_t end_us = now_us();

  Report report;
  std::int64_t cpu_us = group.path().empty() ? -1 : group.usage_usec();
  if (cpu_us >= 0) report.meter = "cgroup";
  if (cpu_us < 0) cpu_us = micros(usage.ru_utime) + micros(usage.ru_stime);
  group.remove();
  std::int64_t wakeups = usage.ru_nvcsw;
  double seconds = static_cast<double>(end_us - start_us) / 1e6;
  if (window.ended) {
    report.window = true;
    seconds = static_cast<double>(window.end.time_us - window.begin.time_us) / 1e6;
    cpu_us = window.end.cpu_us - window.begin.cpu_us;
    wakeups = window.end.wakeups - window.begin.wakeups;
  }
  report.seconds = seconds;
  report.cpu_us_per_sec = static_cast<double>(cpu_us) / seconds;
  report.wakeups_per_sec = static_cast<double>(wakeups) / seconds;
  report.power_mw = options.idle_mw + options.wakeup_uj * report.wakeups_per_sec / 1000 +
                    options.active_mw * report.cpu_us_per_sec / 1e6;

  if (options.json) {
    std::fflush(stdout);
    std::printf(
        "{\"tool\":\"power_proxy\",\"meter\":\"%s\",\"seconds\":%.3f,\"cpu_us_per_sec\":%.3f,"
        "\"wakeups_per_sec\":%.3f,\"power_mw_model\":%.3f,\"window\":%s,\"cpu_us\":%lld,"
        "\"wakeups\":%lld,\"whole_run_wakeups\":%ld,\"involuntary_switches\":%ld}\n",
        report.meter, report.seconds, report.cpu_us_per_sec, report.wakeups_per_sec,
        report.power_mw, report.window ? "true" : "false", static_cast<long long>(cpu_us),
        static_cast<long long>(wakeups), usage.ru_nvcsw, usage.ru_nivcsw);
  } else {
    std::fprintf(stderr,
                 "power_proxy (%s%s): %.3f s, CPU %.1f us/s, %.2f wake-ups/s, model %.1f mW\n",
                 report.meter, report.window ? ", marked window" : "", report.seconds,
                 report.cpu_us_per_sec, report.wakeups_per_sec, report.power_mw);
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}
