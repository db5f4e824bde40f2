// TCP streams (docs/semantics.md#streams, docs/semantics.md#errors): open_connection and start_server over IPv4 and IPv6, name
// resolution that does not block the loop, and errors a user can act on — refused
// connection, peer reset, broken pipe (never SIGPIPE), bad descriptor, address in use — each
// leaving the loop and the other tasks running, with no descriptor leaked.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include "test_support.hpp"

namespace asyncio::detail {
extern std::atomic<int> resolver_test_delay_ms;  // src/linux/net.cpp: slows lookups for tests
#ifdef ASYNCIO_TEST_IO_URING
extern std::atomic<bool> uring_test_no_multishot_accept;  // src/linux/uring_backend.cpp
#endif
}

namespace {

/// An echo server: every connection echoes what it reads until the client's end of stream.
asyncio::Server echo_server(const std::string& host) {
  return asyncio::start_server(
      [](asyncio::Stream reader, asyncio::Stream writer) {
        for (std::string data = reader.read(65536); !data.empty(); data = reader.read(65536)) {
          writer.write(data);
          writer.drain();
        }
      },
      host, 0);
}

/// A port nobody listens on: bound then closed.
std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

/// A blocking client socket connected to 127.0.0.1:port (loopback completes the handshake in
/// the kernel at once, whether or not the server has accepted yet).
int connect_blocking(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  return fd;
}

bool ipv6_loopback_available() {
  const int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return ok;
}

}  // namespace

TEST_CASE("an echo round trip over IPv4 loopback, with no descriptor leaked") {
  test::fresh_loop();
  const int before = test::open_descriptors();
  std::string reply;
  std::uint64_t connections = 0;
  asyncio::run([&] {
    asyncio::Server server = echo_server("127.0.0.1");
    CHECK(server.port() != 0);
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", server.port());
    writer.write("Hello uart\n");
    writer.drain();
    reply = reader.readline();
    writer.close();
    writer.wait_closed();
    connections = server.connections();
    server.close();
    server.wait_closed();
  });
  asyncio::new_event_loop();  // closes the old loop and its backend's descriptors
  CHECK(reply == "Hello uart\n");
  CHECK(connections == 1);
  CHECK(test::open_descriptors() == before);
}

TEST_CASE("an echo round trip over IPv6 loopback") {
  if (!ipv6_loopback_available()) {
    MESSAGE("skipped: no IPv6 loopback on this machine");
    return;
  }
  test::fresh_loop();
  std::string reply;
  asyncio::run([&] {
    asyncio::Server server = echo_server("::1");
    auto [reader, writer] = asyncio::open_connection("::1", server.port());
    writer.write("six bytes");
    writer.drain();
    reply = reader.readexactly(9);
    server.close();
  });
  CHECK(reply == "six bytes");
}

TEST_CASE("a server on every address (host \"\") answers IPv4 clients") {
  test::fresh_loop();
  std::string reply;
  asyncio::run([&] {
    asyncio::Server server = echo_server("");
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", server.port());
    writer.write("any\n");
    writer.drain();
    reply = reader.readline();
    server.close();
    server.wait_closed();
  });
  CHECK(reply == "any\n");
}

TEST_CASE("a host name resolves on a helper thread while the loop runs other tasks") {
  test::fresh_loop();
  asyncio::detail::resolver_test_delay_ms = 200;
  int ticks = 0;
  int ticks_while_resolving = 0;
  std::string reply;
  asyncio::run([&] {
    asyncio::Server server = echo_server("127.0.0.1");
    auto ticker = asyncio::create_task([&] {
      for (;;) {
        asyncio::sleep_ms(10);
        ++ticks;
      }
    });
    auto [reader, writer] = asyncio::open_connection("localhost", server.port());
    ticks_while_resolving = ticks;
    writer.write("by name\n");
    writer.drain();
    reply = reader.readline();
    ticker.cancel();
    server.close();
  });
  asyncio::detail::resolver_test_delay_ms = 0;
  CHECK(reply == "by name\n");
  // About 20 in the 200 ms lookup; a loop blocked by it would give at most 1 (the ticker's turn
  // while connect waits). Two need only two turns in 200 ms, which a loaded machine gives.
  CHECK(ticks_while_resolving >= 2);
}

