// The io_uring backend.
//
// The per-switch poll (docs/semantics.md#fast-io) costs no system call here: it compares the completion ring's
// head and tail in shared memory, and enters the kernel only to submit new waits.
//
// The ring is set up with DEFER_TASKRUN | SINGLE_ISSUER | TASKRUN_FLAG (a loop and its ring
// belong to one thread). By default the kernel interrupts the task to post a completion
// (TIF_NOTIFY_SIGNAL; COOP_TASKRUN only drops the IPI): that also cuts short a low-power
// sleep, one extra wake-up per 20 ms slot. DEFER_TASKRUN leaves the work until we enter the
// ring. Deferred work alone would stay invisible to the peek for up to a slot; the
// TASKRUN flag closes that gap: the kernel raises IORING_SQ_TASKRUN in the shared ring as soon
// as work is pending, the peek sees it, and only then enters the ring to post it.
//
// Submitting a wait at the very switch that queued it cost one io_uring_enter per wait: with
// 100 echo connections, one system call per request on top of recv and send. New waits are
// batched instead: a switch submits them once kSubmitIntervalUs has passed since the last
// submission (a clock read, only while some are queued), together with posting any deferred
// completions, and the loop always submits before it blocks. The added latency is bounded by
// the interval, as on epoll: a poll submitted on a descriptor that became ready meanwhile
// completes at once, so readiness is only seen that much later while tasks keep switching.
// Sends wait in a batch only while I/O-woken tasks run: the loop submits them before any other
// task, which may run for long.
//
// Sockets read and write through the ring itself (StreamIo): a stream's receive and send are
// IORING_OP_RECV and IORING_OP_SEND into buffers the device owns, submitted in the same
// batches, rather than a readiness wait followed by recv() and send() system calls. At 100
// echo connections that turns three system calls per request into a share of one batch.
//
// With set_receive_pool(true), where the kernel has multishot receive (6.0+), a socket's
// receive is one long-lived request into a pool of buffers the loop provides to the kernel (a
// provided buffer ring): the kernel takes a buffer only when data arrives, so an idle
// connection holds none. It is not the default: in bench/echo its requests/s are within 5%
// of a receive armed after each read at 100 connections (either side) and up to 8% behind at
// 1,000, and the pool's 4 MiB are committed as the kernel cycles through its buffers; it pays
// from about a thousand idle connections (3 KB saved each). What arrives
// stays in its pool buffer until read (a cancelled reader loses nothing). A reader that falls
// kHeldLimit bytes behind stops the request until it has read them (back-pressure). A
// receive that finds the pool empty runs once into the connection's own buffer, as everywhere
// without the pool.
//
// Servers accept through one multishot accept per listening socket (AcceptIo, 5.19+): each
// connection is a completion carrying a ready descriptor, with no readiness wait and no
// accept4() per connection. The kernel lacks it: servers wait for readiness, as on epoll.
#include <liburing.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "asyncio/errors.hpp"
#include "asyncio/loop.hpp"
#include "linux_backend.hpp"
#include "log.hpp"

namespace asyncio::detail {

std::atomic<int> uring_test_init_error{0};
std::atomic<bool> uring_test_no_multishot_accept{false};
std::atomic<unsigned> uring_test_receive_buffers{0};
std::atomic<unsigned long> uring_multishot_receives{0};
std::atomic<unsigned long> uring_receive_fallbacks{0};
std::atomic<unsigned long> uring_receive_stops{0};

namespace {

constexpr unsigned kRingEntries = 256;
/// New waits are submitted in batches, at most this long after they were queued while tasks
/// keep switching (and always before the loop blocks). See the file comment.
constexpr Micros kSubmitIntervalUs = 50;
constexpr std::uint64_t kWakeTag = ~std::uint64_t{0};
constexpr std::uint64_t kIgnoreTag = ~std::uint64_t{0} - 1;  // POLL_REMOVE's own completion
/// Connections a multishot accept queues for a server that has not taken them before the
/// request is stopped; the rest wait in the listen backlog. A soft bound: completions already
/// posted when it is reached still join the queue.
constexpr std::size_t kAcceptQueueLimit = 128;
/// The provided buffer pool: one receive completion fills at most one buffer. 1,024 buffers
/// let that many connections each hold one unread arrival; the memory is committed only as
/// the kernel writes to it.
constexpr unsigned kPoolBuffers = 1024;  // a power of two
constexpr unsigned kPoolBufferSize = 4096;
constexpr unsigned short kPoolGroup = 0;
/// Unread bytes at which a connection's multishot receive is stopped until they are read.
constexpr std::size_t kHeldLimit = 64 * 1024;

/// A wait's user_data: descriptor, direction and a generation, so that the completion of a
/// withdrawn wait is recognised as stale even if the descriptor has a new waiter since. Its
/// lowest bit is 0; a StreamOp's user_data is its (aligned) address with that bit set, an
/// AcceptOp's with the two lowest bits set.
std::uint64_t make_token(int fd, unsigned direction, std::uint32_t generation) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(fd)) << 32) |
         (direction == kPollWrite ? 1ull << 31 : 0) | ((generation & 0x3fffffffu) << 1);
}

