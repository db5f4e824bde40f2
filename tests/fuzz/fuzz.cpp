// A randomized driver for streams and the scheduler, checked against a simple model.
//
//   fuzz [--seed S] [--seconds N | --runs N] [--json] [--help]
//
// Each run is one seed: a fresh loop, a std::mt19937_64 seeded with it, and two scenarios.
//  - Streams: a PollableDevice delivers a known byte sequence in random chunks at random times,
//    maybe ends or fails; one to three reader tasks read it with random read/readline/
//    readexactly/readinto calls, some under timeouts or cancelled by another task; one or two
//    writers write()/drain() random payloads into a device that takes random amounts. The model:
//    what the readers got, in the order the calls returned, is a prefix of the input (all of it
//    when the stream ended cleanly), and the device's output is every write in call order.
//  - Scheduler: a few dozen tasks sleep, await earlier tasks, gather, wait_for, run task groups
//    whose members may fail, cancel each other and wait under timeouts. The model: every task
//    ends, gathered values are the children's, and nothing raises what nobody threw.
// A watchdog thread aborts with the seed if one run takes more than 20 s (a hang). Failures
// print the seed, so `fuzz --seed S --runs 1` replays one.
#include <asyncio/linux.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: fuzz [--seed S] [--seconds N | --runs N] [--json] [--help]\n"
    "  --seed S     first seed (default 1); run k uses seed S + k\n"
    "  --seconds N  run seeds until N seconds have passed (default 2)\n"
    "  --runs N     run exactly N seeds instead\n"
    "  --json       print the summary as one JSON object\n";

using Rng = std::mt19937_64;

std::uint64_t operations = 0;  // every stream call and scheduler step the runs made
std::uint64_t current_seed = 0;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz: seed %llu: %s\n", static_cast<unsigned long long>(current_seed),
               what.c_str());
  std::exit(1);
}

void check(bool condition, const char* what) {
  if (!condition) fail(what);
}

int uniform(Rng& rng, int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng); }
bool chance(Rng& rng, int percent) { return uniform(rng, 0, 99) < percent; }

// ---- streams ----

/// The device: input fed by a task, output taken in random amounts, an optional failure.
struct Wire {
  std::string pending;   // delivered, not yet read by the stream
  bool ended = false;
  bool failed = false;   // read_some raises OSError(ECONNRESET) once pending is empty
  std::string output;    // what write_some accepted
  Rng rng;
};

class FuzzDevice final : public asyncio::PollableDevice {
 public:
  explicit FuzzDevice(std::shared_ptr<Wire> wire) : wire_(std::move(wire)) {}
  unsigned poll(unsigned events) override {
    unsigned ready = 0;
    if (!wire_->pending.empty() || wire_->ended || wire_->failed) ready |= asyncio::POLL_RD;
    if (chance(wire_->rng, 70)) ready |= asyncio::POLL_WR;
    return ready & events;
  }
  std::ptrdiff_t read_some(std::span<std::byte> buf) override {
    if (buf.empty()) fail("read_some called with an empty span");
    if (wire_->pending.empty()) {
      if (wire_->failed) throw asyncio::OSError(ECONNRESET, "fuzz device: reset");
      return wire_->ended ? 0 : kWouldBlock;
    }
    const std::size_t n = std::min<std::size_t>(
        {buf.size(), wire_->pending.size(), static_cast<std::size_t>(uniform(wire_->rng, 1, 5000))});
    std::memcpy(buf.data(), wire_->pending.data(), n);
    wire_->pending.erase(0, n);
    return static_cast<std::ptrdiff_t>(n);
  }
  std::ptrdiff_t write_some(std::span<const std::byte> buf) override {
    if (buf.empty() || chance(wire_->rng, 30)) return kWouldBlock;
    const std::size_t n = std::min<std::size_t>(buf.size(), static_cast<std::size_t>(uniform(wire_->rng, 1, 3000)));
    wire_->output.append(reinterpret_cast<const char*>(buf.data()), n);
    return static_cast<std::ptrdiff_t>(n);
  }

 private:
  std::shared_ptr<Wire> wire_;
};

