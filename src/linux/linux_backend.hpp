// What the two Linux backends (epoll, io_uring) share: waiting tasks per file descriptor.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "asyncio/detail/port.hpp"
#include "asyncio/detail/task_record.hpp"
#include "monitor.hpp"

namespace asyncio::detail {

/// The tasks waiting on one descriptor: at most one per direction, as MicroPython's IOQueue.
struct FdWaiters {
  TaskRecord* reader = nullptr;
  TaskRecord* writer = nullptr;
  std::uint64_t reader_token = 0;  // the backend's handle for each pending wait
  std::uint64_t writer_token = 0;
  bool registered = false;         // epoll: the descriptor is in the interest list
};

class StreamIo;

/// Bytes a multishot receive put into one of the backend's provided buffers, not yet read.
struct HeldChunk {
  const std::byte* data;
  std::uint32_t begin;  // the unread bytes are data[begin, end)
  std::uint32_t end;
  std::uint16_t id;     // the buffer's id in the backend's ring, to give it back
};

/// One receive or send that the backend performs itself (StreamIo), with its buffer. Owned by
/// the device that started it, or by the backend once that device is closed while the kernel
/// may still use the buffer.
///
/// A receive runs in one of two ways. One at a time into `buffer`, the op's own (the default).
/// Or, with set_receive_pool(true) on io_uring 6.0+, multishot: one request stays armed and
/// the kernel picks a buffer from the backend's shared pool only when data arrives, so an idle
/// connection holds no buffer; what arrived waits in `held`. Bytes in `held` always precede
/// those in `buffer`.
struct StreamOp {
  enum class Kind : unsigned char { kReceive, kSend };
  /// The size of a receive's own buffer.
  static constexpr std::size_t kOwnReceiveSize = 16 * 1024;
  explicit StreamOp(Kind k) : kind(k) {}
  /// Unread bytes in `held` or `buffer`.
  bool has_input() const { return held_head < held.size() || begin < end; }

  std::unique_ptr<std::byte[]> buffer;
  std::size_t capacity = 0;
  std::size_t begin = 0;  // receive: the bytes not yet read are [begin, end); send: not yet sent
  std::size_t end = 0;
  std::vector<HeldChunk> held;  // multishot: received and unread, oldest at held_head
  std::size_t held_head = 0;
  std::size_t held_bytes = 0;
  int fd = -1;
  int error = 0;          // errno of a failed operation, until the device reports it
  Kind kind;
  bool eof = false;       // a receive met the end of the stream
  bool in_flight = false;
  bool multishot = false;  // the receive in flight is a multishot one
  bool stopping = false;   // its cancellation is submitted (back-pressure or release)
  bool orphaned = false;  // the device is gone: the backend frees this at completion
  TaskRecord* waiter = nullptr;
  StreamIo* owner = nullptr;  // the backend, while the op is in flight or holds its buffers
  StreamOp* previous = nullptr;  // the owner's list of those operations
  StreamOp* next = nullptr;
};

/// Stream I/O done by the backend (io_uring's RECV and SEND) instead of readiness plus a
/// system call. A device asks LinuxBackend::stream_io() for it; null: use readiness.
class StreamIo {
 public:
  /// Starts receiving into op.buffer[op.end, op.capacity) from `fd`, or sending
  /// op.buffer[op.begin, op.end) to it; the operation completes in the background.
  virtual void start(StreamOp& op, int fd) = 0;
  /// Suspends the current task until `op` completes or the wait is aborted; a cancelled task
  /// leaves the operation running (what it receives stays in op.buffer). Returns the task's
  /// io_error (0 or abort()'s errno).
  virtual int wait(StreamOp& op) = 0;
  /// Ends the wait on `op`, if any, with `error`.
  virtual void abort(StreamOp& op, int error) = 0;
  /// The oldest of op.held has been read to its end: its buffer goes back to the pool.
  virtual void give_back(StreamOp& op) = 0;
  /// Handles completions already posted, without blocking.
  virtual void collect() = 0;
  /// The device closes with `op` in flight or holding buffers: a receive is cancelled, a send
  /// finishes, held buffers go back unread; either way the backend frees `op`. Submits at
  /// once, so that the kernel holds the socket before its descriptor is closed (and possibly
  /// reused).
  virtual void release(StreamOp* op) = 0;

 protected:
  ~StreamIo() = default;
};

class AcceptIo;

/// A server's multishot accept on one listening socket (io_uring). The server and, while the
/// request is in the kernel, the backend share it: a closed server's last completions may come
/// after the server is gone.
struct AcceptOp {
  std::deque<int> accepted;  // descriptors accepted and not yet taken by the server
  int fd = -1;               // the listening socket
  int error = 0;             // errno that ended the request, until the server takes it
  bool armed = false;        // a multishot accept is in the kernel
  bool stopping = false;     // its cancellation is submitted (queue full, or released)
  bool released = false;     // the server is closed: the backend closes what still arrives
  TaskRecord* waiter = nullptr;
  AcceptIo* owner = nullptr;             // the backend running it, while armed
  std::shared_ptr<AcceptOp> keep_alive;  // set while armed: the kernel holds its address
  AcceptOp* previous = nullptr;          // the owner's list of armed requests
  AcceptOp* next = nullptr;
};

/// Accepting connections with one long-lived request (io_uring's multishot accept) instead of
/// readiness plus accept4(). A server asks LinuxBackend::accept_io() for it; null: readiness.
class AcceptIo {
 public:
  /// Arms a multishot accept on `op->fd`; each connection is appended to op->accepted as a
  /// non-blocking, close-on-exec descriptor. Beyond a bound the backend stops the request
  /// until the server has taken the queue (back-pressure); op->armed tells.
  virtual void start(const std::shared_ptr<AcceptOp>& op) = 0;
  /// Suspends the current task until `op` has news (a connection, an error, the end of the
  /// request). Returns the task's io_error (0, or ECANCELED after release()).
  virtual int wait(AcceptOp& op) = 0;
  /// The server closes: cancels the request now (the listening socket stops accepting at
  /// once) and closes every descriptor it still produces. The caller closes op->accepted.
  virtual void release(AcceptOp& op) = 0;

