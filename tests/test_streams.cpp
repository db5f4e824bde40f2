// Stream semantics (docs/semantics.md#streams): partial reads, readline across chunk boundaries, readexactly at
// end of stream, large writes needing several drains, write(buf, {.copy = false}), and
// cancellation of a task blocked in read or drain with no data lost — over pipes, socket
// pairs and a pollable device.
#include <sys/socket.h>

#include <array>
#include <deque>
#include <numeric>
#include <thread>

#include "test_support.hpp"

using namespace std::chrono_literals;

namespace asyncio::detail {
extern std::atomic<unsigned long> socket_system_calls;  // src/linux/fd_device.cpp
// src/linux/uring_backend.cpp
extern std::atomic<unsigned> uring_test_receive_buffers;
extern std::atomic<unsigned long> uring_multishot_receives;
extern std::atomic<unsigned long> uring_receive_fallbacks;
extern std::atomic<unsigned long> uring_receive_stops;
std::size_t uring_buffers_lent(Loop& loop);
}  // namespace asyncio::detail

namespace {

/// A pollable device fed by the test in chunks: what a UART driver looks like to a Stream.
class ChunkDevice final : public asyncio::PollableDevice {
 public:
  std::deque<std::string> chunks;  // each read_some returns at most one chunk
  bool ended = false;              // after the chunks, the stream ends
  std::string written;
  std::size_t write_limit = 1 << 20;  // bytes accepted per write_some

  unsigned poll(unsigned events) override {
    unsigned ready = 0;
    if ((events & asyncio::POLL_RD) && (!chunks.empty() || ended)) ready |= asyncio::POLL_RD;
    if ((events & asyncio::POLL_WR) && write_limit > 0) ready |= asyncio::POLL_WR;
    return ready;
  }
  std::ptrdiff_t read_some(std::span<std::byte> buf) override {
    if (chunks.empty()) return ended ? 0 : kWouldBlock;
    std::string& front = chunks.front();
    const std::size_t n = std::min(buf.size(), front.size());
    std::memcpy(buf.data(), front.data(), n);
    front.erase(0, n);
    if (front.empty()) chunks.pop_front();
    return static_cast<std::ptrdiff_t>(n);
  }
  std::ptrdiff_t write_some(std::span<const std::byte> buf) override {
    if (write_limit == 0) return kWouldBlock;
    const std::size_t n = std::min(buf.size(), write_limit);
    written.append(reinterpret_cast<const char*>(buf.data()), n);
    return static_cast<std::ptrdiff_t>(n);
  }
};

/// A Stream over a ChunkDevice, keeping a pointer to the device for the test to feed.
struct DeviceStream {
  ChunkDevice* device;
  asyncio::Stream stream;
};
DeviceStream device_stream() {
  auto owned = std::make_unique<ChunkDevice>();
  ChunkDevice* device = owned.get();
  return {device, asyncio::Stream(std::move(owned))};
}

std::string pattern(std::size_t size, unsigned seed) {
  std::string text(size, '\0');
  for (std::size_t i = 0; i < size; ++i) text[i] = static_cast<char>((i * 131 + seed) & 0xff);
  return text;
}

/// Both ends of a connected stream socket pair as Streams.
std::pair<asyncio::Stream, asyncio::Stream> socket_streams() {
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  return {asyncio::open_fd(fds[0]), asyncio::open_fd(fds[1])};
}

std::pair<asyncio::Stream, asyncio::Stream> pipe_streams() {
  int fds[2];
  REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
  return {asyncio::open_fd(fds[0]), asyncio::open_fd(fds[1])};
}

/// io_uring loops created while it lives receive into a shared pool of `buffers` buffers (0:
/// the default size), where the kernel has multishot receive; then test::fresh_loop().
struct ReceivePool {
  explicit ReceivePool(unsigned buffers = 0) {
    asyncio::detail::uring_test_receive_buffers = buffers;
    test::fresh_loop();
    asyncio::set_receive_pool(true);
    asyncio::new_event_loop();
  }
  ~ReceivePool() {
    asyncio::detail::uring_test_receive_buffers = 0;
    asyncio::set_receive_pool(false);
  }
  ReceivePool(const ReceivePool&) = delete;
  ReceivePool& operator=(const ReceivePool&) = delete;
};

/// Multishot receives armed so far (none on epoll, or on io_uring before Linux 6.0).
unsigned long multishot_receives() { return asyncio::detail::uring_multishot_receives.load(); }

}  // namespace