std::string random_bytes(Rng& rng, std::size_t size) {
  std::string text(size, '\0');
  for (char& c : text) c = chance(rng, 3) ? '\n' : static_cast<char>(uniform(rng, 'a', 'z'));
  return text;
}

/// Runs one read call of a random kind; returns the bytes it consumed (also on
/// IncompleteReadError). Sets `ended` when the call saw the end of the stream.
std::string random_read(Rng& rng, asyncio::Stream& stream, bool& ended) {
  ++operations;
  switch (uniform(rng, 0, 3)) {
    case 0: {
      std::string got = stream.read(uniform(rng, 1, 9000));
      ended = got.empty();
      return got;
    }
    case 1: {
      std::string line = stream.readline();
      ended = line.empty() || line.back() != '\n';
      return line;
    }
    case 2:
      try {
        return stream.readexactly(static_cast<std::size_t>(uniform(rng, 0, 3000)));
      } catch (const asyncio::IncompleteReadError& error) {
        ended = true;
        return error.partial();
      }
    default: {
      std::vector<char> buffer(static_cast<std::size_t>(uniform(rng, 1, 6000)));
      const std::size_t n = stream.readinto(std::span<char>(buffer));
      ended = n == 0;
      return std::string(buffer.data(), n);
    }
  }
}

