// Every public header, compiled by tests/meson.build with the warnings a strict consumer
// enables (-Wshadow, -Wconversion, -Wold-style-cast, ...) as errors.
#include <asyncio/asyncio.hpp>
#include <asyncio/linux.hpp>
#include <asyncio/linux/debug_signal.hpp>
#include <asyncio/errors.hpp>
#include <asyncio/event.hpp>
#include <asyncio/funcs.hpp>
#include <asyncio/introspect.hpp>
#include <asyncio/linux/io.hpp>
#include <asyncio/linux/log.hpp>
#include <asyncio/loop.hpp>
#include <asyncio/loop_stats.hpp>
#include <asyncio/linux/net.hpp>
#include <asyncio/pollable.hpp>
#include <asyncio/queue.hpp>
#include <asyncio/stream.hpp>
#include <asyncio/sync.hpp>
#include <asyncio/task.hpp>
#include <asyncio/task_group.hpp>
#include <asyncio/testing.hpp>
#include <asyncio/linux/threads.hpp>
#include <asyncio/threadsafe_flag.hpp>
#include <asyncio/timeout.hpp>
#include <asyncio/version.hpp>
#include <tuple>

// Templates are checked where they are instantiated: use the common ones once.
int main() {
  asyncio::Queue<int> queue(4);
  asyncio::run([&] {
    auto task = asyncio::create_task([](int x) { return x + 1; }, 1);
    queue.put_nowait(std::get<0>(asyncio::gather(task)) == 2 ? 1 : 0);
    asyncio::wait_for_ms(asyncio::create_task([] {}), 100);
  });
  return queue.get_nowait() == 1 ? 0 : 1;
}