TEST_CASE("an unknown host name raises OSError and the loop goes on") {
  test::fresh_loop();
  int error = 0;
  asyncio::run([&] {
    try {
      asyncio::open_connection("no-such-host.invalid", 80);
    } catch (const asyncio::OSError& e) {
      error = e.error();
    }
  });
  CHECK(error != 0);
}

TEST_CASE("a refused connection raises OSError(ECONNREFUSED); other tasks keep running") {
  test::fresh_loop();
  const int before = test::open_descriptors();
  int error = 0;
  int ticks = 0;
  asyncio::run([&] {
    auto ticker = asyncio::create_task([&] {
      for (int i = 0; i < 3; ++i) {
        asyncio::sleep_ms(1);
        ++ticks;
      }
    });
    try {
      asyncio::open_connection("127.0.0.1", free_port());
    } catch (const asyncio::OSError& e) {
      error = e.error();
    }
    asyncio::await(ticker);
  });
  asyncio::new_event_loop();
  CHECK(error == ECONNREFUSED);
  CHECK(ticks == 3);
  CHECK(test::open_descriptors() == before);
}

TEST_CASE("listening on an address in use raises OSError(EADDRINUSE)") {
  test::fresh_loop();
  int error = 0;
  asyncio::run([&] {
    asyncio::Server first = echo_server("127.0.0.1");
    try {
      asyncio::start_server([](asyncio::Stream, asyncio::Stream) {}, "127.0.0.1", first.port());
    } catch (const asyncio::OSError& e) {
      error = e.error();
    }
    first.close();
  });
  CHECK(error == EADDRINUSE);
}