std::uint64_t op_tag(const StreamOp* op) { return reinterpret_cast<std::uintptr_t>(op) | 1; }
std::uint64_t op_tag(const AcceptOp* op) {
  return reinterpret_cast<std::uintptr_t>(op) | 3;
}

unsigned to_poll_bits(int mask) {
  unsigned bits = 0;
  if (mask & POLLIN) bits |= kPollRead;
  if (mask & POLLOUT) bits |= kPollWrite;
  if (mask & POLLERR) bits |= kPollError;
  if (mask & POLLHUP) bits |= kPollHangup;
  return bits;
}

/// TaskRecord::io_error while a task waits on an operation: every wake-up replaces it.
constexpr int kStillWaiting = -1;

class UringBackend final : public LinuxBackend, private StreamIo, private AcceptIo {
 public:
  explicit UringBackend(Loop& loop) : LinuxBackend(loop) {
    unsigned flags =
        IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_TASKRUN_FLAG;
    int result = io_uring_queue_init(kRingEntries, &ring_, flags);
    if (result == -EINVAL) {  // before 6.1
      flags = 0;
      result = io_uring_queue_init(kRingEntries, &ring_, flags);
    }
    if (const int injected = uring_test_init_error.load(); injected != 0 && result >= 0) {
      io_uring_queue_exit(&ring_);
      result = -injected;
    }
    if (result < 0) throw OSError(-result, "io_uring_queue_init");
    // A registered ring descriptor spares io_uring_enter the descriptor lookup (5.18+).
    const bool registered = io_uring_register_ring_fd(&ring_) == 1;
    // RECVSEND_POLL_FIRST (5.19+; a 6.1 ring has it): a receive armed after the previous one
    // emptied the socket waits for data rather than first trying a recv that fails.
    poll_first_ = flags != 0;
    multishot_accept_ = probe_multishot_accept();
    multishot_receive_ = probe_multishot_receive();
    log_message(
        LogLevel::debug,
        std::string("io_uring: setup flags ") + (flags != 0 ? "on" : "off (kernel < 6.1)") +
            " (defer_taskrun, single_issuer, taskrun_flag), registered ring fd: " +
            (registered ? "yes" : "no") + ", server accept: " +
            (multishot_accept_ ? "multishot" : "readiness + accept4 (no multishot accept)") +
            ", socket receive: " +
            (multishot_receive_ ? "multishot into a shared pool (set_receive_pool)"
                                : "one at a time into each connection's buffer"));
    arm_wake();
    submit_and_collect();
  }
  ~UringBackend() override {
    close_accepts();
    io_uring_queue_exit(&ring_);  // cancels what is in flight: no buffer is written after this
    while (StreamOp* op = in_flight_) {
      untrack(*op);
      if (op->orphaned) {
        delete op;
      } else {
        keep_held_input(*op);
      }
    }
    if (pool_) munmap(pool_, pool_bytes());
  }

  const char* name() const override { return "uring"; }
  std::size_t buffers_lent() const { return lent_; }
  StreamIo* stream_io() override { return this; }
  AcceptIo* accept_io() override { return multishot_accept_ ? this : nullptr; }

