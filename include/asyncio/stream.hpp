// Streams (docs/semantics.md#streams): MicroPython's Stream (StreamReader = StreamWriter) over any byte device
// that can be read and written without blocking: sockets, pipes and terminals on Linux
// (asyncio/net.hpp), a UART on hw, or a user's Pollable device.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "asyncio/errors.hpp"
#include "asyncio/pollable.hpp"

namespace asyncio {

/// readexactly() met the end of the stream first. partial() holds what was read (consumed).
class IncompleteReadError : public std::runtime_error {
 public:
  /// `partial`: the bytes read before the end; `expected`: how many were asked for.
  IncompleteReadError(std::string partial, std::size_t expected);
  /// The bytes read before the stream ended.
  const std::string& partial() const noexcept { return partial_; }
  /// How many bytes readexactly() asked for.
  std::size_t expected() const noexcept { return expected_; }

 private:
  std::string partial_;
  std::size_t expected_;
};

/// What a Stream reads and writes. Every call is non-blocking except wait().
class StreamDevice {
 public:
  /// What read_some()/write_some() return when the device is not ready.
  static constexpr std::ptrdiff_t kWouldBlock = -1;

  virtual ~StreamDevice() = default;
  /// Reads up to buf.size() bytes: the count, 0 at the end of the stream, or kWouldBlock.
  /// Throws OSError on a device error (a peer reset…).
  virtual std::ptrdiff_t read_some(std::span<std::byte> buf) = 0;
  /// Writes up to buf.size() bytes: the count or kWouldBlock. Throws OSError (EPIPE when the
  /// peer is gone: never a SIGPIPE).
  virtual std::ptrdiff_t write_some(std::span<const std::byte> buf) = 0;
  /// Suspends the calling task until the device is ready for `events` (POLL_RD or POLL_WR).
  virtual void wait(unsigned events) = 0;
  /// Ends the write side (a socket's shutdown(SHUT_WR)): the peer reads end of stream.
  /// Devices without one raise RuntimeError.
  virtual void write_eof() { throw RuntimeError("write_eof: this device has no half-close"); }
  /// Releases the device. A task blocked in wait() gets OSError(EBADF) where the device can
  /// tell it; later calls raise OSError(EBADF) (the Stream checks).
  virtual void close() = 0;
  /// Ends every wait() in progress with OSError(EBADF): Stream::close() calls it before
  /// close(), so that a task blocked on the stream never waits on a closed device forever.
  /// Default: nothing (FdDevice::close() wakes its waiters itself).
  virtual void abort_waits() {}
};

/// A device the scheduler polls (docs/semantics.md#pollables) that is also a StreamDevice: implement poll(),
/// read_some() and write_some(); wait() polls it with the rest of the I/O at every switch.
/// Once the Stream over it is closed, a wait() in progress ends with OSError(EBADF) at the
/// next switch, whatever poll() says.
class PollableDevice : public StreamDevice, public Pollable {
 public:
  void wait(unsigned events) override;
  void close() override {}
  void abort_waits() override { aborted_ = true; }

 private:
  bool aborted_ = false;
};

/// Options of Stream::write(). `{.copy = false}` is asyncio_alt's write(buf, copy=False).
struct WriteOptions {
  /// false: the caller's buffer is kept (not copied) until drain() has written it; the caller
  /// must keep it alive and unchanged until then. A second write before drain() raises.
  bool copy = true;
};

namespace detail {
class StreamState;
}

/// MicroPython's Stream: one object is both the reader and the writer. A Stream is a handle
/// (copies share one device and its buffers, as Python references do); the device closes
/// when close() is called or the last handle goes away.
///
/// Every read passes exactly one scheduling point, as MicroPython's do: the wait for data when
/// nothing has arrived, otherwise one yield (in fast-I/O mode, the reader resumes ahead of the
/// other ready tasks as an I/O-woken task); then it returns what is there. A task cancelled
/// in a read or drain() loses nothing: buffered input stays for the next reader, unsent output
/// for the next drain().
class Stream {
 public:
  /// Takes ownership of `device`. Throws ValueError on a null device.
  explicit Stream(std::unique_ptr<StreamDevice> device);
  /// A Stream that owns nothing: calling anything but the assignment raises RuntimeError.
  Stream() = default;

  /// Up to n bytes; at least one unless the stream has ended (then ""). n < 0 reads to the end.
  std::string read(std::ptrdiff_t n = -1);
  /// Reads into buf: at least one byte unless buf is empty or the stream has ended (then 0).
  std::size_t readinto(std::span<std::byte> buf);
  /// readinto() for a char buffer.
  std::size_t readinto(std::span<char> buf);
  /// Exactly n bytes; IncompleteReadError if the stream ends first.
  std::string readexactly(std::size_t n);
  /// One line including its "\n"; at the end of the stream what remains (maybe ""). A line
  /// longer than limit() raises ValueError and leaves the data in the stream.
  std::string readline();

  /// Queues buf for drain(). With copy (the default) it is written now as far as the device
  /// takes it and the rest is copied; with {.copy = false} the rest stays in the caller's
  /// buffer until drain() — no copy, no allocation.
  void write(std::string_view buf, WriteOptions options = {});
  /// write() for bytes.
  void write(std::span<const std::byte> buf, WriteOptions options = {});
  /// Writes everything queued. With nothing queued it still yields (MicroPython does).
  void drain();
  /// Bytes queued and not yet written.
  std::size_t pending_output() const;

  /// Drains what is queued, then ends the write side (StreamDevice::write_eof): the peer
  /// reads end of stream while this side can still read.
  void write_eof();
  /// Closes the device now; a task blocked on it gets OSError(EBADF). Unwritten output is
  /// dropped: drain() first. Closing twice is allowed.
  void close();
  /// Returns once the stream is closed (it is as soon as close() returns); it yields once.
  void wait_closed();
  /// True once close() has been called.
  bool is_closed() const;

  /// The longest line readline() accepts (default 64 KiB, as CPython).
  std::size_t limit() const;
  /// Sets limit().
  void set_limit(std::size_t bytes);

  /// The device, for device-specific calls (e.g. the fd of a socket).
  StreamDevice& device() const;

  /// False for a default-constructed or moved-from Stream.
  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  detail::StreamState& state() const;
  std::shared_ptr<detail::StreamState> state_;
};

using StreamReader = Stream;
using StreamWriter = Stream;

}  // namespace asyncio
