// Helpers shared by every benchmark in bench/: command-line flags, the two output forms
// (a human table, or one JSON object per line), percentiles, clocks, CPU time and RSS, and
// the choice of the loop backends to compare.
//
// Output contract: with --json, stdout carries only JSON lines and every human word
// goes to stderr; without it, the comparison table goes to stdout.
#pragma once

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "asyncio/linux.hpp"

namespace bench {

// ---- Clocks and process figures ----

/// CLOCK_MONOTONIC in nanoseconds: the clock the loop's timers run on, readable from any
/// thread, so a stamp taken on one thread compares with one taken on another.
inline std::int64_t now_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

/// CPU time used so far by the calling thread, in nanoseconds (a system call, ~1 µs).
inline std::int64_t this_thread_cpu_ns() {
  timespec used{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &used);
  return std::int64_t{used.tv_sec} * 1'000'000'000 + used.tv_nsec;
}

/// User + system CPU time consumed so far by the whole process, in microseconds.
inline std::int64_t process_cpu_us() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto micros = [](const timeval& t) { return std::int64_t{t.tv_sec} * 1'000'000 + t.tv_usec; };
  return micros(usage.ru_utime) + micros(usage.ru_stime);
}

/// A "VmXXX:  1234 kB" line of /proc/self/status, in bytes; -1 if the kernel lacks it.
inline std::int64_t proc_status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == field + ":") {
      std::int64_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
    status.ignore(4096, '\n');
  }
  return -1;
}

/// Peak resident set size of the process so far (the kernel's high-water mark).
inline std::int64_t peak_rss_bytes() {
  return proc_status_bytes("VmHWM");
}
inline std::int64_t current_rss_bytes() {
  return proc_status_bytes("VmRSS");
}

// ---- Statistics ----

/// The p-th percentile (0..100) by the nearest-rank method: always an observed value, so a
/// p99 of 200 samples is the second largest sample, not an interpolation. NaN if empty.
/// Out of line: inlined into a caller, GCC 12 takes the sorted copy's buffer for a non-heap
/// object (-Wfree-nonheap-object, a false positive) in builds without LTO.
[[gnu::noinline]] inline double percentile(const std::vector<double>& samples, double p) {
  if (samples.empty()) return std::nan("");
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

inline double median(const std::vector<double>& samples) {
  return percentile(samples, 50);
}

// ---- Command line ----

/// `--name`, `--name value` and `--name=value` flags. A benchmark asks for each flag it knows
/// and then calls finish(), which rejects anything it did not ask for: a misspelt flag must
/// not silently run the default benchmark.
class Args {
 public:
  Args(int argc, char** argv, std::string usage) : usage_(std::move(usage)) {
    for (int i = 1; i < argc; ++i) {
      std::string word = argv[i];
      if (word == "--help" || word == "-h") exit_with_usage(0);
      if (word.rfind("--", 0) != 0) fail("unexpected argument '" + word + "'");
      auto equals = word.find('=');
      if (equals != std::string::npos) {
        values_[word.substr(0, equals)] = word.substr(equals + 1);
      } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
        values_[word] = argv[++i];
      } else {
        values_[word] = "";
      }
    }
  }

  bool flag(const std::string& name) {
    asked_.insert(name);
    auto found = values_.find(name);
    if (found == values_.end()) return false;
    if (!found->second.empty()) fail(name + " takes no value");
    return true;
  }

  double number(const std::string& name, double fallback) {
    std::string value = text(name, "");
    if (value.empty()) return fallback;
    char* end = nullptr;
    double parsed = std::strtod(value.c_str(), &end);
    if (*end != '\0' || !std::isfinite(parsed)) fail(name + " needs a number, not '" + value + "'");
    return parsed;
  }

  std::string text(const std::string& name, const std::string& fallback) {
    asked_.insert(name);
    auto found = values_.find(name);
    return found == values_.end() || found->second.empty() ? fallback : found->second;
  }

  /// A comma-separated list such as `--workloads a,b` (empty: all), each item one of `known`:
  /// a misspelt name must not silently run nothing.
  std::string list(const std::string& name, const std::vector<std::string>& known) {
    std::string value = text(name, "");
    for (std::size_t start = 0; !value.empty() && start <= value.size();) {
      std::size_t end = std::min(value.find(',', start), value.size());
      std::string item = value.substr(start, end - start);
      if (std::find(known.begin(), known.end(), item) == known.end()) {
        std::string choices;
        for (const auto& each : known) choices += (choices.empty() ? "" : ", ") + each;
        fail(name + ": unknown '" + item + "' (one of: " + choices + ")");
      }
      start = end + 1;
    }
    return value;
  }

  /// Rejects the command line with `message` unless `ok`.
  void require(bool ok, const std::string& message) {
    if (!ok) fail(message);
  }

  void finish() {
    for (const auto& [name, value] : values_) {
      if (!asked_.count(name)) fail("unknown flag " + name);
    }
  }

 private:
  [[noreturn]] void fail(const std::string& message) {
    std::fprintf(stderr, "error: %s\n", message.c_str());
    exit_with_usage(2);
  }
  [[noreturn]] void exit_with_usage(int code) {
    std::fprintf(code == 0 ? stdout : stderr, "%s", usage_.c_str());
    std::exit(code);
  }

  std::string usage_;
  std::map<std::string, std::string> values_;
  std::set<std::string> asked_;
};

