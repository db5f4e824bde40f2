// A bounded soak over loopback: 1,000 connections x 200 echo round trips of random
// sizes from 1 B to 64 KiB, every byte checked, nothing lost or reordered, no descriptor
// leaked. The server runs on this thread's loop, the clients on a second thread's loop, so
// both cores work and two loops run side by side.
#include <sys/resource.h>

#include <atomic>
#include <cmath>
#include <random>
#include <thread>

#include "test_support.hpp"

namespace {

#if ASYNCIO_TEST_SANITIZED
// Sanitizers make every byte copy several times slower (TSan ~20x); the shape stays, the
// volume shrinks: the full volume runs once, in the normal build.
constexpr int kConnections = 200;
constexpr int kRoundTrips = 20;
#else
constexpr int kConnections = 1000;
constexpr int kRoundTrips = 200;
#endif
constexpr std::size_t kMaxSize = 64 * 1024;

/// Sizes spread evenly over the orders of magnitude from 1 B to 64 KiB (log-uniform), so
/// that tiny and large messages are both common.
std::size_t random_size(std::mt19937& random) {
  std::uniform_real_distribution<double> exponent(0.0, std::log2(static_cast<double>(kMaxSize)));
  return std::min(kMaxSize, static_cast<std::size_t>(std::exp2(exponent(random))));
}

/// The message of one round trip: its bytes depend on the connection, the round and the
/// position, so a byte lost, duplicated or crossed between connections is caught.
void fill_message(std::string& message, std::size_t size, int connection, int round) {
  message.resize(size);
  std::uint32_t state = static_cast<std::uint32_t>(connection * 7919 + round * 104729 + 1);
  for (char& byte : message) {
    state = state * 1664525u + 1013904223u;
    byte = static_cast<char>(state >> 24);
  }
}

struct ClientTotals {
  std::atomic<long> round_trips{0};
  std::atomic<long> bytes{0};
  std::atomic<long> mismatches{0};
  std::atomic<long> errors{0};
  std::string first_error;
};

void run_clients(std::uint16_t port, ClientTotals& totals) {
  asyncio::new_event_loop();
  asyncio::run([&] {
    std::vector<asyncio::Task<void>> clients;
    for (int connection = 0; connection < kConnections; ++connection) {
      clients.push_back(asyncio::create_task([&, connection] {
        try {
          auto [reader, writer] = asyncio::open_connection("127.0.0.1", port);
          std::mt19937 random(static_cast<unsigned>(connection));
          std::string message;
          for (int round = 0; round < kRoundTrips; ++round) {
            fill_message(message, random_size(random), connection, round);
            writer.write(message, {.copy = round % 2 == 0});  // both write paths
            writer.drain();
            if (reader.readexactly(message.size()) != message) ++totals.mismatches;
            ++totals.round_trips;
            totals.bytes += static_cast<long>(message.size());
          }
          writer.close();
        } catch (const std::exception& error) {
          if (totals.errors++ == 0) totals.first_error = error.what();
        }
      }));
    }
    for (auto& client : clients) asyncio::await(client);
  });
  asyncio::new_event_loop();  // close this thread's loop and its descriptors
}

}  // namespace

TEST_CASE("soak: 1000 connections x 200 echo round trips of 1 B-64 KiB, every byte checked") {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  const rlim_t needed = 2 * kConnections + 100;
  if (files.rlim_cur < needed) {
    files.rlim_cur = std::min(files.rlim_max, std::max<rlim_t>(needed, files.rlim_cur));
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (files.rlim_cur < needed) {
    MESSAGE("skipped: the descriptor limit (" << files.rlim_max << ") is below " << needed);
    return;
  }
  test::fresh_loop();
  const int before = test::open_descriptors();
  ClientTotals totals;
  long server_bytes = 0;
  asyncio::run([&] {
    asyncio::Server server = asyncio::start_server(
        [&](asyncio::Stream reader, asyncio::Stream writer) {
          std::array<std::byte, 16384> buffer;
          for (std::size_t n = reader.readinto(buffer); n > 0; n = reader.readinto(buffer)) {
            server_bytes += static_cast<long>(n);
            writer.write(std::span<const std::byte>(buffer.data(), n));
            writer.drain();
          }
        },
        "127.0.0.1", 0, 1024);
    // The client thread blocks in join(); a ThreadSafeFlag tells this loop when it is done.
    asyncio::ThreadSafeFlag clients_done;
    std::thread clients([&] {
      run_clients(server.port(), totals);
      clients_done.set();
    });
    clients_done.wait();
    clients.join();
    server.close();
    server.wait_closed();
  });
  asyncio::new_event_loop();
  INFO("first client error: " << totals.first_error);
  CHECK(totals.errors == 0);
  CHECK(totals.mismatches == 0);
  CHECK(totals.round_trips == static_cast<long>(kConnections) * kRoundTrips);
  CHECK(server_bytes == totals.bytes);
  CHECK(test::open_descriptors() == before);
}
