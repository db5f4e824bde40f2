// The program every consumer project builds: two tasks interleave on the installed library.
// Prints one line and exits 0 when the order is right.
#include <asyncio/linux.hpp>
#include <asyncio/version.hpp>
#include <cstdio>
#include <string>

namespace {

void ticker(std::string& trace, char name, int period_ms) {
  for (int i = 0; i < 2; ++i) {
    trace += name;
    asyncio::sleep_ms(period_ms);
  }
}

}  // namespace

int main() {
  std::string trace;
  asyncio::run([&] {
    auto fast = asyncio::create_task(ticker, std::ref(trace), 'f', 10);
    auto slow = asyncio::create_task(ticker, std::ref(trace), 's', 25);
    asyncio::gather(fast, slow);
  });
  const bool ok = trace == "fsfs";
  std::printf("asyncio_alt %s: %s (%s)\n", asyncio::version(), ok ? "ok" : "wrong order",
              trace.c_str());
  return ok ? 0 : 1;
}
