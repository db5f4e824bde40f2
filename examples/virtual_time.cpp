// virtual_time: testing a timeout-driven function on virtual time (asyncio/testing.hpp).
//
// request_with_retries() sends a request to a device and waits up to 1 s for the answer,
// retrying with a doubling back-off. Scripted on virtual time, the device stays silent at
// first and answers at 6.5 s; the program checks that each attempt starts and times out at its
// exact virtual time, and finishes in milliseconds of wall time.
//
//   virtual_time [--json]
// With --json, one object per attempt and a summary go to stdout instead of the lines.

#include <asyncio/linux.hpp>
#include <asyncio/testing.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr const char* kUsage = "usage: virtual_time [--json]\n";

struct Attempt {
  long long start_ms = 0;
  long long end_ms = 0;
  bool answered = false;
};

long long virtual_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(asyncio::testing::now()).count();
}

/// The function under test: up to `tries` attempts of 1 s each, 500 ms back-off doubling.
bool request_with_retries(asyncio::ThreadSafeFlag& answer, int tries, std::vector<Attempt>& log) {
  auto backoff = 500ms;
  for (int i = 0; i < tries; ++i) {
    Attempt attempt{virtual_ms(), 0, false};
    try {
      asyncio::wait_for_ms([&] { answer.wait(); }, 1000);
      attempt.answered = true;
    } catch (const asyncio::TimeoutError&) {
    }
    attempt.end_ms = virtual_ms();
    log.push_back(attempt);
    if (attempt.answered) return true;
    asyncio::sleep(backoff);
    backoff *= 2;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (flag != "--json") {
      std::fprintf(stderr, "virtual_time: unknown option '%s'\n%s", argv[i], kUsage);
      return 2;
    }
    json = true;
  }
  std::vector<Attempt> log;
  const bool answered = asyncio::testing::run([&] {
    asyncio::ThreadSafeFlag answer;
    asyncio::testing::set_flag_at(answer, 6500ms);  // the device answers at 6.5 s
    return request_with_retries(answer, 5, log);
  });
  // Attempts at 0, 1.5 (1 + 0.5), 3.5 (2.5 + 1) and 6.5 (5.5 + 2) s; the fourth is answered
  // the moment it starts.
  const std::vector<Attempt> expected{{0, 1000, false}, {1500, 2500, false}, {3500, 4500, false},
                                      {6500, 6500, true}};
  bool ok = answered && log.size() == expected.size();
  for (std::size_t i = 0; ok && i < log.size(); ++i) {
    ok = log[i].start_ms == expected[i].start_ms && log[i].end_ms == expected[i].end_ms &&
         log[i].answered == expected[i].answered;
  }
  for (const Attempt& attempt : log) {
    if (json) {
      std::printf("{\"start_ms\": %lld, \"end_ms\": %lld, \"answered\": %s}\n", attempt.start_ms,
                  attempt.end_ms, attempt.answered ? "true" : "false");
    } else {
      std::printf("attempt %lld..%lld ms: %s\n", attempt.start_ms, attempt.end_ms,
                  attempt.answered ? "answered" : "timed out");
    }
  }
  if (json) {
    std::printf("{\"summary\": true, \"attempts\": %zu, \"as_expected\": %s}\n", log.size(),
                ok ? "true" : "false");
  } else {
    std::printf("%s\n", ok ? "every attempt at its exact virtual time" : "UNEXPECTED TIMES");
  }
  return ok ? 0 : 1;
}