/// "--impl a,b" restricts a run to some implementations (all when empty).
inline bool selected(const std::string& filter, const std::string& impl) {
  if (filter.empty()) return true;
  std::string padded = "," + filter + ",";
  return padded.find("," + impl + ",") != std::string::npos;
}

// ---- Output ----

/// One JSON object printed on one line. Keys and string values are plain identifiers here,
/// so no escaping is needed; non-finite numbers become null, which JSON allows.
class JsonLine {
 public:
  JsonLine& add(const char* key, const std::string& value) {
    std::string quoted(1, '"');
    quoted.append(value).push_back('"');
    return raw(key, quoted);
  }
  JsonLine& add(const char* key, const char* value) { return add(key, std::string(value)); }
  JsonLine& add(const char* key, std::int64_t value) { return raw(key, std::to_string(value)); }
  JsonLine& add(const char* key, int value) { return add(key, std::int64_t{value}); }
  JsonLine& add(const char* key, double value) {
    if (!std::isfinite(value)) return raw(key, "null");
    char text[64];
    std::snprintf(text, sizeof text, "%.3f", value);
    return raw(key, text);
  }
  void print() const {
    std::printf("{%s}\n", body_.c_str());
    std::fflush(stdout);
  }

 private:
  JsonLine& raw(const char* key, const std::string& value) {
    if (!body_.empty()) body_ += ",";
    // Appended piece by piece: `"literal" + std::string` trips g++ 12's false -Wrestrict
    // (GCC bug 105329) in release builds, and CI builds with -Werror.
    body_.append(1, '"').append(key).append("\":").append(value);
    return *this;
  }
  std::string body_;
};

/// A right-aligned text table for people.
class Table {
 public:
  explicit Table(std::vector<std::string> headers) { rows_.push_back(std::move(headers)); }
  void add_row(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::FILE* out) const {
    std::vector<std::size_t> widths;
    for (const auto& row : rows_) {
      widths.resize(std::max(widths.size(), row.size()));
      for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    for (const auto& row : rows_) {
      for (std::size_t i = 0; i < row.size(); ++i) {
        std::fprintf(out, "%*s%s", static_cast<int>(widths[i]), row[i].c_str(),
                     i + 1 < row.size() ? "  " : "\n");
      }
    }
    std::fflush(out);
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

/// `value` with `decimals` digits after the point; "-" for a missing figure.
inline std::string fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "-";
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

/// Where human text goes: stdout normally, stderr when stdout is reserved for JSON.
inline std::FILE* human_out(bool json) {
  return json ? stderr : stdout;
}

// ---- Loop backends ----

/// The backends every asyncio benchmark compares, in print order.
inline const std::vector<std::string> kBackends = {"uring", "epoll"};

/// Makes a fresh loop on `backend` the calling thread's loop. Throws what Loop throws when the
/// machine cannot give that backend (io_uring disabled by seccomp or sysctl).
inline void use_backend(const std::string& backend) {
  asyncio::new_event_loop(asyncio::Loop::Options{.backend = backend});
  std::string got = asyncio::get_event_loop().backend_name();
  if (got != backend) throw std::runtime_error("asked for backend " + backend + ", got " + got);
}

/// The backends of kBackends that work here and pass `filter`. Each one missing is named on
/// stderr once and skipped: a machine without io_uring still measures epoll.
inline std::vector<std::string> available_backends(const std::string& filter) {
  std::vector<std::string> usable;
  for (const auto& backend : kBackends) {
    if (!selected(filter, backend)) continue;
    try {
      use_backend(backend);
      usable.push_back(backend);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "note: skipping backend %s: %s\n", backend.c_str(), error.what());
    }
  }
  return usable;
}

}  // namespace bench