TEST_CASE("a peer reset raises OSError(ECONNRESET) in the reader") {
  test::fresh_loop();
  int error = 0;
  asyncio::run([&] {
    // The server aborts each connection: SO_LINGER 0 then close sends a reset.
    asyncio::Server server = asyncio::start_server(
        [](asyncio::Stream reader, asyncio::Stream) {
          reader.read(1);
          const linger abort_on_close{1, 0};
          auto& device = static_cast<asyncio::FdDevice&>(reader.device());
          setsockopt(device.fd(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
          reader.close();
        },
        "127.0.0.1", 0);
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", server.port());
    writer.write("x");
    writer.drain();
    try {
      reader.read(10);
    } catch (const asyncio::OSError& e) {
      error = e.error();
    }
    server.close();
  });
  CHECK(error == ECONNRESET);
}

TEST_CASE("writing to a closed peer raises OSError(EPIPE) on a socket and on a pipe, no SIGPIPE") {
  test::fresh_loop();
  int socket_error = 0;
  int pipe_error = 0;
  asyncio::run([&] {
    asyncio::Server server = asyncio::start_server(
        [](asyncio::Stream reader, asyncio::Stream) { reader.close(); }, "127.0.0.1", 0);
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", server.port());
    CHECK(reader.read(1) == "");  // the server closed
    try {
      for (int i = 0; i < 1000; ++i) {  // the first write may still be accepted
        writer.write(std::string(4096, 'x'));
        writer.drain();
      }
    } catch (const asyncio::OSError& e) {
      socket_error = e.error();
    }
    int fds[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    close(fds[0]);
    asyncio::Stream pipe = asyncio::open_fd(fds[1]);
    try {
      pipe.write("x");
    } catch (const asyncio::OSError& e) {
      pipe_error = e.error();
    }
    server.close();
  });
  CHECK((socket_error == EPIPE || socket_error == ECONNRESET));
  CHECK(pipe_error == EPIPE);
}

TEST_CASE("a bad or closed descriptor raises OSError(EBADF) without disturbing the loop") {
  test::fresh_loop();
  CHECK_THROWS_AS(asyncio::open_fd(-1), asyncio::OSError);
  int fds[2];
  REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
  close(fds[0]);
  close(fds[1]);
  try {
    asyncio::open_fd(fds[0]);
    FAIL("open_fd accepted a closed descriptor");
  } catch (const asyncio::OSError& e) {
    CHECK(e.error() == EBADF);
  }
}

TEST_CASE("an exception in a connection callback reaches the handler; the server goes on") {
  test::fresh_loop();
  int handled = 0;
  std::string reply;
  asyncio::get_event_loop().set_exception_handler(
      [&](asyncio::Loop&, const asyncio::ExceptionContext&) { ++handled; });
  asyncio::run([&] {
    asyncio::Server server = asyncio::start_server(
        [](asyncio::Stream reader, asyncio::Stream writer) {
          const std::string line = reader.readline();
          if (line == "fail\n") throw std::runtime_error("callback failed");
          writer.write(line);
          writer.drain();
        },
        "127.0.0.1", 0);
    {
      auto [reader, writer] = asyncio::open_connection("127.0.0.1", server.port());
      writer.write("fail\n");
      writer.drain();
      CHECK(reader.read(1) == "");  // the failed callback's stream closed
    }
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", server.port());
    writer.write("fine\n");
    writer.drain();
    reply = reader.readline();
    server.close();
    server.wait_closed();
  });
  CHECK(handled == 1);
  CHECK(reply == "fine\n");
}

TEST_CASE("Server::close stops accepting; connections already open go on") {
  test::fresh_loop();
  std::string reply;
  int error = 0;
  asyncio::run([&] {
    asyncio::Server server = echo_server("127.0.0.1");
    const std::uint16_t port = server.port();
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", port);
    writer.write("a");
    writer.drain();
    CHECK(reader.read(1) == "a");
    server.close();
    server.wait_closed();
    writer.write("still open\n");
    writer.drain();
    reply = reader.readline();
    try {
      asyncio::open_connection("127.0.0.1", port);
    } catch (const asyncio::OSError& e) {
      error = e.error();
    }
  });
  CHECK(reply == "still open\n");
  CHECK(error == ECONNREFUSED);
}

TEST_CASE("a burst of connections beyond any accept queue: every one served, close-on-exec") {
  test::fresh_loop();
  constexpr int kBurst = 300;  // more than the io_uring backend queues before it stops accepting
  const int before = test::open_descriptors();
  int served = 0;
  int inheritable = 0;
  std::uint64_t connections = 0;
  asyncio::run([&] {
    asyncio::Server server = asyncio::start_server(
        [&](asyncio::Stream reader, asyncio::Stream) {
          const int fd = dynamic_cast<asyncio::FdDevice&>(reader.device()).fd();
          if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC)) ++inheritable;
          ++served;
        },
        "127.0.0.1", 0);
    std::vector<int> clients;
    // Two bursts: the second must be accepted after the first filled the queue.
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < kBurst; ++i) clients.push_back(connect_blocking(server.port()));
      for (int i = 0; i < 1000 && served < kBurst * (round + 1); ++i) asyncio::sleep_ms(1);
    }
    connections = server.connections();
    server.close();
    server.wait_closed();
    for (const int fd : clients) close(fd);
  });
  asyncio::new_event_loop();
  CHECK(served == 2 * kBurst);
  CHECK(connections == 2 * kBurst);
  CHECK(inheritable == 0);
  CHECK(test::open_descriptors() == before);
}

TEST_CASE("Server::close with connections not yet served leaves no descriptor open") {
  test::fresh_loop();
  const int before = test::open_descriptors();
  asyncio::run([&] {
    for (const int yields : {0, 1, 2}) {
      asyncio::Server server = asyncio::start_server(
          [](asyncio::Stream reader, asyncio::Stream) { reader.read(1); }, "127.0.0.1", 0);
      std::vector<int> clients;
      for (int i = 0; i < 50; ++i) clients.push_back(connect_blocking(server.port()));
      // 0: nothing reaped yet; 1 and 2: some connections queued or served, not all.
      for (int i = 0; i < yields; ++i) asyncio::sleep_ms(0);
      server.close();
      server.wait_closed();
      for (const int fd : clients) close(fd);
      asyncio::sleep_ms(20);  // the connections served see their end of stream and close
    }
  });
  asyncio::new_event_loop();
  CHECK(test::open_descriptors() == before);
}