  void poll_if_ready() override {
    // Called only while needs_poll(): with nothing to submit and no task waiting on the ring,
    // no completion can matter (flags come through the loop's own stack; the eventfd's only
    // wakes a blocked wait), and leaving the ring's shared words alone keeps the switch as
    // cheap as on epoll.
    const bool work_pending = IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN;
    if (unsubmitted_ && (work_pending || port::now() - last_submit_ >= kSubmitIntervalUs)) {
      submit_and_collect();
    } else if (work_pending) {
      io_uring_get_events(&ring_);
    }
    if (io_uring_cq_ready(&ring_)) reap();
  }

  void wake() noexcept override { wake_fd_.signal(); }

  void submit_held_output() override { submit_and_collect(); }

 protected:
  void block(Micros deadline) override {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{};
    __kernel_timespec* timeout = nullptr;
    if (deadline >= 0) {
      const Micros remaining = deadline - port::now();
      if (remaining <= 0) {
        // A zero timeout still sleeps in the kernel (a context switch: one more wake-up per
        // low-power slot); a poll needs no wait at all.
        submit_and_collect();
        reap();
        return;
      }
      ts.tv_sec = remaining / 1'000'000;
      ts.tv_nsec = (remaining % 1'000'000) * 1000;
      timeout = &ts;
    }
    note_submitted();
    const int result = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout, nullptr);
    if (result < 0 && result != -ETIME && result != -EINTR && result != -EAGAIN &&
        result != -EBUSY) {
      throw OSError(-result, "io_uring_submit_and_wait_timeout");
    }
    reap();
  }

  bool peek() override {
    if (unsubmitted_ || (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN)) {
      submit_and_collect();
    }
    if (!io_uring_cq_ready(&ring_)) return false;
    reap();
    return true;
  }

 private:
  /// Suspends the running task until `op` (a StreamOp or an AcceptOp) completes, is aborted
  /// or the task is woken otherwise: the errno it ended with, 0 for none.
  template <class Op>
  int wait_on(Op& op) {
    TaskRecord* me = scheduler_of(loop_).current();
    op.waiter = me;
    ++waiters_;
    me->io_error = kStillWaiting;
    try {
      scheduler_of(loop_).suspend();
    } catch (...) {
      // Woken before the cancel arrived, the task no longer waits on `op`, which its
      // release may already have freed: only a task still waiting may touch it.
      if (me->io_error == kStillWaiting) stop_waiting(op);
      me->io_error = 0;
      throw;
    }
    if (me->io_error == kStillWaiting) {  // woken by something else: waits no longer
      stop_waiting(op);
      me->io_error = 0;
    }
    return me->io_error;
  }

  /// Puts `op` at the front of the list at `head` (in_flight_ or accepting_).
  template <class Op>
  static void link(Op& op, Op*& head) {
    op.previous = nullptr;
    op.next = head;
    if (head) head->previous = &op;
    head = &op;
  }
  template <class Op>
  static void unlink(Op& op, Op*& head) {
    if (op.previous) op.previous->next = op.next;
    if (op.next) op.next->previous = op.previous;
    if (head == &op) head = op.next;
    op.previous = op.next = nullptr;
  }

  template <class Op>
  void stop_waiting(Op& op) {
    if (!op.waiter) return;
    op.waiter = nullptr;
    --waiters_;
  }

  io_uring_sqe* next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {
      submit_and_collect();  // the submission ring is full: flush it and retry
      sqe = io_uring_get_sqe(&ring_);
    }
    if (!sqe) throw OSError(EBUSY, "io_uring: no submission queue entry available");
    // Our own flag, not io_uring_sq_ready(): that reads a kernel-written word at every switch.
    unsubmitted_ = true;
    return sqe;
  }

  void note_submitted() {
    unsubmitted_ = false;
    holds_output_ = false;
    last_submit_ = port::now();
  }

  /// Submits the queued entries and posts deferred completions: one system call.
  void submit_and_collect() {
    check_process();
    note_submitted();
    io_uring_submit_and_get_events(&ring_);
  }

  /// A multishot poll on the eventfd: every write completes it once, nothing to read back.
  void arm_wake() {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_poll_multishot(sqe, wake_fd_.fd(), POLLIN);
    io_uring_sqe_set_data64(sqe, kWakeTag);
  }

  /// Multishot accept came with 5.19, as IORING_OP_SOCKET did: the probe cannot see the flag
  /// itself, so it asks for the opcode.
  bool probe_multishot_accept() {
    return !uring_test_no_multishot_accept.load() && has_opcode(IORING_OP_SOCKET);
  }

  /// Multishot receive came with 6.0, as IORING_OP_SEND_ZC did (the same probe limit).
  bool probe_multishot_receive() {
    return receive_pool.load() && has_opcode(IORING_OP_SEND_ZC);
  }

  bool has_opcode(int opcode) {
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    if (!probe) return false;
    const bool supported = io_uring_opcode_supported(probe, opcode) != 0;
    io_uring_free_probe(probe);
    return supported;
  }

  void reap() {
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      handle(cqe->user_data, cqe->res, cqe->flags);
    }
    io_uring_cq_advance(&ring_, seen);
  }

  void handle(std::uint64_t tag, int result, unsigned flags) {
    if (tag == kIgnoreTag) return;
    if (tag == kWakeTag) {
      if (!(flags & IORING_CQE_F_MORE)) arm_wake();  // the kernel ended the multishot
      return;
    }
    if ((tag & 3) == 3) {
      return accepted(*reinterpret_cast<AcceptOp*>(tag & ~std::uint64_t{3}), result, flags);
    }
    if (tag & 1) {
      return completed(*reinterpret_cast<StreamOp*>(tag & ~std::uint64_t{1}), result, flags);
    }
    const int fd = static_cast<int>(tag >> 32);
    const unsigned direction = (tag & (1ull << 31)) ? kPollWrite : kPollRead;
    FdWaiters& entry = waiters(fd);
    const std::uint64_t current = direction == kPollRead ? entry.reader_token : entry.writer_token;
    TaskRecord* waiter = direction == kPollRead ? entry.reader : entry.writer;
    if (!waiter || current != tag) return;  // a withdrawn wait
    if (result < 0) {
      deliver(fd, direction, kPollError, -result);
    } else {
      deliver(fd, direction, to_poll_bits(result));
    }
  }

  std::uint64_t arm(int fd, FdWaiters& /*entry*/, unsigned events) override {
    const std::uint64_t token = make_token(fd, events, ++generation_);
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_poll_add(sqe, fd, events == kPollRead ? POLLIN : POLLOUT);
    io_uring_sqe_set_data64(sqe, token);
    return token;
  }

  void disarm(int /*fd*/, FdWaiters& /*entry*/, unsigned /*events*/, std::uint64_t token) override {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_poll_remove(sqe, token);
    io_uring_sqe_set_data64(sqe, kIgnoreTag);
  }

  // ---- StreamIo ----

  void start(StreamOp& op, int fd) override {
    op.fd = fd;
    op.multishot = op.kind == StreamOp::Kind::kReceive && pool_ready();
    if (op.multishot) {
      uring_multishot_receives.fetch_add(1, std::memory_order_relaxed);
      // An own buffer left from a fallback is empty here (the device starts a receive only
      // when everything is read): an idle connection keeps none.
      op.buffer.reset();
      op.capacity = 0;
    }
    submit_op(op);
    track(op);
  }

  void submit_op(StreamOp& op) {
    io_uring_sqe* sqe = next_sqe();
    if (op.kind == StreamOp::Kind::kReceive && op.multishot) {
      io_uring_prep_recv_multishot(sqe, op.fd, nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = kPoolGroup;
    } else if (op.kind == StreamOp::Kind::kReceive) {
      if (!op.buffer) {
        op.buffer = std::make_unique_for_overwrite<std::byte[]>(StreamOp::kOwnReceiveSize);
        op.capacity = StreamOp::kOwnReceiveSize;
      }
      io_uring_prep_recv(sqe, op.fd, op.buffer.get() + op.end, op.capacity - op.end, 0);
      if (poll_first_) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    } else {
      // Its bytes count as written: the loop submits it before a task that may run long.
      holds_output_ = true;
      // MSG_WAITALL: the kernel completes a partial send itself (5.19+).
      io_uring_prep_send(sqe, op.fd, op.buffer.get() + op.begin, op.end - op.begin,
                         MSG_NOSIGNAL | MSG_WAITALL);
    }
    io_uring_sqe_set_data64(sqe, op_tag(&op));
  }

  int wait(StreamOp& op) override { return wait_on(op); }

  void abort(StreamOp& op, int error) override {
    TaskRecord* task = op.waiter;
    if (!task) return;
    stop_waiting(op);
    task->io_error = error;
    scheduler_of(loop_).wake_io(task, kPollError);
  }

  void give_back(StreamOp& op) override {
    recycle(op.held[op.held_head].id);
    --lent_;
    if (++op.held_head == op.held.size()) {
      op.held.clear();
      op.held_head = 0;
      if (!op.in_flight) untrack(op);
    }
  }

  void collect() override {
    if (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN) io_uring_get_events(&ring_);
    if (io_uring_cq_ready(&ring_)) reap();
  }

  void release(StreamOp* op) override {
    abort(*op, EBADF);
    while (op->held_head < op->held.size()) {
      recycle(op->held[op->held_head++].id);
      --lent_;
    }
    op->held.clear();
    op->held_head = op->held_bytes = 0;
    if (!op->in_flight) {
      untrack(*op);
      delete op;
      return;
    }
    op->orphaned = true;
    if (op->kind == StreamOp::Kind::kReceive && !op->stopping) cancel(*op);
    submit_and_collect();
  }

  /// Asks the kernel to end `op` (a StreamOp or an AcceptOp); its last completion follows.
  template <class Op>
  void cancel(Op& op) {
    op.stopping = true;
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_cancel64(sqe, op_tag(&op), 0);
    io_uring_sqe_set_data64(sqe, kIgnoreTag);
  }

  void completed(StreamOp& op, int result, unsigned flags) {
    if (op.multishot) return received(op, result, flags);
    const bool receive = op.kind == StreamOp::Kind::kReceive;
    // The descriptor of an orphaned operation may be closed and reused: never resubmit one.
    const bool retry = (result == -EAGAIN || result == -EINTR) && !op.orphaned;
    if (retry) return submit_op(op);
    if (result > 0) {
      (receive ? op.end : op.begin) += static_cast<std::size_t>(result);
      if (!receive && op.begin < op.end && !op.orphaned) return submit_op(op);  // a short send
    } else if (result == 0 && receive) {
      op.eof = true;
    } else if (result < 0 && result != -ECANCELED) {
      op.error = -result;
    }
    settle(op, receive ? kPollRead : kPollWrite);
  }

  /// A multishot receive's completion: one buffer of the pool filled, or the request's end.
  void received(StreamOp& op, int result, unsigned flags) {
    const bool more = flags & IORING_CQE_F_MORE;
    if (result > 0) {
      const auto id = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
      if (op.orphaned) {
        recycle(id);
      } else {
        op.held.push_back({pool_buffer(id), 0, static_cast<std::uint32_t>(result), id});
        ++lent_;
        op.held_bytes += static_cast<std::size_t>(result);
        if (more && !op.stopping && op.held_bytes >= kHeldLimit) {
          uring_receive_stops.fetch_add(1, std::memory_order_relaxed);
          cancel(op);
        }
      }
    } else if (result == 0) {
      op.eof = true;
    } else if (!more && !op.orphaned && result != -ECANCELED) {
      if (result == -EAGAIN || result == -EINTR) return submit_op(op);
      if (result == -EINVAL && op.held.empty()) {
        // The kernel refuses the request after all: every receive goes one at a time.
        multishot_receive_ = false;
        log_message(LogLevel::debug, "io_uring: multishot receive refused (EINVAL); using "
                                     "one receive at a time");
      }
      if (result == -ENOBUFS || result == -EINVAL) {
        // Held bytes come first; with none, a reader may be waiting: receive once into the
        // op's own buffer rather than leave it without progress.
        if (!op.held.empty()) return settle(op, kPollRead);
        uring_receive_fallbacks.fetch_add(1, std::memory_order_relaxed);
        op.multishot = false;
        op.stopping = false;
        op.begin = op.end = 0;
        return submit_op(op);
      }
      op.error = -result;
    }
    if (!more) {
      settle(op, kPollRead);
    } else if (result > 0) {
      wake_waiter(op, kPollRead);
    }
  }

  /// `op` is no longer in flight: freed if orphaned, otherwise its waiter is woken.
  void settle(StreamOp& op, unsigned bits) {
    op.in_flight = false;
    op.multishot = false;
    op.stopping = false;
    if (op.held_head == op.held.size()) untrack(op);
    if (op.orphaned) {
      delete &op;
      return;
    }
    wake_waiter(op, bits);
  }

  void wake_waiter(StreamOp& op, unsigned bits) {
    if (TaskRecord* task = op.waiter) {
      stop_waiting(op);
      task->io_error = 0;
      scheduler_of(loop_).wake_io(task, bits);
    }
  }

  void track(StreamOp& op) {
    op.in_flight = true;
    if (op.owner) return;  // still holds buffers of the pool
    op.owner = this;
    link(op, in_flight_);
  }

  void untrack(StreamOp& op) {
    unlink(op, in_flight_);
    op.in_flight = false;
    op.multishot = false;
    op.stopping = false;
    op.owner = nullptr;
  }

  /// The loop goes while `op` holds buffers of the pool: their bytes move to its own buffer,
  /// ahead of what that buffer holds, so that a later reader still gets them.
  static void keep_held_input(StreamOp& op) {
    if (op.held_head == op.held.size()) return;
    const std::size_t own = op.end - op.begin;
    const std::size_t total = op.held_bytes + own;
    const std::size_t capacity = std::max(total, StreamOp::kOwnReceiveSize);
    auto buffer = std::make_unique_for_overwrite<std::byte[]>(capacity);
    std::size_t at = 0;
    for (std::size_t i = op.held_head; i < op.held.size(); ++i) {
      const HeldChunk& chunk = op.held[i];
      std::memcpy(buffer.get() + at, chunk.data + chunk.begin, chunk.end - chunk.begin);
      at += chunk.end - chunk.begin;
    }
    if (own > 0) std::memcpy(buffer.get() + at, op.buffer.get() + op.begin, own);
    op.buffer = std::move(buffer);
    op.capacity = capacity;
    op.begin = 0;
    op.end = total;
    op.held.clear();
    op.held_head = op.held_bytes = 0;
  }

  // ---- The provided buffer pool ----

  /// Sets the pool up at the first receive that can use it: false if multishot receive is
  /// unavailable or the kernel refuses the pool (receives then use their own buffers).
  bool pool_ready() {
    if (pool_ || !multishot_receive_) return multishot_receive_;
    const unsigned wanted = uring_test_receive_buffers.load();
    pool_size_ = wanted != 0 ? wanted : kPoolBuffers;
    void* memory = mmap(nullptr, pool_bytes(), PROT_READ | PROT_WRITE,
                        MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    int error = memory == MAP_FAILED ? errno : 0;
    if (error == 0) {
      pool_ring_ = static_cast<io_uring_buf_ring*>(memory);
      io_uring_buf_ring_init(pool_ring_);
      io_uring_buf_reg registration{};
      registration.ring_addr = reinterpret_cast<std::uintptr_t>(memory);
      registration.ring_entries = pool_size_;
      registration.bgid = kPoolGroup;
      error = -io_uring_register_buf_ring(&ring_, &registration, 0);
      if (error != 0) munmap(memory, pool_bytes());
    }
    if (error != 0) {
      multishot_receive_ = false;
      log_message(LogLevel::debug, std::string("io_uring: no provided buffer pool (") +
                                       std::strerror(error) + "); using one receive at a time");
      return false;
    }
    pool_ = static_cast<std::byte*>(memory);
    for (unsigned id = 0; id < pool_size_; ++id) {
      io_uring_buf_ring_add(pool_ring_, pool_buffer(static_cast<std::uint16_t>(id)),
                            kPoolBufferSize, static_cast<unsigned short>(id),
                            io_uring_buf_ring_mask(pool_size_), static_cast<int>(id));
    }
    io_uring_buf_ring_advance(pool_ring_, static_cast<int>(pool_size_));
    return true;
  }

  /// The ring of buffer descriptors, then the buffers, each in whole pages.
  std::size_t ring_bytes() const {
    const std::size_t bytes = pool_size_ * sizeof(io_uring_buf);
    return (bytes + 4095) & ~std::size_t{4095};
  }
  std::size_t pool_bytes() const {
    return ring_bytes() + std::size_t{pool_size_} * kPoolBufferSize;
  }
  std::byte* pool_buffer(std::uint16_t id) const {
    return pool_ + ring_bytes() + std::size_t{id} * kPoolBufferSize;
  }

  void recycle(std::uint16_t id) {
    io_uring_buf_ring_add(pool_ring_, pool_buffer(id), kPoolBufferSize, id,
                          io_uring_buf_ring_mask(pool_size_), 0);
    io_uring_buf_ring_advance(pool_ring_, 1);
  }

  // ---- AcceptIo ----

  void start(const std::shared_ptr<AcceptOp>& op) override {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_multishot_accept(sqe, op->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, op_tag(op.get()));
    op->error = 0;
    op->armed = true;
    op->stopping = false;
    op->keep_alive = op;
    op->owner = this;
    link(*op, accepting_);
  }

  int wait(AcceptOp& op) override { return wait_on(op); }

  void release(AcceptOp& op) override {
    op.released = true;
    if (TaskRecord* task = op.waiter) {
      stop_waiting(op);
      task->io_error = ECANCELED;
      scheduler_of(loop_).wake_io(task, kPollError);
    }
    if (op.armed && !op.stopping) cancel(op);
    submit_and_collect();  // the listening socket stops accepting before the server closes it
  }

  /// A loop closed with servers still accepting: their requests end here, and each connection
  /// already accepted goes to its server's queue or, for a released one, is closed (a
  /// completion left in the ring would leave its descriptor open for good).
  void close_accepts() noexcept {
    if (!accepting_) return;
    try {
      check_process();
      for (AcceptOp* op = accepting_; op; op = op->next) {
        if (!op->stopping) cancel(*op);
      }
      io_uring_submit_and_get_events(&ring_);
    } catch (...) {
      // A forked child or a full ring: the connections left go with the process.
    }
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      if ((cqe->user_data & 3) != 3 || cqe->res < 0) continue;
      auto* op = reinterpret_cast<AcceptOp*>(cqe->user_data & ~std::uint64_t{3});
      if (op->released) {
        ::close(cqe->res);
      } else {
        op->accepted.push_back(cqe->res);
      }
    }
    io_uring_cq_advance(&ring_, seen);
    while (AcceptOp* op = accepting_) {
      untrack(*op);
      op->waiter = nullptr;
      const auto last = std::move(op->keep_alive);
    }
  }

  void accepted(AcceptOp& op, int result, unsigned flags) {
    if (result >= 0) {
      if (op.released) {
        ::close(result);
      } else {
        op.accepted.push_back(result);
      }
    } else if (result != -ECANCELED && !op.released) {
      op.error = -result;
    }
    const bool ended = !(flags & IORING_CQE_F_MORE);
    if (!ended && !op.stopping && op.accepted.size() >= kAcceptQueueLimit) cancel(op);
    if (TaskRecord* task = op.waiter) {
      stop_waiting(op);
      task->io_error = 0;
      scheduler_of(loop_).wake_io(task, kPollRead);
    }
    if (ended) {
      untrack(op);
      op.keep_alive.reset();  // may free `op`: last
    }
  }

  void untrack(AcceptOp& op) {
    unlink(op, accepting_);
    op.armed = false;
    op.stopping = false;
    op.owner = nullptr;
  }

  io_uring ring_{};
  WakeFd wake_fd_;
  StreamOp* in_flight_ = nullptr;  // every StreamOp started and not completed
  AcceptOp* accepting_ = nullptr;  // every multishot accept armed and not ended
  bool multishot_accept_ = false;
  bool multishot_receive_ = false;
  std::byte* pool_ = nullptr;  // the provided buffer pool: set up at the first receive
  io_uring_buf_ring* pool_ring_ = nullptr;
  unsigned pool_size_ = 0;
  std::size_t lent_ = 0;  // pool buffers in streams' `held`
  bool poll_first_ = false;
  std::uint32_t generation_ = 0;
  Micros last_submit_ = 0;
};

}  // namespace

IoBackend* make_uring_backend(Loop& loop) { return new UringBackend(loop); }

std::size_t uring_buffers_lent(Loop& loop) {
  IoBackend& backend = scheduler_of(loop).backend();
  if (std::string_view(backend.name()) != "uring") return 0;
  return static_cast<const UringBackend&>(backend).buffers_lent();
}

}  // namespace asyncio::detail
