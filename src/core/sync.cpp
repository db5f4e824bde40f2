// Semaphore, BoundedSemaphore, Condition, Barrier (CPython's asyncio.locks), on detail::WaitQueue.
#include "asyncio/sync.hpp"

#include <exception>

namespace asyncio {

Semaphore::Semaphore(int value) : value_(value) {
  if (value < 0) throw ValueError("Semaphore: initial value must be >= 0");
}

void Semaphore::acquire() {
  // value_ > 0 implies nobody waits: release() hands its unit to a waiter before counting it.
  if (value_ > 0) {
    --value_;
    return;
  }
  // Woken, then cancelled before running: release() had handed us a unit; pass it on.
  waiters_.wait("Semaphore.acquire", [this] { release(); });
}

void Semaphore::release() {
  check_release();
  if (!waiters_.wake_one()) ++value_;
}

bool Semaphore::try_lock() {
  if (value_ == 0) return false;
  --value_;
  return true;
}

void BoundedSemaphore::check_release() const {
  if (value_ >= bound_) throw ValueError("BoundedSemaphore.release: released too many times");
}

void Condition::wait() {
  if (!lock_.locked()) throw RuntimeError("Condition.wait: lock is not acquired");
  lock_.release();
  std::exception_ptr error;
  detail::TaskWaitNode node;
  try {
    // Woken by notify(), then cancelled before running: wake another waiter in our place.
    waiters_.wait(node, "Condition.wait", [this] { wake(1); });
  } catch (...) {
    if (node.object_gone) throw;  // the lock may be gone with the condition
    error = std::current_exception();
  }
  // As CPython: the caller holds the lock again whatever happened; a cancellation that comes
  // while re-acquiring is kept and raised once the lock is ours.
  for (;;) {
    try {
      lock_.acquire();
      break;
    } catch (const CancelledError&) {
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

void Condition::notify(std::size_t n) {
  if (!lock_.locked()) throw RuntimeError("Condition.notify: lock is not acquired");
  wake(n);
}

void Condition::notify_all() {
  if (!lock_.locked()) throw RuntimeError("Condition.notify_all: lock is not acquired");
  waiters_.wake_all();
}

void Condition::wake(std::size_t n) {
  while (n > 0 && waiters_.wake_one()) --n;
}

namespace {
/// A Barrier waiter; release_all() leaves the round's outcome in it.
struct BarrierWaitNode : detail::TaskWaitNode {
  bool broken = false;
};
}  // namespace

Barrier::Barrier(int parties) : parties_(parties) {
  if (parties < 1) throw ValueError("Barrier: parties must be >= 1");
}

int Barrier::wait() {
  if (broken_) throw BrokenBarrierError("Barrier.wait: the barrier is broken");
  const int index = count_++;
  if (count_ == parties_) {
    release_all(false);
    return index;
  }
  BarrierWaitNode node;
  bool released = false;
  try {
    // Released, then cancelled before running: the round is over for everyone; nothing to
    // pass on, the CancelledError is the caller's alone.
    waiters_.wait(node, "Barrier.wait", [&released] { released = true; });
  } catch (...) {
    if (node.object_gone) throw;  // the barrier is gone: nothing to count
    if (!released) --count_;  // cancelled while waiting (or not in a task): leave the round
    throw;
  }
  if (node.broken) throw BrokenBarrierError("Barrier.wait: the barrier broke while waiting");
  return index;
}

void Barrier::abort() {
  broken_ = true;
  release_all(true);
}

void Barrier::reset() {
  release_all(true);
  broken_ = false;
}

void Barrier::release_all(bool broken) {
  count_ = 0;
  waiters_.wake_all([broken](detail::TaskWaitNode& node) {
    static_cast<BarrierWaitNode&>(node).broken = broken;
  });
}

}  // namespace asyncio