 protected:
  ~AcceptIo() = default;
};

class LinuxBackend : public IoBackend, public DescriptorWaits {
 public:
  DescriptorWaits* descriptor_waits() override { return this; }
  /// Native stream I/O, where the backend has it (io_uring); null otherwise.
  virtual StreamIo* stream_io() { return nullptr; }
  /// Multishot accept, where the backend and the kernel have it (io_uring, 5.19+); null
  /// otherwise.
  virtual AcceptIo* accept_io() { return nullptr; }
  void start_wait(int fd, unsigned events, TaskRecord* task) override;
  void cancel_wait(int fd, unsigned events, TaskRecord* task) override;
  /// Their wait_io throws OSError(error).
  void abort(int fd, int error) override;
  bool peek_descriptors() final {
    check_process();
    return peek();
  }
  void wait(Micros deadline) final {
    check_process();
    block(deadline);
  }
  /// A clock_nanosleep to an absolute time; neither I/O nor the eventfd ends it.
  void sleep_without_io(Micros deadline, bool timer_due) override;
  /// This thread's timer slack (prctl PR_SET_TIMERSLACK); 0 restores the value it had before.
  void set_timer_slack(Micros us) override;
  bool set_stall_threshold(Micros us) override {
    monitor_.set_stall_threshold(us);
    return true;
  }

 protected:
  /// Records the process the loop belongs to (see check_process).
  explicit LinuxBackend(Loop& loop);
  /// RuntimeError in a child forked after the loop was created: the kernel objects (epoll set,
  /// ring, eventfd) are shared with the parent, and using them would steal its events or
  /// abort (docs/semantics.md#threads-signals-fork). Cheap: one relaxed load.
  void check_process() const {
    if (fork_generation.load(std::memory_order_relaxed) != generation_) [[unlikely]] {
      throw_forked();
    }
  }
  /// Bumped in every child process by a pthread_atfork handler.
  static std::atomic<unsigned> fork_generation;
  FdWaiters& waiters(int fd) {
    if (static_cast<std::size_t>(fd) >= fds_.size()) fds_.resize(static_cast<std::size_t>(fd) + 1);
    return fds_[static_cast<std::size_t>(fd)];
  }
  /// Wakes the waiters on `fd` in `directions` (kPollRead|kPollWrite) with `ready` (kPoll*
  /// bits); a non-zero `error` (an errno) makes their wait_io throw OSError.
  void deliver(int fd, unsigned directions, unsigned ready, int error = 0);

  /// One poll without blocking: true if it delivered anything (I/O or a wake()).
  virtual bool peek() = 0;
  /// The backend's blocking wait (IoBackend::wait's contract), without busy polling.
  virtual void block(Micros deadline) = 0;

  /// Backend hooks: begin/withdraw the kernel side of a wait. `token` identifies it.
  virtual std::uint64_t arm(int fd, FdWaiters& entry, unsigned events) = 0;
  virtual void disarm(int fd, FdWaiters& entry, unsigned events, std::uint64_t token) = 0;

  Loop& loop_;
  std::vector<FdWaiters> fds_;
  long saved_timer_slack_ns_ = -1;  // -1: the slack is the thread's own
  Micros timer_slack_us_ = 0;       // what set_timer_slack set

 private:
  [[noreturn, gnu::cold]] static void throw_forked();
  unsigned generation_;

  LoopMonitor monitor_{loop_};  // stall detector, task dump on a signal
};

/// The eventfd that interrupts a blocked wait (ThreadSafeFlag, other threads).
class WakeFd {
 public:
  WakeFd();
  ~WakeFd();
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;
  int fd() const { return fd_; }
  /// Async-signal-safe: one write(2).
  void signal() const noexcept;

 private:
  int fd_;
};

/// Tests only: a non-zero errno makes io_uring's set-up fail with it (the fallback's seam).
extern std::atomic<int> uring_test_init_error;
/// Tests only: true makes io_uring backends created afterwards go without multishot accept.
extern std::atomic<bool> uring_test_no_multishot_accept;
/// set_receive_pool(): io_uring backends created afterwards receive into a shared pool.
extern std::atomic<bool> receive_pool;
/// Tests only: non-zero sets the size of the provided buffer pool of backends created
/// afterwards (a power of two).
extern std::atomic<unsigned> uring_test_receive_buffers;
/// Tests only: multishot receives armed; receives that found the pool empty and used their
/// own buffer; multishot receives stopped because their reader fell behind (back-pressure).
extern std::atomic<unsigned long> uring_multishot_receives;
extern std::atomic<unsigned long> uring_receive_fallbacks;
extern std::atomic<unsigned long> uring_receive_stops;
/// Tests only: buffers of `loop`'s provided pool that streams hold (0 when it has none).
std::size_t uring_buffers_lent(Loop& loop);

IoBackend* make_epoll_backend(Loop& loop);
IoBackend* make_uring_backend(Loop& loop);

}  // namespace asyncio::detail
