// Stream (docs/semantics.md#streams): buffered reads and queued writes over any StreamDevice. Portable: the
// device does the I/O, this file only keeps the buffers and decides when to wait.
#include "asyncio/stream.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "asyncio/funcs.hpp"
#include "asyncio/loop.hpp"

namespace asyncio {
namespace {

// The input buffer's first size, grown as a line needs: a page on Linux; a port with little
// RAM sets a smaller one (hw/ uses 256 B, a UART's burst).
#ifndef ASYNCIO_STREAM_READ_CHUNK
#define ASYNCIO_STREAM_READ_CHUNK 4096
#endif
constexpr std::size_t kReadChunk = ASYNCIO_STREAM_READ_CHUNK;
// CPython's StreamReader limit for readline().
constexpr std::size_t kDefaultLineLimit = 64 * 1024;

std::span<const std::byte> as_bytes(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

}  // namespace

IncompleteReadError::IncompleteReadError(std::string partial, std::size_t expected)
    : std::runtime_error("readexactly: stream ended after " + std::to_string(partial.size()) +
                         " of " + std::to_string(expected) + " bytes"),
      partial_(std::move(partial)),
      expected_(expected) {}

namespace detail {

/// What every handle of one Stream shares. Input is the window [begin, end) of `input`;
/// output is `queued` from `queued_offset` on, then `borrowed` (a write with copy = false).
class StreamState {
 public:
  explicit StreamState(std::unique_ptr<StreamDevice> device) : device_(std::move(device)) {}
  ~StreamState() {
    if (!closed_) device_->close();
  }
  StreamState(const StreamState&) = delete;
  StreamState& operator=(const StreamState&) = delete;

  StreamDevice& device() { return *device_; }
  bool closed() const { return closed_; }
  void check_open(const char* operation) const {
    if (closed_) throw OSError(EBADF, std::string(operation) + ": stream is closed");
  }