TEST_CASE("read(n) returns what is available, at most n, and '' at end of stream") {
  test::fresh_loop();
  auto [device, stream] = device_stream();
  device->chunks = {"abc", "defgh"};
  device->ended = true;
  asyncio::run([&, &stream = stream] {
    CHECK(stream.read(2) == "ab");
    CHECK(stream.read(10) == "c");  // the rest of the buffered chunk, no wait for more
    CHECK(stream.read(10) == "defgh");
    CHECK(stream.read(10) == "");
    CHECK(stream.read(10) == "");
  });
}

TEST_CASE("read() with no argument reads to the end of the stream") {
  test::fresh_loop();
  auto [reader, writer] = pipe_streams();
  const std::string data = pattern(200'000, 7);
  std::string got;
  asyncio::run([&, &reader = reader, &writer = writer] {
    auto producer = asyncio::create_task([&] {
      writer.write(data);
      writer.drain();
      writer.close();
    });
    got = reader.read();
    asyncio::await(producer);
  });
  CHECK(got.size() == data.size());
  CHECK(got == data);
}

TEST_CASE("a read suspends until data arrives and lets other tasks run meanwhile") {
  test::fresh_loop();
  auto [a, b] = socket_streams();
  test::Log log;
  asyncio::run([&, &a = a, &b = b] {
    auto reader = asyncio::create_task([&] {
      log.push_back("reading");
      log.push_back("got " + a.read(100));
    });
    asyncio::sleep_ms(0);
    log.push_back("other task");
    asyncio::sleep_ms(10);
    b.write("ping");
    b.drain();
    asyncio::await(reader);
  });
  CHECK(log == test::Log{"reading", "other task", "got ping"});
}

TEST_CASE("readinto fills the caller's buffer from the stream's buffer first") {
  test::fresh_loop();
  auto [device, stream] = device_stream();
  device->chunks = {"line one\nrest", "more"};
  asyncio::run([&, &stream = stream] {
    CHECK(stream.readline() == "line one\n");
    char buffer[16];
    const std::size_t n = stream.readinto(std::span<char>(buffer));
    CHECK(std::string(buffer, n) == "rest");
    CHECK(std::string(buffer, stream.readinto(std::span<char>(buffer))) == "more");
    CHECK(stream.readinto(std::span<char>(buffer, 0)) == 0);
  });
}

TEST_CASE("readline joins chunks and splits several lines in one chunk") {
  test::fresh_loop();
  auto [device, stream] = device_stream();
  device->chunks = {"He", "llo ", "uart\nsec", "ond\nthird\n", "no newline"};
  device->ended = true;
  asyncio::run([&, &stream = stream] {
    CHECK(stream.readline() == "Hello uart\n");
    CHECK(stream.readline() == "second\n");
    CHECK(stream.readline() == "third\n");
    CHECK(stream.readline() == "no newline");
    CHECK(stream.readline() == "");
  });
}

TEST_CASE("readline across many small chunks over a pipe, fed from another task") {
  test::fresh_loop();
  auto [reader, writer] = pipe_streams();
  std::vector<std::string> lines;
  asyncio::run([&, &reader = reader, &writer = writer] {
    auto producer = asyncio::create_task([&] {
      const std::string text = "alpha\nbeta\n" + std::string(10'000, 'g') + "\nend";
      for (std::size_t i = 0; i < text.size(); i += 7) {
        writer.write(std::string_view(text).substr(i, 7));
        writer.drain();
        if (i % 700 == 0) asyncio::sleep_ms(1);
      }
      writer.close();
    });
    for (std::string line = reader.readline(); !line.empty(); line = reader.readline()) {
      lines.push_back(line);
    }
    asyncio::await(producer);
  });
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "alpha\n");
  CHECK(lines[1] == "beta\n");
  CHECK(lines[2] == std::string(10'000, 'g') + "\n");
  CHECK(lines[3] == "end");
}

TEST_CASE("a line longer than the limit raises ValueError and leaves the data readable") {
  test::fresh_loop();
  auto [device, stream] = device_stream();
  device->chunks = {std::string(100, 'x') + "\nshort\n"};
  asyncio::run([&, &stream = stream] {
    stream.set_limit(50);
    CHECK_THROWS_AS(stream.readline(), asyncio::ValueError);
    CHECK(stream.read(100) == std::string(100, 'x'));
    CHECK(stream.readline() == "\n");
    CHECK(stream.readline() == "short\n");
    CHECK_THROWS_AS(stream.set_limit(0), asyncio::ValueError);
  });
}

TEST_CASE("readexactly waits for all n bytes; at an early end it raises with the partial data") {
  test::fresh_loop();
  auto [device, stream] = device_stream();
  device->chunks = {"12", "345", "6789"};
  device->ended = true;
  asyncio::run([&, &stream = stream] {
    CHECK(stream.readexactly(4) == "1234");
    CHECK(stream.readexactly(0) == "");
    try {
      stream.readexactly(10);
      FAIL("readexactly returned at end of stream");
    } catch (const asyncio::IncompleteReadError& error) {
      CHECK(error.partial() == "56789");
      CHECK(error.expected() == 10);
    }
    CHECK(stream.read(1) == "");
  });
}

TEST_CASE("a large write is drained in several steps and arrives whole and in order") {
  test::fresh_loop();
  auto [a, b] = socket_streams();
  const std::string data = pattern(8 << 20, 3);  // far beyond the socket buffers
  std::string got;
  asyncio::run([&, &a = a, &b = b] {
    auto consumer = asyncio::create_task([&] { got = b.readexactly(data.size()); });
    a.write(data);
    CHECK(a.pending_output() > 0);  // the kernel took only part of it
    a.drain();
    CHECK(a.pending_output() == 0);
    asyncio::await(consumer);
  });
  CHECK(got == data);
}

TEST_CASE("write(buf, {.copy = false}) sends the caller's buffer without copying it") {
  test::fresh_loop();
  auto [device, stream] = device_stream();
  device->write_limit = 0;  // nothing is written until the test allows it
  std::string message = "borrowed bytes";
  asyncio::run([&, &device = device, &stream = stream] {
    stream.write(message, {.copy = false});
    CHECK(stream.pending_output() == message.size());
    // Not copied: what drain() sends is the buffer as it is then.
    message[0] = 'B';
    device->write_limit = 4;
    stream.drain();
    CHECK(device->written == "Borrowed bytes");
  });
}

TEST_CASE("a second write before drain() of a copy=false buffer raises and loses nothing") {
  test::fresh_loop();
  auto [device, stream] = device_stream();
  device->write_limit = 0;
  const std::string first = "first ";
  asyncio::run([&, &device = device, &stream = stream] {
    stream.write("copied ");
    stream.write(first, {.copy = false});
    CHECK_THROWS_AS(stream.write("second"), asyncio::RuntimeError);
    CHECK_THROWS_AS(stream.write("second", {.copy = false}), asyncio::RuntimeError);
    device->write_limit = 3;
    stream.drain();
    stream.write("second", {.copy = false});
    stream.drain();
    CHECK(device->written == "copied first second");
  });
}

TEST_CASE("drain() with nothing queued still yields to other tasks (round-robin)") {
  test::fresh_loop();
  auto [device, stream] = device_stream();
  test::Log log;
  asyncio::run([&, &stream = stream] {
    auto other = asyncio::create_task([&] { log.push_back("other"); });
    stream.drain();
    log.push_back("drained");
    asyncio::await(other);
  });
  CHECK(log == test::Log{"other", "drained"});
}

TEST_CASE("a read with data already there still lets the other ready tasks run (round-robin)") {
  // MicroPython's reads yield to the poller before reading: a hot reader cannot starve.
  test::fresh_loop();
  auto [device, stream] = device_stream();
  device->chunks = {"line 1\nline 2\nline 3\n", "xyz", "12345"};
  test::Log log;
  asyncio::run([&, &stream = stream] {
    auto other = asyncio::create_task([&] {
      for (int i = 0; i < 5; ++i) {
        log.push_back("other");
        asyncio::sleep_ms(0);
      }
    });
    log.push_back(stream.readline());
    log.push_back(stream.readline());
    log.push_back(stream.read(2));
    char byte = 0;
    stream.readinto(std::span<char>(&byte, 1));
    log.push_back(std::string(1, byte));
    log.push_back(stream.readexactly(5));
    asyncio::await(other);
  });
  CHECK(log == test::Log{"other", "line 1\n", "other", "line 2\n", "other", "li", "other", "n",
                         "other", "e 3\nx"});
}

TEST_CASE("fast I/O: a read with data already there resumes ahead of the pending tasks") {
  test::fresh_loop();
  asyncio::roundrobin(false);
  auto [device, stream] = device_stream();
  device->chunks = {"a\nb\n"};
  test::Log log;
  asyncio::run([&, &stream = stream] {
    auto other = asyncio::create_task([&] { log.push_back("other"); });
    log.push_back(stream.readline());
    log.push_back(stream.readline());
    asyncio::await(other);
  });
  asyncio::roundrobin(true);
  CHECK(log == test::Log{"a\n", "b\n", "other"});
}

TEST_CASE("a task cancelled in readline loses no data: the next reader gets the whole line") {
  test::fresh_loop();
  auto [a, b] = socket_streams();
  std::string line;
  asyncio::run([&, &a = a, &b = b] {
    auto blocked = asyncio::create_task([&] { return b.readline(); });
    a.write("half a ");
    a.drain();
    asyncio::sleep_ms(5);  // the reader has buffered "half a " and waits for the rest
    blocked.cancel();
    CHECK_THROWS_AS(asyncio::await(blocked), asyncio::CancelledError);
    a.write("line\n");
    a.drain();
    line = b.readline();
  });
  CHECK(line == "half a line\n");
}

TEST_CASE("a task cancelled in readexactly leaves the bytes for the next reader") {
  test::fresh_loop();
  auto [a, b] = socket_streams();
  std::string got;
  asyncio::run([&, &a = a, &b = b] {
    auto blocked = asyncio::create_task([&] { return b.readexactly(6); });
    a.write("abc");
    a.drain();
    asyncio::sleep_ms(5);
    blocked.cancel();
    CHECK_THROWS_AS(asyncio::await(blocked), asyncio::CancelledError);
    a.write("def");
    a.drain();
    got = b.readexactly(6);
  });
  CHECK(got == "abcdef");
}

TEST_CASE("bytes arriving after a blocked reader was cancelled wait for the next read") {
  // On io_uring the drained socket's receive stays in flight when its task is cancelled; the
  // bytes it gets must reach the next reader, who must not wait for more.
  test::fresh_loop();
  auto [a, b] = socket_streams();
  std::string first, second;
  asyncio::run([&, &a = a, &b = b] {
    a.write("warm");
    a.drain();
    first = b.read(100);  // a short read: the socket is drained now
    auto blocked = asyncio::create_task([&] { return b.read(100); });
    asyncio::sleep_ms(5);
    blocked.cancel();
    CHECK_THROWS_AS(asyncio::await(blocked), asyncio::CancelledError);
    a.write("after the cancel");
    a.drain();
    asyncio::sleep_ms(5);  // the loop takes the bytes in with nobody reading
    auto reader = asyncio::create_task([&] { return b.read(100); });
    second = asyncio::await(reader);
  });
  CHECK(first == "warm");
  CHECK(second == "after the cancel");
}

TEST_CASE("closing a socket with a read pending lets the descriptor be reused at once") {
  test::fresh_loop();
  const int before = test::open_descriptors();
  std::string got;
  bool peer_saw_end = false;
  asyncio::run([&] {
    auto [a, b] = socket_streams();
    auto blocked = asyncio::create_task([&b = b] { return b.read(100); });
    asyncio::sleep_ms(5);
    blocked.cancel();
    CHECK_THROWS_AS(asyncio::await(blocked), asyncio::CancelledError);
    const int old_fd = static_cast<asyncio::FdDevice&>(b.device()).fd();
    b.close();
    peer_saw_end = a.read(100).empty();
    a.close();
    // The lowest free numbers come back: the new pair reuses the old descriptors.
    auto [c, d] = socket_streams();
    CHECK((static_cast<asyncio::FdDevice&>(c.device()).fd() == old_fd ||
           static_cast<asyncio::FdDevice&>(d.device()).fd() == old_fd));
    c.write("new socket");
    c.drain();
    got = d.read(100);
    d.write("and back");
    d.drain();
    CHECK(c.read(100) == "and back");
  });
  asyncio::new_event_loop();  // closes the old loop and its backend's descriptors
  CHECK(got == "new socket");
  CHECK(peer_saw_end);
  CHECK(test::open_descriptors() == before);
}

TEST_CASE("a task cancelled in drain loses nothing: a later drain finishes the output in order") {
  test::fresh_loop();
  auto [a, b] = socket_streams();
  const std::string data = pattern(4 << 20, 11);
  std::string got;
  asyncio::run([&, &a = a, &b = b] {
    a.write(data);
    auto drainer = asyncio::create_task([&] { a.drain(); });
    asyncio::sleep_ms(5);  // nobody reads: the drain is blocked on a full socket
    drainer.cancel();
    CHECK_THROWS_AS(asyncio::await(drainer), asyncio::CancelledError);
    CHECK(a.pending_output() > 0);
    a.write("tail");
    auto consumer = asyncio::create_task([&] { got = b.readexactly(data.size() + 4); });
    a.drain();
    asyncio::await(consumer);
  });
  CHECK(got == data + "tail");
}

TEST_CASE("closing a stream wakes a task blocked reading it with OSError(EBADF)") {
  test::fresh_loop();
  auto [a, b] = socket_streams();
  int error = 0;
  asyncio::run([&, &b = b] {
    auto reader = asyncio::create_task([&] {
      try {
        b.read(10);
      } catch (const asyncio::OSError& e) {
        error = e.error();
      }
    });
    asyncio::sleep_ms(5);
    b.close();
    asyncio::await(reader);
    CHECK(b.is_closed());
    CHECK_THROWS_AS(b.read(1), asyncio::OSError);
    CHECK_THROWS_AS(b.write("x"), asyncio::OSError);
    b.close();  // twice is fine
    b.wait_closed();
  });
  CHECK(error == EBADF);
}

TEST_CASE("a reader woken by close() and cancelled before it runs ends cancelled") {
  test::fresh_loop();
  auto [a, b] = socket_streams();
  asyncio::run([&, &b = b] {
    for (int round = 0; round < 20; ++round) {
      auto [c, d] = socket_streams();
      auto reader = asyncio::create_task([&d = d] { d.read(10); });
      asyncio::sleep_ms(0);  // the reader blocks on its receive
      d.close();             // wakes it with EBADF and gives the receive to the backend
      reader.cancel();       // before the woken reader runs
      CHECK_THROWS_AS(asyncio::await(reader), asyncio::CancelledError);
      c.close();
    }
  });
}

TEST_CASE("closing a stream over a pollable device wakes its blocked reader and writer") {
  // The device's poll() never reports anything again: only the close can end the waits.
  test::fresh_loop();
  auto [device, stream] = device_stream();
  device->write_limit = 0;
  int read_error = 0;
  int drain_error = 0;
  std::string read_message;
  asyncio::run([&, &stream = stream] {
    auto reader = asyncio::create_task([&] {
      try {
        stream.read(10);
      } catch (const asyncio::OSError& e) {
        read_error = e.error();
        read_message = e.what();
      }
    });
    auto writer = asyncio::create_task([&] {
      try {
        stream.write("blocked");
        stream.drain();
      } catch (const asyncio::OSError& e) {
        drain_error = e.error();
      }
    });
    asyncio::sleep_ms(5);
    CHECK_FALSE(reader.done());
    CHECK_FALSE(writer.done());
    stream.close();
    asyncio::wait_for_ms(reader, 5000);  // TimeoutError here would be the old hang
    asyncio::wait_for_ms(writer, 5000);
  });
  CHECK(read_error == EBADF);
  CHECK(drain_error == EBADF);
  CHECK(read_message.find("closed while waiting") != std::string::npos);
}

TEST_CASE("end of stream from a closed peer, and write_eof half-closes a socket") {
  test::fresh_loop();
  auto [a, b] = socket_streams();
  std::string reply;
  asyncio::run([&, &a = a, &b = b] {
    auto server = asyncio::create_task([&] {
      const std::string request = b.read();  // to the end: needs the client's write_eof
      b.write("got " + std::to_string(request.size()));
      b.drain();
      b.close();
    });
    a.write("twelve bytes");
    a.write_eof();
    reply = a.read();
    asyncio::await(server);
  });
  CHECK(reply == "got 12");
}

TEST_CASE("write_eof on a pipe raises RuntimeError; a default-constructed Stream raises too") {
  test::fresh_loop();
  auto [reader, writer] = pipe_streams();
  asyncio::run([&, &writer = writer] {
    CHECK_THROWS_AS(writer.write_eof(), asyncio::RuntimeError);
    asyncio::Stream empty;
    CHECK_FALSE(empty);
    CHECK_THROWS_AS(empty.read(1), asyncio::RuntimeError);
  });
  CHECK_THROWS_AS(asyncio::Stream(nullptr), asyncio::ValueError);
}

TEST_CASE("copies of a Stream share one device and its buffers") {
  test::fresh_loop();
  auto [device, stream] = device_stream();
  device->chunks = {"one\ntwo\n"};
  asyncio::run([&, &stream = stream] {
    asyncio::StreamReader reader = stream;
    asyncio::StreamWriter writer = stream;
    CHECK(reader.readline() == "one\n");
    CHECK(stream.readline() == "two\n");
    writer.write("out");
    writer.drain();
  });
  CHECK(device->written == "out");
}

TEST_CASE("drain() after a complete write resumes as I/O: first in fast-I/O mode, in turn otherwise") {
  for (const bool fast_io : {false, true}) {
    CAPTURE(fast_io);
    test::fresh_loop();
    auto [device, stream] = device_stream();
    test::Log log;
    asyncio::run([&, &stream = stream] {
      asyncio::roundrobin(!fast_io);
      auto other = asyncio::create_task([&] { log.push_back("pending task"); });
      stream.write("reply");  // the device takes it all: drain() has nothing left to write
      stream.drain();
      log.push_back("after drain");
      asyncio::await(other);
    });
    CHECK(device->written == "reply");
    if (fast_io) {
      CHECK(log == test::Log{"after drain", "pending task"});
    } else {
      CHECK(log == test::Log{"pending task", "after drain"});
    }
  }
}

TEST_CASE("writes from another task while a drain waits are sent after it, in order") {
  // The waiting drain must not keep a view of the queued output across its wait: the second
  // write grows the queue (moving its bytes), and the drain then resumes from the new place.
  test::fresh_loop();
  auto [a, b] = socket_streams();
  const std::string first = pattern(4 << 20, 5);
  const std::string second = pattern(16 << 20, 9);
  std::string got;
  asyncio::run([&, &a = a, &b = b] {
    a.write(first);
    auto drainer = asyncio::create_task([&] { a.drain(); });
    asyncio::sleep_ms(5);  // the drain waits on a full socket
    a.write(second);       // appended behind the queued rest of `first`
    auto consumer = asyncio::create_task([&] { got = b.readexactly(first.size() + second.size()); });
    asyncio::await(drainer);
    asyncio::await(consumer);
  });
  CHECK(got.size() == first.size() + second.size());
  CHECK(got == first + second);
}

TEST_CASE("on io_uring a socket stream reads and writes through the ring, every byte in order") {
  // No recv() or send() system call: the ring does the I/O (on epoll, readiness plus those
  // calls). A write, drain and close at once still delivers everything before the end.
  test::fresh_loop();
  const std::string request = pattern(100'000, 3);
  std::string echoed;
  std::string last_words;
  const unsigned long calls_before = asyncio::detail::socket_system_calls.load();
  asyncio::run([&] {
    auto [a, b] = socket_streams();
    auto echo = asyncio::create_task([&b = b] {
      std::array<char, 1000> buffer;
      for (std::size_t n; (n = b.readinto(std::span<char>(buffer))) > 0;) {
        b.write(std::string_view(buffer.data(), n));
        b.drain();
      }
      b.write("bye");
      b.drain();
      b.close();
    });
    auto reader = asyncio::create_task([&a = a] { return a.readexactly(100'000); });
    a.write(request);
    a.drain();
    echoed = asyncio::await(reader);
    a.write_eof();
    last_words = a.read();
    asyncio::await(echo);
  });
  const unsigned long calls = asyncio::detail::socket_system_calls.load() - calls_before;
  CHECK(echoed == request);
  CHECK(last_words == "bye");
  if (std::string(asyncio::get_event_loop().backend_name()) == "uring") {
    CHECK(calls == 0);
  } else {
    CHECK(calls > 0);
  }
}

TEST_CASE("written bytes reach the peer before a busy task runs, in both scheduling modes") {
  // io_uring batches its sends; a task not woken by I/O may run for long, so the loop hands
  // the batch to the kernel before it runs one (docs/semantics.md#streams).
  for (const bool fast_io : {false, true}) {
    CAPTURE(fast_io);
    test::fresh_loop();
    asyncio::roundrobin(!fast_io);
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    bool arrived_while_busy = false;
    asyncio::run([&] {
      asyncio::Stream writer = asyncio::open_fd(fds[0]);
      // Submitted at this drain's switch: the next write's batch then starts a moment after
      // a submission, so no interval elapsed can send it before the busy task runs.
      writer.write("a");
      writer.drain();
      auto busy = asyncio::create_task([&] {
        // Never switches: only a send already handed to the kernel can arrive meanwhile.
        const auto end = std::chrono::steady_clock::now() + 2s;
        char bytes[2] = {};
        while (!arrived_while_busy && std::chrono::steady_clock::now() < end) {
          arrived_while_busy = recv(fds[1], bytes, 2, MSG_PEEK | MSG_DONTWAIT) == 2;
        }
      });
      writer.write("b");
      writer.drain();
      asyncio::await(busy);
    });
    asyncio::roundrobin(true);
    close(fds[1]);
    CHECK(arrived_while_busy);
  }
}

TEST_CASE("a reader that falls behind stops its receive; every byte arrives once it reads") {
  // With the receive pool on io_uring, a multishot receive holds at most about 64 KiB for a
  // reader that is not reading (docs/semantics.md#streams); the rest waits in the kernel.
  const ReceivePool pool;
  const std::string sent = pattern(1 << 20, 5);
  std::string got;
  const unsigned long armed = multishot_receives();
  const unsigned long stops = asyncio::detail::uring_receive_stops.load();
  asyncio::run([&] {
    auto [a, b] = socket_streams();
    auto writer = asyncio::create_task([&b = b, &sent] {
      b.write(sent);
      b.drain();
    });
    got = a.readexactly(1);  // starts the receive; the rest arrives while this task sleeps
    asyncio::sleep_ms(100);
    got += a.readexactly(sent.size() - 1);
    asyncio::await(writer);
  });
  CHECK(got == sent);
  if (multishot_receives() > armed) CHECK(asyncio::detail::uring_receive_stops.load() > stops);
}

TEST_CASE("with 4 receive buffers for 20 connections at once, every byte arrives in order") {
  // Receives that find the pool empty fall back to their own buffers: slower, never stuck.
  const ReceivePool pool(4);
  constexpr std::size_t kConnections = 20;
  constexpr std::size_t kBytes = 200'000;
  std::vector<std::string> got(kConnections);
  const unsigned long armed = multishot_receives();
  const unsigned long fallbacks = asyncio::detail::uring_receive_fallbacks.load();
  asyncio::run([&] {
    std::vector<asyncio::Task<void>> connections;
    for (std::size_t i = 0; i < kConnections; ++i) {
      connections.push_back(asyncio::create_task([&got, i] {
        auto [a, b] = socket_streams();
        auto writer = asyncio::create_task([&b = b, i] {
          b.write(pattern(kBytes, static_cast<unsigned>(i)));
          b.drain();
        });
        got[i] = a.readexactly(kBytes);
        asyncio::await(writer);
      }));
    }
    for (auto& connection : connections) asyncio::await(connection);
    CHECK(asyncio::detail::uring_buffers_lent(asyncio::get_event_loop()) == 0);
  });
  for (std::size_t i = 0; i < kConnections; ++i) {
    CAPTURE(i);
    CHECK(got[i] == pattern(kBytes, static_cast<unsigned>(i)));
  }
  if (multishot_receives() > armed) {
    CHECK(asyncio::detail::uring_receive_fallbacks.load() > fallbacks);
  }
}

TEST_CASE("closing a stream with received bytes unread gives their buffers back") {
  const ReceivePool pool(4);
  asyncio::Loop& loop = asyncio::get_event_loop();
  const bool uring = std::string(loop.backend_name()) == "uring";
  std::string last;
  const std::string large = pattern(200'000, 11);
  asyncio::run([&] {
    for (unsigned round = 0; round < 8; ++round) {
      CAPTURE(round);
      int fds[2];
      REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
      asyncio::Stream reader = asyncio::open_fd(fds[0]);
      const unsigned long armed = multishot_receives();
      // 10,000 bytes: the receive is still armed at close; 64 KiB: the pool ran dry first.
      const std::string burst = pattern(round % 2 ? 64 * 1024 : 10'000, round);
      REQUIRE(send(fds[1], burst.data(), burst.size(), 0) == static_cast<ssize_t>(burst.size()));
      CHECK(reader.readexactly(1) == burst.substr(0, 1));
      asyncio::sleep_ms(10);
      if (uring && multishot_receives() > armed) {
        CHECK(asyncio::detail::uring_buffers_lent(loop) > 0);
      }
      reader.close();
      CHECK(asyncio::detail::uring_buffers_lent(loop) == 0);
      close(fds[1]);
    }
    auto [a, b] = socket_streams();
    auto writer = asyncio::create_task([&b = b, &large] {
      b.write(large);
      b.drain();
    });
    last = a.readexactly(large.size());
    asyncio::await(writer);
  });
  CHECK(last == large);
}

TEST_CASE("bytes received but unread when the loop is replaced are read in the next loop") {
  const ReceivePool pool;
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  asyncio::Stream reader = asyncio::open_fd(fds[0]);
  const std::string burst = pattern(10'000, 9);
  REQUIRE(send(fds[1], burst.data(), burst.size(), 0) == static_cast<ssize_t>(burst.size()));
  std::string got;
  asyncio::run([&] {
    got = reader.readexactly(1);
    asyncio::sleep_ms(10);  // the rest arrives into the loop's buffers
  });
  asyncio::new_event_loop();
  asyncio::run([&] { got += reader.readexactly(burst.size() - 1); });
  CHECK(got == burst);
  reader.close();
  close(fds[1]);
}