void stream_scenario(Rng& rng) {
  auto wire = std::make_shared<Wire>();
  wire->rng.seed(rng());
  const std::string input = random_bytes(rng, static_cast<std::size_t>(uniform(rng, 0, 40'000)));
  const bool will_fail = chance(rng, 20);
  const std::size_t fail_at = input.empty() ? 0 : static_cast<std::size_t>(uniform(rng, 0, static_cast<int>(input.size())));
  asyncio::Stream stream(std::make_unique<FuzzDevice>(wire));
  stream.set_limit(static_cast<std::size_t>(uniform(rng, 1000, 70'000)));

  std::string received;  // every read's bytes, in the order the calls returned
  std::string written;   // every write, in call order

  asyncio::run([&] {
    auto feeder = asyncio::create_task([&] {
      std::size_t sent = 0;
      const std::size_t stop = will_fail ? fail_at : input.size();
      while (sent < stop) {
        const auto n = std::min<std::size_t>(stop - sent, static_cast<std::size_t>(uniform(rng, 1, 6000)));
        wire->pending.append(input, sent, n);
        sent += n;
        ++operations;
        if (chance(rng, 50)) asyncio::sleep_ms(uniform(rng, 0, 2)); else asyncio::sleep_ms(0);
      }
      if (will_fail) wire->failed = true; else wire->ended = true;
    });
    std::vector<asyncio::Task<void>> readers;
    const int reader_count = uniform(rng, 1, 3);
    for (int r = 0; r < reader_count; ++r) {
      readers.push_back(asyncio::create_task([&] {
        bool ended = false;
        bool over_limit = false;  // the last readline met a line longer than the limit
        while (!ended) {
          try {
            if (over_limit) {
              // That line stays in the stream: take it with a plain read.
              over_limit = false;
              std::string got = stream.read(static_cast<std::ptrdiff_t>(stream.limit()));
              ended = got.empty();
              received += got;
            } else if (chance(rng, 25)) {
              received += asyncio::timeout_ms(uniform(rng, 0, 3), [&] { return random_read(rng, stream, ended); });
            } else {
              received += random_read(rng, stream, ended);
            }
          } catch (const asyncio::TimeoutError&) {
          } catch (const asyncio::ValueError&) {
            over_limit = true;
          } catch (const asyncio::OSError&) {
            return;
          }
        }
      }));
    }
    std::vector<asyncio::Task<void>> writers;
    const int writer_count = uniform(rng, 0, 2);
    for (int w = 0; w < writer_count; ++w) {
      writers.push_back(asyncio::create_task([&] {
        const int writes = uniform(rng, 0, 8);
        for (int i = 0; i < writes; ++i) {
          const std::string payload = random_bytes(rng, static_cast<std::size_t>(uniform(rng, 0, 8000)));
          stream.write(payload);
          written += payload;
          ++operations;
          try {
            if (chance(rng, 30)) {
              asyncio::timeout_ms(uniform(rng, 0, 2), [&] { stream.drain(); });
            } else {
              stream.drain();
            }
          } catch (const asyncio::TimeoutError&) {
          }
        }
      }));
    }
    // Random cancellations of readers: a cancelled read must lose nothing.
    auto canceller = asyncio::create_task([&] {
      for (int i = uniform(rng, 0, 4); i > 0; --i) {
        asyncio::sleep_ms(uniform(rng, 0, 3));
        auto& victim = readers[static_cast<std::size_t>(uniform(rng, 0, reader_count - 1))];
        victim.cancel();
        ++operations;
      }
    });
    auto all = asyncio::gather(asyncio::return_exceptions, readers);
    for (auto& outcome : all) {
      if (!outcome.ok()) {
        try {
          std::rethrow_exception(outcome.exception());
        } catch (const asyncio::CancelledError&) {
        } catch (const std::exception& error) {
          fail(std::string("a reader raised ") + error.what());
        }
      }
    }
    canceller.cancel();
    // Cancelled readers, and readers that met the device error with bytes still buffered,
    // left the rest in the stream: read it to the end or to the error.
    for (;;) {
      try {
        std::string got = stream.read(4096);
        if (got.empty()) break;
        received += got;
      } catch (const asyncio::OSError&) {
        break;
      }
    }
    for (auto& writer : writers) writer.wait();
    stream.drain();
    feeder.wait();
  });
  check(input.compare(0, received.size(), received) == 0, "readers got bytes that were not sent");
  if (!will_fail) check(received.size() == input.size(), "bytes were lost before the end of the stream");
  if (will_fail) check(received.size() == fail_at, "bytes before a device error were lost");
  check(wire->output == written, "the device's output is not the writes in order");
}

// ---- scheduler ----

struct Failure : std::runtime_error {
  Failure() : std::runtime_error("child failed") {}
};

int leaf(int value, int sleep_ms, bool fails) {
  asyncio::sleep_ms(sleep_ms);
  if (fails) throw Failure();
  return value;
}

void expected_errors_only(const std::exception_ptr& error) {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const asyncio::CancelledError&) {
  } catch (const asyncio::TimeoutError&) {
  } catch (const Failure&) {
  } catch (const std::exception& other) {
    fail(std::string("a task raised ") + other.what());
  }
}

void scheduler_scenario(Rng& rng) {
  std::vector<asyncio::Task<int>> tasks;
  asyncio::run([&] {
    asyncio::Event event;
    const int count = uniform(rng, 5, 40);
    for (int id = 0; id < count; ++id) {
      const std::uint64_t task_seed = rng();
      const int earlier = static_cast<int>(tasks.size());
      tasks.push_back(asyncio::create_task([&tasks, &event, id, task_seed, earlier]() -> int {
        Rng local(task_seed);
        for (int step = uniform(local, 1, 4); step > 0; --step) {
          ++operations;
          switch (uniform(local, 0, 8)) {
            case 0:
              asyncio::sleep_ms(uniform(local, 0, 3));
              break;
            case 1:
              if (earlier > 0) {
                // Only earlier tasks: no cycle of awaits.
                // A copy: `tasks` may grow (and move) while this task waits.
                const auto other = tasks[static_cast<std::size_t>(uniform(local, 0, earlier - 1))];
                try {
                  asyncio::timeout_ms(uniform(local, 0, 4), [&] { other.wait(); });
                } catch (const asyncio::TimeoutError&) {
                } catch (const Failure&) {
                }
              }
              break;
            case 2: {
              const int a = uniform(local, 0, 100), b = uniform(local, 0, 100);
              auto [x, y] = asyncio::gather(asyncio::create_task(leaf, a, uniform(local, 0, 2), false),
                                            asyncio::create_task(leaf, b, uniform(local, 0, 2), false));
              check(x == a && y == b, "gather returned the wrong values");
              break;
            }
            case 3:
              try {
                asyncio::task_group([&](asyncio::TaskGroup& group) {
                  for (int i = uniform(local, 1, 3); i > 0; --i) {
                    group.create_task(leaf, i, uniform(local, 0, 2), chance(local, 20));
                  }
                  if (chance(local, 30)) asyncio::sleep_ms(uniform(local, 0, 2));
                });
              } catch (const Failure&) {
              }
              break;
            case 4: {
              const int v = uniform(local, 0, 100);
              try {
                check(asyncio::wait_for_ms(asyncio::create_task(leaf, v, uniform(local, 0, 3), false),
                                           uniform(local, 0, 3)) == v,
                      "wait_for returned the wrong value");
              } catch (const asyncio::TimeoutError&) {
              }
              break;
            }
            case 5:
              if (earlier > 0) tasks[static_cast<std::size_t>(uniform(local, 0, earlier - 1))].cancel();
              break;
            case 6:
              try {
                asyncio::timeout_ms(uniform(local, 0, 3), [&] { event.wait(); });
              } catch (const asyncio::TimeoutError&) {
              }
              break;
            case 7:
              if (chance(local, 30)) event.set(); else event.clear();
              break;
            default: {
              const int v = uniform(local, 0, 100);
              auto child = asyncio::create_task(leaf, v, uniform(local, 0, 2), false);
              try {
                const int got = asyncio::timeout_ms(uniform(local, 0, 3), [&] { return asyncio::await(child); });
                check(got == v, "await returned the wrong value");
              } catch (const asyncio::TimeoutError&) {
              }
              break;
            }
          }
        }
        return id;
      }));
      if (chance(rng, 30)) asyncio::sleep_ms(uniform(rng, 0, 1));
    }
    // Whatever happened, every task ends: set the event for good so that no waiter is stuck.
    event.set();
    auto outcomes = asyncio::gather(asyncio::return_exceptions, tasks);
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      expected_errors_only(outcomes[i].exception());
      if (outcomes[i].ok()) check(outcomes[i].value() == static_cast<int>(i), "a task returned the wrong value");
    }
  });
  for (auto& task : tasks) check(task.done(), "a task did not end");
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = 1;
  double seconds = 2;
  long runs = -1;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "fuzz: %s needs a value\n%s", flag.c_str(), kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (flag == "--seed") {
      seed = std::strtoull(value(), nullptr, 10);
    } else if (flag == "--seconds") {
      seconds = std::strtod(value(), nullptr);
    } else if (flag == "--runs") {
      runs = std::strtol(value(), nullptr, 10);
    } else if (flag == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "fuzz: unknown argument '%s'\n%s", flag.c_str(), kUsage);
      return 2;
    }
  }
  if (!(seconds > 0) || runs == 0) {
    std::fprintf(stderr, "fuzz: --seconds and --runs must be positive\n%s", kUsage);
    return 2;
  }

  // The watchdog: a run that never ends is a lost wake-up or a deadlock.
  std::atomic<std::int64_t> run_started{0};
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    while (!finished.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      const auto started = run_started.load();
      const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
      if (started != 0 && now - started > std::chrono::nanoseconds(std::chrono::seconds(20)).count()) {
        std::fprintf(stderr, "fuzz: seed %llu: a run hung for 20 s\n",
                     static_cast<unsigned long long>(current_seed));
        std::_Exit(1);
      }
    }
  });

  const auto start = std::chrono::steady_clock::now();
  long done = 0;
  for (std::uint64_t s = seed;; ++s) {
    if (runs > 0 ? done >= runs
                 : std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= seconds) {
      break;
    }
    current_seed = s;
    run_started = std::chrono::steady_clock::now().time_since_epoch().count();
    asyncio::new_event_loop();
    Rng rng(s);
    stream_scenario(rng);
    scheduler_scenario(rng);
    ++done;
  }
  finished = true;
  watchdog.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto last = static_cast<unsigned long long>(seed + static_cast<std::uint64_t>(done) - 1);
  if (json) {
    std::printf("{\"first_seed\": %llu, \"last_seed\": %llu, \"runs\": %ld, \"operations\": %llu, \"seconds\": %.1f}\n",
                static_cast<unsigned long long>(seed), last, done, static_cast<unsigned long long>(operations), elapsed);
  } else {
    std::printf("fuzz: seeds %llu..%llu (%ld runs), %llu operations in %.1f s, no failure\n",
                static_cast<unsigned long long>(seed), last, done, static_cast<unsigned long long>(operations), elapsed);
  }
  return 0;
}
