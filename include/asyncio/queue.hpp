// Queue, LifoQueue, PriorityQueue: CPython's asyncio.Queue family. Loop thread only.
//
// Hand-over is FIFO: an item put while getters wait is reserved for the oldest getter, and a
// slot freed while putters wait is reserved for the oldest putter, so a task that arrives later
// cannot take it first (CPython lets it; its woken waiter then queues again at the back).
// A waiter that is woken and then cancelled before it runs passes its reservation on to the
// next waiter; nothing is lost and the counts stay consistent.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "asyncio/detail/wait_queue.hpp"
#include "asyncio/errors.hpp"
#include "asyncio/event.hpp"

namespace asyncio {

namespace detail {

/// The three orders a queue can hand items out in.
template <class T>
struct FifoStore {
  std::deque<T> items;
  void push(T item) { items.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items.front());
    items.pop_front();
    return item;
  }
};

template <class T>
struct LifoStore {
  std::vector<T> items;
  void push(T item) { items.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items.back());
    items.pop_back();
    return item;
  }
};

/// Smallest first, as Python's heapq.
template <class T, class Compare>
struct PriorityStore {
  std::vector<T> items;
  Compare less;
  bool greater(const T& a, const T& b) const { return less(b, a); }
  void push(T item) {
    items.push_back(std::move(item));
    std::push_heap(items.begin(), items.end(),
                   [this](const T& a, const T& b) { return greater(a, b); });
  }
  T pop() {
    std::pop_heap(items.begin(), items.end(),
                  [this](const T& a, const T& b) { return greater(a, b); });
    T item = std::move(items.back());
    items.pop_back();
    return item;
  }
};

}  // namespace detail

/// A FIFO between tasks (MicroPython's asyncio.Queue); `Store` orders the items (Queue,
/// PriorityQueue, LifoQueue).
template <class T, class Store>
class BasicQueue {
 public:
  /// `maxsize` 0: unbounded (put never waits).
  explicit BasicQueue(std::size_t maxsize = 0) : maxsize_(maxsize) { finished_.set(); }
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;

  /// Items in the queue, including those already reserved for woken getters.
  std::size_t qsize() const { return store_.items.size(); }
  /// The bound given at construction (0: unbounded).
  std::size_t maxsize() const { return maxsize_; }
  /// qsize() == 0.
  bool empty() const { return qsize() == 0; }
  /// True when bounded and qsize() has reached maxsize().
  bool full() const { return maxsize_ > 0 && qsize() >= maxsize_; }

  /// Waits while there is no free slot, then adds `item`.
  void put(T item) {
    if (!free_slot()) {
      putters_.wait("Queue.put", [this] {
        --reserved_slots_;
        offer_slot();
      });
      --reserved_slots_;  // the slot get() reserved for us
    }
    push(std::move(item));
  }
  /// QueueFull if there is no free slot (slots reserved for woken putters are not free).
  void put_nowait(T item) {
    if (!free_slot()) throw QueueFull();
    push(std::move(item));
  }

  /// Waits while there is no item, then removes and returns the next one.
  T get() {
    if (!free_item()) {
      getters_.wait("Queue.get", [this] {
        --reserved_items_;
        offer_item();
      });
      --reserved_items_;  // the item put() reserved for us
    }
    return take();
  }
  /// QueueEmpty if no item is available (items reserved for woken getters are not).
  T get_nowait() {
    if (!free_item()) throw QueueEmpty();
    return take();
  }

  /// Marks one item taken by get() as processed. ValueError if called more times than items
  /// were put.
  void task_done() {
    if (unfinished_ == 0)
      throw ValueError("Queue.task_done: called more times than items were put");
    if (--unfinished_ == 0) finished_.set();
  }
  /// Waits until every item put so far has been marked done by task_done().
  void join() { finished_.wait(); }

 private:
  bool free_slot() const { return maxsize_ == 0 || qsize() + reserved_slots_ < maxsize_; }
  bool free_item() const { return qsize() > reserved_items_; }

  void push(T item) {
    store_.push(std::move(item));
    ++unfinished_;
    finished_.clear();
    offer_item();
  }
  T take() {
    T item = store_.pop();
    offer_slot();
    return item;
  }
  /// Reserves an unclaimed item for the oldest waiting getter, if any.
  void offer_item() {
    if (free_item() && !getters_.empty()) {
      ++reserved_items_;
      getters_.wake_one();
    }
  }
  void offer_slot() {
    if (maxsize_ > 0 && free_slot() && !putters_.empty()) {
      ++reserved_slots_;
      putters_.wake_one();
    }
  }

  Store store_;
  std::size_t maxsize_;
  std::size_t reserved_items_ = 0;  // items promised to woken getters that have not run yet
  std::size_t reserved_slots_ = 0;  // slots promised to woken putters that have not run yet
  std::size_t unfinished_ = 0;      // items put and not yet task_done()
  Event finished_;                  // set while unfinished_ == 0
  detail::WaitQueue getters_;
  detail::WaitQueue putters_;
};

/// First in, first out (CPython's asyncio.Queue).
template <class T>
using Queue = BasicQueue<T, detail::FifoStore<T>>;
/// Last in, first out (CPython's asyncio.LifoQueue).
template <class T>
using LifoQueue = BasicQueue<T, detail::LifoStore<T>>;
/// Smallest item first by `Compare` (CPython's asyncio.PriorityQueue).
template <class T, class Compare = std::less<T>>
using PriorityQueue = BasicQueue<T, detail::PriorityStore<T, Compare>>;

}  // namespace asyncio
