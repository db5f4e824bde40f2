// Exceptions raised by the library (docs/semantics.md#tasks, docs/semantics.md#errors).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

namespace asyncio {

/// Thrown at a task's suspension point when the task is cancelled.
///
/// Deliberately NOT derived from std::exception, as in Python where CancelledError is not an
/// Exception: `catch (const std::exception&)` in user code must not swallow a cancellation.
/// Code that uses `catch (...)` must rethrow it.
class CancelledError {
 public:
  /// "CancelledError".
  const char* what() const noexcept { return "CancelledError"; }
};

/// Raised out of asyncio::run() when SIGINT (Ctrl-C) interrupts it, after the loop has
/// cancelled the main task and every other task (CPython's asyncio.run does the same).
///
/// Like CancelledError, not derived from std::exception: as Python's KeyboardInterrupt is not an
/// Exception, `catch (const std::exception&)` must not swallow it
/// (docs/semantics.md#exceptions).
class KeyboardInterrupt {
 public:
  /// "KeyboardInterrupt".
  const char* what() const noexcept { return "KeyboardInterrupt"; }
};

namespace detail {
/// What a timeout() scope's expiry raises at the task's suspension point: a CancelledError (so
/// every wait unwinds as for cancel()) that names the deadline, so that the scope that set it
/// can tell its own expiry from a cancel() and turn it into TimeoutError.
class DeadlineExpired : public CancelledError {
 public:
  explicit DeadlineExpired(std::int64_t at) : deadline(at) {}
  std::int64_t deadline;  // absolute µs on the loop's clock
};
}  // namespace detail

/// wait_for()/wait_for_ms()/timeout() ran out of time.
class TimeoutError : public std::runtime_error {
 public:
  TimeoutError() : std::runtime_error("TimeoutError") {}
  using std::runtime_error::runtime_error;
};

/// An argument or a state the call cannot accept (Python's ValueError / RuntimeError).
class ValueError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// A misuse of the scheduler: awaiting a task from itself, a second waiter, a dead loop…
class RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Queue::get_nowait() on a queue with no item to take (CPython's asyncio.QueueEmpty).
class QueueEmpty : public std::runtime_error {
 public:
  QueueEmpty() : std::runtime_error("QueueEmpty") {}
  using std::runtime_error::runtime_error;
};

/// Queue::put_nowait() on a queue with no free slot (CPython's asyncio.QueueFull).
class QueueFull : public std::runtime_error {
 public:
  QueueFull() : std::runtime_error("QueueFull") {}
  using std::runtime_error::runtime_error;
};

/// Barrier::wait() on a barrier that was aborted, or reset while the caller waited (CPython's
/// asyncio.BrokenBarrierError, a RuntimeError).
class BrokenBarrierError : public RuntimeError {
 public:
  BrokenBarrierError() : RuntimeError("BrokenBarrierError") {}
  using RuntimeError::RuntimeError;
};

/// An operating-system error: carries errno (code().value()) and its text.
class OSError : public std::system_error {
 public:
  /// `error` is the errno value, `what` the failed call or a description.
  OSError(int error, const std::string& what) : std::system_error(error, std::generic_category(), what) {}
  /// The errno value.
  int error() const noexcept { return code().value(); }
};

}  // namespace asyncio
