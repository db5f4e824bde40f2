// What the seed's demos (timer_test, tsf_test) share: the monotonic clock, the 5 ms CPU
// block, command-line options and the report (readable lines or one JSON object per line).
#pragma once

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace demo {

/// CLOCK_MONOTONIC in nanoseconds. clock_gettime is async-signal-safe, so a signal handler
/// may timestamp with the same clock the tasks read.
inline std::int64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

/// The same clock in microseconds: what the portable seed demos (examples/seed/) read.
inline std::int64_t now_us() noexcept { return now_ns() / 1000; }

inline double ns_to_ms(std::int64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

/// Keeps the CPU busy for `ms`, as MicroPython's time.sleep_ms() does: it blocks the whole
/// scheduler, which is the load the demos are about.
inline void block_cpu_ms(int ms) {
  const std::int64_t end = now_ns() + std::int64_t{ms} * 1'000'000;
  while (now_ns() < end) {
  }
}

struct Stats {
  double median = 0;
  double max = 0;
  double min = 0;
};

inline Stats summarize(std::vector<double> samples) {
  if (samples.empty()) return {};
  std::sort(samples.begin(), samples.end());
  const std::size_t middle = samples.size() / 2;
  const double median =
      samples.size() % 2 == 1 ? samples[middle] : (samples[middle - 1] + samples[middle]) / 2;
  return {median, samples.back(), samples.front()};
}

/// One JSON object on one line. Keys and string values here are plain identifiers, but quotes
/// and backslashes are escaped anyway so that a backend name can never break a line.
class JsonLine {
 public:
  JsonLine& add(std::string_view key, std::string_view value) {
    start(key);
    text_ += '"';
    for (char c : value) {
      if (c == '"' || c == '\\') text_ += '\\';
      text_ += c;
    }
    text_ += '"';
    return *this;
  }
  JsonLine& add(std::string_view key, const char* value) {
    return add(key, std::string_view(value));
  }
  JsonLine& add(std::string_view key, double value) {
    char number[32];
    std::snprintf(number, sizeof number, "%.3f", value);
    start(key);
    text_ += number;
    return *this;
  }
  JsonLine& add(std::string_view key, int value) {
    start(key);
    text_ += std::to_string(value);
    return *this;
  }
  JsonLine& add(std::string_view key, std::uint64_t value) {
    start(key);
    text_ += std::to_string(value);
    return *this;
  }
  JsonLine& add(std::string_view key, bool value) {
    start(key);
    text_ += value ? "true" : "false";
    return *this;
  }
  std::string str() const { return text_ + '}'; }

 private:
  void start(std::string_view key) {
    text_ += text_.size() > 1 ? ",\"" : "\"";
    text_ += key;
    text_ += "\":";
  }
  std::string text_ = "{";
};

/// The flags both demos take. Demo-specific flags take one value each and go to `extra`.
struct Options {
  int iterations = 10;
  bool json = false;
  std::string backend;  // empty: ASYNCIO_BACKEND, then auto (see asyncio::Loop::Options)
};

/// The values every example's --backend accepts (asyncio::Loop::Options::backend).
inline bool is_backend_name(std::string_view value) {
  return value == "epoll" || value == "uring" || value == "auto";
}

[[noreturn]] inline void usage_error(const char* usage, const std::string& message) {
  std::fprintf(stderr, "%s\nusage: %s\n", message.c_str(), usage);
  std::exit(2);
}

/// `extra(flag, value)` returns false for a flag it does not know.
template <class ExtraFlag>
Options parse_options(int argc, char** argv, const char* usage, ExtraFlag&& extra) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("usage: %s\n", usage);
      std::exit(0);
    }
    if (flag == "--json") {
      options.json = true;
      continue;
    }
    if (i + 1 >= argc) usage_error(usage, "unknown flag or missing value: " + std::string(flag));
    const std::string value = argv[++i];
    if (flag == "--iterations") {
      char* end = nullptr;
      const long count = std::strtol(value.c_str(), &end, 10);
      if (*end != '\0' || count < 1 || count > 1'000'000) {
        usage_error(usage, "--iterations needs a positive number");
      }
      options.iterations = static_cast<int>(count);
    } else if (flag == "--backend") {
      if (!is_backend_name(value)) usage_error(usage, "--backend must be epoll, uring or auto");
      options.backend = value;
    } else if (!extra(flag, value)) {
      usage_error(usage, "unknown flag: " + std::string(flag));
    }
  }
  return options;
}

inline constexpr const char* kRoundRobin = "roundrobin";
inline constexpr const char* kFastIo = "fast_io";

/// Prints each measurement as it comes and a summary per mode, as text or JSON lines.
/// `extra_fields` (key, value) pairs are added to every JSON object, e.g. tsf_test's source.
class Report {
 public:
  Report(const char* demo, bool json, std::vector<std::pair<std::string, std::string>> extra_fields)
      : demo_(demo), json_(json), extra_fields_(std::move(extra_fields)) {}

  bool json() const { return json_; }

  /// Free text for people; suppressed in JSON mode so that every line parses.
  void say(const char* text) const {
    if (!json_) emit(text);
  }

  /// `coalesced`: further events that arrived before this measurement was taken and were
  /// served by it (tsf_test: sets merged into one wake-up); reported only when non-zero.
  void iteration(const char* mode, int index, double ms, int coalesced = 0) {
    samples_.push_back(ms);
    if (json_) {
      JsonLine line = object(mode);
      line.add("iteration", index).add("ms", ms);
      if (coalesced > 0) line.add("coalesced", coalesced);
      emit(finish(line));
    } else {
      char line[128];
      std::snprintf(line, sizeof line, "  iteration %d: %.3f ms", index, ms);
      std::string text = line;
      if (coalesced > 0) text += " (" + std::to_string(coalesced) + " later set(s) coalesced)";
      emit(text);
    }
  }

  /// The portable seed demos (examples/seed/) measure in microseconds.
  void iteration_us(const char* mode, int index, std::int64_t us) {
    iteration(mode, index, static_cast<double>(us) / 1000.0);
  }

  /// Summarises the samples recorded since the previous summary.
  Stats summary(const char* mode) {
    const Stats stats = summarize(std::move(samples_));
    samples_.clear();
    if (json_) {
      emit(finish(object(mode)
                      .add("summary", true)
                      .add("median_ms", stats.median)
                      .add("max_ms", stats.max)
                      .add("min_ms", stats.min)));
    } else {
      char line[128];
      std::snprintf(line, sizeof line, "  %s: median %.3f ms, max %.3f ms, min %.3f ms", mode,
                    stats.median, stats.max, stats.min);
      emit(line);
    }
    return stats;
  }

 private:
  JsonLine object(const char* mode) const {
    JsonLine line;
    line.add("demo", demo_).add("mode", mode);
    return line;
  }
  std::string finish(JsonLine& line) const {
    for (const auto& [key, value] : extra_fields_) line.add(key, value);
    return line.str();
  }
  // Flushed line by line: a reader on a pipe (meson test, a benchmark script) sees each
  // iteration when it happens.
  static void emit(const std::string& line) {
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

  const char* demo_;
  bool json_;
  std::vector<std::pair<std::string, std::string>> extra_fields_;
  std::vector<double> samples_;
};

}  // namespace demo