  // ---- input ----
  std::size_t buffered() const { return end_ - begin_; }
  const std::byte* buffered_data() const { return input_.data() + begin_; }
  void consume(std::size_t n) {
    consumed_ += n;
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  std::string take(std::size_t n) {
    std::string out(reinterpret_cast<const char*>(buffered_data()), n);
    consume(n);
    return out;
  }
  /// Every read passes exactly one scheduling point before it takes anything, as MicroPython's
  /// reads wait on the poller first (docs/semantics.md#streams). With nothing buffered, one
  /// attempt fills the buffer: if the device has nothing, the wait for it is the scheduling
  /// point; otherwise the task yields once, with what arrived kept in the buffer, so a
  /// cancellation there loses nothing. Either way it resumes as an I/O-woken task.
  void scheduling_point(bool wants_data) {
    if (wants_data && buffered() == 0 && !receive()) {
      wait(POLL_RD, "read");
      return;
    }
    detail::scheduler_of(get_event_loop()).yield_now(true);
  }
  /// One non-blocking read from the device into the buffer: false if it had nothing yet
  /// (true at the end of the stream, which the next read sees again).
  bool receive() {
    make_room();
    const std::ptrdiff_t n =
        device_->read_some(std::span<std::byte>(input_.data() + end_, input_.size() - end_));
    if (n == StreamDevice::kWouldBlock) return false;
    if (n > 0) {
      end_ += static_cast<std::size_t>(n);
      arrived_ += static_cast<std::uint64_t>(n);
    }
    return true;
  }
  /// Reads more from the device into the buffer, waiting if it has nothing: false at the end
  /// of the stream. Buffered bytes are kept, so a cancelled wait loses nothing. Another task
  /// reading the same stream may fill (or drain) the buffer while this one waits: that counts
  /// as progress, and room is made again before every read, so the device never sees an empty
  /// span (whose 0 would pass for the end of the stream).
  bool fill() {
    for (;;) {
      const std::uint64_t arrived_before = arrived_;
      if (receive()) return arrived_ != arrived_before;
      wait(POLL_RD, "read");
      if (arrived_ != arrived_before) return true;
    }
  }
  /// read(n): up to `wanted` bytes in a string that grows with what arrives (never `wanted`
  /// allocated up front), starting with what is buffered; it waits only when it has nothing,
  /// and holds no buffer while waiting.
  std::string read_arriving(std::size_t wanted) {
    // Only a full buffer may have more behind it on the device: a short read was all there was.
    const bool buffer_full = end_ == input_.size();
    std::string out = take(std::min(wanted, buffered()));
    std::size_t got = out.size();
    if (got == wanted || (got > 0 && !buffer_full)) return out;
    for (;;) {
      if (got == out.size()) out.resize(std::min(wanted, std::max(kReadChunk, got * 2)));
      const std::ptrdiff_t n = device_->read_some(
          std::as_writable_bytes(std::span<char>(out.data() + got, out.size() - got)));
      if (n > 0) {
        got += static_cast<std::size_t>(n);
        // A short read is all there is (one read, as before); a full one may have more behind.
        if (got < out.size() || got == wanted) break;
        continue;
      }
      if (n == 0 || got > 0) break;  // the end of the stream, or all there is for now
      out = std::string();
      wait(POLL_RD, "read");
      // Another reader of this stream may have buffered what arrived meanwhile.
      if (buffered() > 0) return take(std::min(wanted, buffered()));
    }
    out.resize(got);
    return out;
  }
  /// Reads straight into `buf` (nothing buffered): the count, 0 at the end of the stream.
  std::size_t read_direct(std::span<std::byte> buf) {
    for (;;) {
      const std::ptrdiff_t n = device_->read_some(buf);
      if (n >= 0) return static_cast<std::size_t>(n);
      wait(POLL_RD, "read");
      // Another reader buffered what arrived meanwhile: those bytes come first.
      if (buffered() > 0) return take_into(buf);
    }
  }
  /// Copies up to buf.size() buffered bytes into `buf` and consumes them; returns the count.
  std::size_t take_into(std::span<std::byte> buf) {
    const std::size_t n = std::min(buf.size(), buffered());
    std::memcpy(buf.data(), buffered_data(), n);
    consume(n);
    return n;
  }
  /// Counts bytes taken out of the buffer: a reader that scanned part of the window knows
  /// the window moved under it.
  std::uint64_t consumed() const { return consumed_; }

  // ---- output ----
  bool output_pending() const { return queued_offset_ < queued_.size() || !borrowed_.empty(); }
  std::size_t pending_output() const { return queued_.size() - queued_offset_ + borrowed_.size(); }
  void write(std::span<const std::byte> buf, bool copy) {
    check_open("write");
    if (!borrowed_.empty()) {
      throw RuntimeError(
          "write: the buffer of an earlier write(..., {.copy = false}) is not drained yet; "
          "call drain() before writing again");
    }
    if (!output_pending()) buf = buf.subspan(write_now(buf));
    if (buf.empty()) return;
    if (copy) {
      queued_.append(reinterpret_cast<const char*>(buf.data()), buf.size());
    } else {
      borrowed_ = buf;
    }
  }
  void drain() {
    check_open("drain");
    if (!output_pending()) {
      // MicroPython's drain() always yields. The seed's drain() waited on the poller for a
      // writable stream, so in fast-I/O mode it resumed as an I/O task; so does this one:
      // a reply already written does not put its task behind every pending task.
      detail::scheduler_of(get_event_loop()).yield_now(true);
      return;
    }
    while (queued_offset_ < queued_.size()) {
      queued_offset_ += write_or_wait(as_bytes(queued_).subspan(queued_offset_));
    }
    queued_.clear();  // keeps its capacity: steady-state writes allocate nothing
    queued_offset_ = 0;
    while (!borrowed_.empty()) borrowed_ = borrowed_.subspan(write_or_wait(borrowed_));
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    queued_.clear();
    queued_offset_ = 0;
    borrowed_ = {};
    begin_ = end_ = 0;
    device_->abort_waits();
    device_->close();
  }

  std::size_t limit = kDefaultLineLimit;

 private:
  /// Writes what the device takes now without waiting; returns the count.
  std::size_t write_now(std::span<const std::byte> buf) {
    std::size_t done = 0;
    while (done < buf.size()) {
      const std::ptrdiff_t n = device_->write_some(buf.subspan(done));
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    return done;
  }
  /// Writes what the device takes, or waits until it can take more and returns 0. It never
  /// writes after a wait: another task may have appended to `queued_` meanwhile (moving its
  /// bytes), so the caller takes a fresh view of the output first.
  std::size_t write_or_wait(std::span<const std::byte> buf) {
    const std::ptrdiff_t n = device_->write_some(buf);
    if (n > 0) return static_cast<std::size_t>(n);
    wait(POLL_WR, "drain");
    return 0;
  }
  /// The device's wait, with a clear error when close() ended it.
  void wait(unsigned events, const char* operation) {
    try {
      device_->wait(events);
    } catch (const OSError&) {
      if (closed_) throw OSError(EBADF, std::string(operation) + ": stream closed while waiting");
      throw;
    }
    check_open(operation);
  }
  /// Space after `end_`: moves the window to the front, or grows the buffer when it is full.
  void make_room() {
    if (end_ < input_.size()) return;
    if (begin_ > 0) {
      std::memmove(input_.data(), input_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    } else {
      input_.resize(std::max(kReadChunk, input_.size() * 2));
    }
  }

  std::unique_ptr<StreamDevice> device_;
  bool closed_ = false;
  std::vector<std::byte> input_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::uint64_t arrived_ = 0;   // bytes ever read into the buffer
  std::uint64_t consumed_ = 0;  // bytes ever taken out of it
  std::string queued_;
  std::size_t queued_offset_ = 0;
  std::span<const std::byte> borrowed_;
};

}  // namespace detail

void PollableDevice::wait(unsigned events) {
  // Polled through a guard that reports an error once abort_waits() was called: the device's
  // own poll() may never answer again after close (a closed UART, a user's driver).
  class Guard final : public Pollable {
   public:
    explicit Guard(PollableDevice& device) : device_(device) {}
    unsigned poll(unsigned wanted) override {
      return device_.aborted_ ? POLL_ERR : device_.poll(wanted);
    }

   private:
    PollableDevice& device_;
  };
  if (aborted_) throw OSError(EBADF, "wait: the device is closed");
  Guard guard(*this);
  wait_pollable(guard, events);
  if (aborted_) throw OSError(EBADF, "wait: the device was closed while waiting");
}

Stream::Stream(std::unique_ptr<StreamDevice> device) {
  if (!device) throw ValueError("Stream: null device");
  state_ = std::make_shared<detail::StreamState>(std::move(device));
}

detail::StreamState& Stream::state() const {
  if (!state_) throw RuntimeError("Stream: this stream has no device (default-constructed)");
  return *state_;
}

// Every call that may suspend holds its own reference to the state, so that another task
// dropping the last other handle meanwhile cannot free it under the waiting task.

std::string Stream::read(std::ptrdiff_t n) {
  const auto keep = state_;
  detail::StreamState& s = state();
  s.check_open("read");
  s.scheduling_point(n != 0);
  if (n == 0) return {};
  if (n < 0) {
    while (s.fill()) {
    }
    return s.take(s.buffered());
  }
  return s.read_arriving(static_cast<std::size_t>(n));
}

std::size_t Stream::readinto(std::span<std::byte> buf) {
  const auto keep = state_;
  detail::StreamState& s = state();
  s.check_open("readinto");
  s.scheduling_point(!buf.empty());
  if (buf.empty()) return 0;
  if (s.buffered() == 0) return s.read_direct(buf);
  return s.take_into(buf);
}

std::size_t Stream::readinto(std::span<char> buf) { return readinto(std::as_writable_bytes(buf)); }

std::string Stream::readexactly(std::size_t n) {
  const auto keep = state_;
  detail::StreamState& s = state();
  s.check_open("readexactly");
  s.scheduling_point(n != 0);
  while (s.buffered() < n) {
    if (!s.fill()) {
      const std::size_t got = s.buffered();
      throw IncompleteReadError(s.take(got), n);
    }
  }
  return s.take(n);
}

std::string Stream::readline() {
  const auto keep = state_;
  detail::StreamState& s = state();
  s.check_open("readline");
  s.scheduling_point(true);
  std::uint64_t seen_consumed = s.consumed();
  std::size_t scanned = 0;  // bytes of the window already searched for "\n"
  for (;;) {
    // Another reader took bytes meanwhile: the window moved, search it again.
    if (const std::uint64_t consumed = s.consumed(); consumed != seen_consumed) {
      seen_consumed = consumed;
      scanned = 0;
    }
    const auto* data = reinterpret_cast<const char*>(s.buffered_data());
    // memchr must not see the null data() of a buffer never filled, even with a 0 length.
    const void* newline =
        s.buffered() > scanned ? std::memchr(data + scanned, '\n', s.buffered() - scanned) : nullptr;
    if (newline) {
      const auto length = static_cast<std::size_t>(static_cast<const char*>(newline) - data) + 1;
      if (length > s.limit) break;
      return s.take(length);
    }
    scanned = s.buffered();
    if (scanned >= s.limit) break;
    if (!s.fill()) return s.take(s.buffered());
  }
  throw ValueError("readline: line longer than the stream's limit of " + std::to_string(s.limit) +
                   " bytes (the data stays in the stream; read() it or raise set_limit())");
}

void Stream::write(std::string_view buf, WriteOptions options) { write(as_bytes(buf), options); }

void Stream::write(std::span<const std::byte> buf, WriteOptions options) {
  state().write(buf, options.copy);
}

void Stream::drain() {
  const auto keep = state_;
  state().drain();
}

std::size_t Stream::pending_output() const { return state().pending_output(); }

void Stream::write_eof() {
  const auto keep = state_;
  detail::StreamState& s = state();
  s.drain();
  s.device().write_eof();
}

void Stream::close() { state().close(); }

void Stream::wait_closed() {
  const auto keep = state_;
  state();
  sleep_ms(0);
}

bool Stream::is_closed() const { return state().closed(); }

std::size_t Stream::limit() const { return state().limit; }

void Stream::set_limit(std::size_t bytes) {
  if (bytes == 0) throw ValueError("Stream::set_limit: the limit must be at least 1 byte");
  state().limit = bytes;
}

StreamDevice& Stream::device() const { return state().device(); }

}  // namespace asyncio
