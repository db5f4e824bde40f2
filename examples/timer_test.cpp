// timer_test: the seed's demo of fast I/O scheduling (asyncio_alt/demos/timer_test.py) on
// Linux. The demo itself is examples/seed/timer_test.hpp, shared with hw/examples; this file
// adds the command line, the backend choice and the report.

#include <asyncio/linux.hpp>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "demo_util.hpp"
#include "seed/timer_test.hpp"

namespace {

constexpr const char* kUsage =
    "timer_test [--iterations N] [--json] [--backend epoll|uring|auto] [--failing-task TEXT]\n"
    "  --failing-task TEXT  also start a task that raises TEXT and is never awaited: the\n"
    "                       library reports it on stderr (see README \"Logging\")";
}  // namespace

int main(int argc, char** argv) {
  std::string failure;
  const demo::Options options =
      demo::parse_options(argc, argv, kUsage, [&](std::string_view flag, const std::string& value) {
        if (flag != "--failing-task") return false;
        failure = value;
        return true;
      });
  try {
    asyncio::Loop& loop =
        asyncio::new_event_loop(asyncio::Loop::Options{.backend = options.backend});
    demo::Report report("timer_test", options.json, {{"backend", loop.backend_name()}});
    if (!options.json) std::printf("timer_test on the %s backend\n", loop.backend_name());
    asyncio::run([&] {
      if (!failure.empty()) {
        asyncio::create_task([&failure] { throw std::runtime_error(failure); });
      }
      seed::timer_test(options.iterations, report);
    });
  } catch (const std::exception& error) {
    std::fprintf(stderr, "timer_test: %s\n", error.what());
    return 1;
  }
  return 0;
}