#ifdef ASYNCIO_TEST_IO_URING
TEST_CASE("without multishot accept, a server accepts by readiness") {
  asyncio::detail::uring_test_no_multishot_accept = true;
  test::fresh_loop();
  std::string reply;
  asyncio::run([&] {
    asyncio::Server server = echo_server("127.0.0.1");
    auto [reader, writer] = asyncio::open_connection("127.0.0.1", server.port());
    writer.write("ready\n");
    writer.drain();
    reply = reader.readline();
    server.close();
    server.wait_closed();
  });
  asyncio::detail::uring_test_no_multishot_accept = false;
  asyncio::new_event_loop();
  CHECK(reply == "ready\n");
}
#endif

TEST_CASE("bad arguments to the network calls raise ValueError") {
  test::fresh_loop();
  asyncio::run([&] {
    CHECK_THROWS_AS(asyncio::open_connection("", 80), asyncio::ValueError);
    CHECK_THROWS_AS(asyncio::start_server(nullptr, "127.0.0.1", 0), asyncio::ValueError);
    CHECK_THROWS_AS(
        asyncio::start_server([](asyncio::Stream, asyncio::Stream) {}, "127.0.0.1", 0, -1),
        asyncio::ValueError);
  });
}

TEST_CASE("two loops serve one port (reuse_port): 1,000 connections, every byte checked") {
  test::fresh_loop();
  constexpr int kConnections = 1000;
  std::atomic<std::uint16_t> port{0};
  std::atomic<int> listening{0};
  std::atomic<int> served[2] = {0, 0};
  std::atomic<int> echoed{0};
  std::atomic<int> wrong{0};
  asyncio::ThreadSafeFlag stop[2];
  asyncio::run_threads(3, [&](int index) {
    if (index < 2) {
      // The first server picks the port; the second joins it.
      while (index == 1 && port.load() == 0) asyncio::sleep_ms(1);
      asyncio::Server server = asyncio::start_server(
          [&served, index](asyncio::Stream reader, asyncio::Stream) {
            ++served[index];
            for (std::string data = reader.read(65536); !data.empty(); data = reader.read(65536)) {
              reader.write(data);
              reader.drain();
            }
          },
          "127.0.0.1", port.load(), 4096, true);
      port = server.port();
      ++listening;
      stop[index].wait();
      server.close();
      server.wait_closed();
      return;
    }
    while (listening.load() < 2) asyncio::sleep_ms(1);
    std::vector<asyncio::Task<void>> clients;
    for (int c = 0; c < kConnections; ++c) {
      clients.push_back(asyncio::create_task([&, c] {
        auto [reader, writer] = asyncio::open_connection("127.0.0.1", port.load());
        std::string message(static_cast<std::size_t>(1 + c * 7 % 3000), '\0');
        for (std::size_t i = 0; i < message.size(); ++i) {
          message[i] = static_cast<char>((i * 31 + static_cast<std::size_t>(c)) & 0xff);
        }
        writer.write(message);
        writer.drain();
        if (reader.readexactly(message.size()) != message) ++wrong;
        writer.write_eof();
        if (!reader.read().empty()) ++wrong;  // the server's end of stream, nothing more
        ++echoed;
      }));
    }
    asyncio::gather(clients);
    stop[0].set();
    stop[1].set();
  });
  CHECK(echoed.load() == kConnections);
  CHECK(wrong.load() == 0);
  CHECK(served[0].load() + served[1].load() == kConnections);
  // The kernel spreads connections by their addresses: both loops get some.
  CHECK(served[0].load() > 0);
  CHECK(served[1].load() > 0);
}

TEST_CASE("run_threads rejects bad arguments and raises a loop's exception after all end") {
  CHECK_THROWS_AS(asyncio::run_threads(0, [](int) {}), asyncio::ValueError);
  std::atomic<int> finished{0};
  CHECK_THROWS_WITH_AS(asyncio::run_threads(2,
                                            [&](int index) {
                                              asyncio::sleep_ms(index == 0 ? 1 : 20);
                                              ++finished;
                                              if (index == 0) throw asyncio::ValueError("loop 0");
                                            }),
                       "loop 0", asyncio::ValueError);
  CHECK(finished.load() == 2);
}
