// The 10,000-connection load run: an echo server in this process, 10,000 clients in a forked
// child (each process then needs ~10,000 descriptors, not 20,000), every connection open at
// once, every byte of every round trip checked, descriptors counted before and after in both
// processes, and the peak RSS of each reported.
//
//   load_10k [--connections N] [--rounds R] [--receive-pool] [--json] [--help]
//
// Exits 0 on success, 1 on a failure, 77 (Meson's SKIP) when the descriptor limit cannot be
// raised high enough.
#include <dirent.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asyncio/linux.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: load_10k [--connections N] [--rounds R] [--receive-pool] [--json] [--help]\n"
    "  --connections N  clients open at once (default 10000)\n"
    "  --rounds R       round trips per connection, 64 bytes each (default 20)\n"
    "  --receive-pool   the server calls set_receive_pool(true) (io_uring: 1,024 buffers\n"
    "                   shared by 10,000 connections)\n"
    "  --json           print the figures as one JSON object\n";

constexpr std::size_t kMessage = 64;

int open_descriptors() {
  int count = 0;
  DIR* directory = opendir("/proc/self/fd");
  if (!directory) return -1;
  while (const dirent* entry = readdir(directory)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(directory);
  return count - 1;  // the directory's own descriptor
}

long peak_rss_kb(int who) {
  rusage usage{};
  getrusage(who, &usage);
  return usage.ru_maxrss;
}

/// The bytes client `client` sends in round `round`: distinct for every pair.
std::string message(int client, int round) {
  std::string text(kMessage, '\0');
  for (std::size_t i = 0; i < kMessage; ++i) {
    text[i] = static_cast<char>((static_cast<std::size_t>(client) * 7919 + static_cast<std::size_t>(round) * 131 + i * 17) & 0xff);
  }
  return text;
}

/// The clients, in the child: connect all, then every round trip, then close. Returns the exit
/// code: 0, or 1 after printing what went wrong.
int run_clients(std::uint16_t port, int connections, int rounds) {
  asyncio::get_event_loop();  // its own descriptors are not the connections'
  const int descriptors_before = open_descriptors();
  long failures = 0;
  long bytes_checked = 0;
  asyncio::run([&] {
    asyncio::Semaphore connecting(256);  // the listen backlog is 4096: connect in waves
    int connected = 0;
    asyncio::Event all_connected;
    std::vector<asyncio::Task<void>> clients;
    clients.reserve(static_cast<std::size_t>(connections));
    for (int c = 0; c < connections; ++c) {
      clients.push_back(asyncio::create_task([&, c] {
        asyncio::Stream stream;
        try {
          {
            std::lock_guard<asyncio::Semaphore> hold(connecting);
            stream = asyncio::open_connection("127.0.0.1", port).first;
          }
          if (++connected == connections) all_connected.set();
          all_connected.wait();
          for (int r = 0; r < rounds; ++r) {
            const std::string sent = message(c, r);
            stream.write(sent);
            stream.drain();
            if (stream.readexactly(kMessage) != sent) {
              ++failures;
              std::fprintf(stderr, "load_10k: client %d round %d: wrong bytes\n", c, r);
              break;
            }
            bytes_checked += static_cast<long>(kMessage);
          }
        } catch (const std::exception& error) {
          ++failures;
          if (failures < 10) std::fprintf(stderr, "load_10k: client %d: %s\n", c, error.what());
          if (++connected == connections) all_connected.set();  // do not hold the others up
        }
        if (stream) stream.close();
      }));
    }
    asyncio::gather(clients);
  });
  const int descriptors_after = open_descriptors();
  std::fprintf(stderr, "load_10k: clients: %ld bytes checked, %ld failures, descriptors %d -> %d, peak RSS %ld KiB\n",
               bytes_checked, failures, descriptors_before, descriptors_after, peak_rss_kb(RUSAGE_SELF));
  if (bytes_checked != static_cast<long>(connections) * rounds * static_cast<long>(kMessage)) return 1;
  return failures == 0 && descriptors_after == descriptors_before ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int connections = 10'000;
  int rounds = 20;
  bool json = false;
  bool receive_pool = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if ((flag == "--connections" || flag == "--rounds") && i + 1 < argc) {
      (flag == "--rounds" ? rounds : connections) = std::atoi(argv[++i]);
    } else if (flag == "--json") {
      json = true;
    } else if (flag == "--receive-pool") {
      receive_pool = true;
    } else {
      std::fprintf(stderr, "load_10k: bad argument '%s'\n%s", flag.c_str(), kUsage);
      return 2;
    }
  }
  if (connections < 1 || rounds < 1) {
    std::fprintf(stderr, "load_10k: --connections and --rounds must be >= 1\n%s", kUsage);
    return 2;
  }

  // Each process holds one descriptor per connection plus a few dozen of its own.
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  const rlim_t needed = static_cast<rlim_t>(connections) + 256;
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
    std::fprintf(stderr, "load_10k: SKIP: RLIMIT_NOFILE hard limit %llu < %llu\n",
                 static_cast<unsigned long long>(limit.rlim_max), static_cast<unsigned long long>(needed));
    return 77;
  }
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    std::perror("load_10k: SKIP: setrlimit");
    return 77;
  }

  // Fork before either process has a loop: the child never touches one of the parent's.
  int port_pipe[2];
  if (pipe(port_pipe) != 0) return 1;
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    close(port_pipe[1]);
    std::uint16_t port = 0;
    if (read(port_pipe[0], &port, sizeof port) != sizeof port) _exit(1);
    close(port_pipe[0]);
    _exit(run_clients(port, connections, rounds));
  }
  close(port_pipe[0]);

  asyncio::set_receive_pool(receive_pool);
  asyncio::get_event_loop();
  // The pipe's write end is closed during the run: one fewer afterwards is the expected count.
  const int descriptors_before = open_descriptors() - 1;
  const auto start = std::chrono::steady_clock::now();
  long served = 0;
  int status = -1;
  asyncio::run([&] {
    asyncio::Server server = asyncio::start_server(
        [&](asyncio::Stream reader, asyncio::Stream writer) {
          try {
            for (;;) {
              const std::string data = reader.read(4096);
              if (data.empty()) break;
              writer.write(data);
              writer.drain();
            }
            ++served;
          } catch (const std::exception& error) {
            std::fprintf(stderr, "load_10k: server connection: %s\n", error.what());
          }
          writer.close();
        },
        "127.0.0.1", 0);
    const std::uint16_t port = server.port();
    if (write(port_pipe[1], &port, sizeof port) != sizeof port) return;
    close(port_pipe[1]);
    // Wait for the child without blocking the loop: poll its exit every few ms.
    for (;;) {
      const pid_t done = waitpid(child, &status, WNOHANG);
      if (done == child) break;
      asyncio::sleep_ms(5);
    }
    // Connections whose client has closed finish their last read shortly after.
    while (served < connections && std::chrono::steady_clock::now() - start < std::chrono::seconds(120)) {
      asyncio::sleep_ms(5);
    }
    server.close();
    server.wait_closed();
  });
  const int descriptors_after = open_descriptors();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  const bool ok = child_ok && served == connections && descriptors_after == descriptors_before;
  if (json) {
    std::printf("{\"connections\": %d, \"rounds\": %d, \"served\": %ld, \"seconds\": %.1f, "
                "\"server_peak_rss_kb\": %ld, \"client_peak_rss_kb\": %ld, \"descriptors_before\": %d, "
                "\"descriptors_after\": %d, \"ok\": %s}\n",
                connections, rounds, served, seconds, peak_rss_kb(RUSAGE_SELF), peak_rss_kb(RUSAGE_CHILDREN),
                descriptors_before, descriptors_after, ok ? "true" : "false");
  } else {
    std::printf("load_10k: %d connections x %d round trips in %.1f s: served %ld, server peak RSS %ld KiB, "
                "client peak RSS %ld KiB, server descriptors %d -> %d, clients %s\n",
                connections, rounds, seconds, served, peak_rss_kb(RUSAGE_SELF), peak_rss_kb(RUSAGE_CHILDREN),
                descriptors_before, descriptors_after, child_ok ? "ok" : "FAILED");
  }
  return ok ? 0 : 1;
}
