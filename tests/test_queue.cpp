// Queue, LifoQueue, PriorityQueue (CPython's asyncio.Queue family).
#include <string>

#include "test_support.hpp"

using test::Log;

TEST_CASE("a Queue hands items out in FIFO order and counts them") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Queue<int> queue;
    CHECK(queue.maxsize() == 0);
    CHECK(queue.empty());
    CHECK_FALSE(queue.full());
    for (int i = 0; i < 5; ++i) queue.put(i);
    CHECK(queue.qsize() == 5);
    CHECK_FALSE(queue.full());  // unbounded
    for (int i = 0; i < 5; ++i) CHECK(queue.get() == i);
    CHECK(queue.empty());
  });
}

TEST_CASE("put_nowait raises QueueFull and get_nowait raises QueueEmpty; the queue stays usable") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Queue<std::string> queue(2);
    CHECK_THROWS_AS(queue.get_nowait(), asyncio::QueueEmpty);
    queue.put_nowait("a");
    queue.put_nowait("b");
    CHECK(queue.full());
    CHECK_THROWS_AS(queue.put_nowait("c"), asyncio::QueueFull);
    CHECK(queue.qsize() == 2);
    CHECK(queue.get_nowait() == "a");
    queue.put_nowait("c");
    CHECK(queue.get_nowait() == "b");
    CHECK(queue.get_nowait() == "c");
    CHECK_THROWS_AS(queue.get_nowait(), asyncio::QueueEmpty);
  });
}

TEST_CASE("getters wait on an empty queue and are served in the order they waited") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Queue<int> queue;
    std::vector<asyncio::Task<void>> getters;
    for (int i = 0; i < 3; ++i) {
      getters.push_back(asyncio::create_task([&log, &queue, i] {
        int item = queue.get();
        log.push_back(test::label("getter ", i, item));
      }));
    }
    asyncio::sleep_ms(1);
    CHECK(log.empty());
    for (int i = 10; i < 13; ++i) queue.put(i);
    for (auto& getter : getters) getter.wait();
  });
  CHECK(log == Log{"getter 0.10", "getter 1.11", "getter 2.12"});
}

TEST_CASE("putters wait on a full queue and are admitted in the order they waited") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Queue<int> queue(1);
    queue.put(0);
    std::vector<asyncio::Task<void>> putters;
    for (int i = 1; i <= 3; ++i) {
      putters.push_back(asyncio::create_task([&log, &queue, i] {
        queue.put(i);
        log.push_back(test::label("put ", i));
      }));
    }
    asyncio::sleep_ms(1);
    CHECK(log.empty());
    CHECK(queue.qsize() == 1);
    for (int expected = 0; expected <= 3; ++expected) {
      CHECK(queue.get() == expected);
      CHECK(queue.qsize() <= 1);
    }
    for (auto& putter : putters) putter.wait();
  });
  CHECK(log == Log{"put 1", "put 2", "put 3"});
}

TEST_CASE("an item put for a waiting getter cannot be taken by a task that comes later") {
  // The reservation is a count: items still leave in FIFO order, whoever runs first.
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Queue<int> queue;
    auto getter = asyncio::create_task([&] { log.push_back(test::label("getter ", queue.get())); });
    asyncio::sleep_ms(0);
    queue.put(1);
    CHECK(queue.qsize() == 1);
    CHECK_THROWS_AS(queue.get_nowait(), asyncio::QueueEmpty);  // reserved for the getter
    queue.put(2);
    CHECK(queue.get_nowait() == 1);  // one item is free again: the oldest leaves first
    CHECK(queue.qsize() == 1);
    CHECK_THROWS_AS(queue.get_nowait(), asyncio::QueueEmpty);  // the other is the getter's
    getter.wait();
  });
  CHECK(log == Log{"getter 2"});
}

TEST_CASE("a slot freed for a waiting putter cannot be taken by a task that comes later") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Queue<int> queue(1);
    queue.put(1);
    auto putter = asyncio::create_task([&] { queue.put(2); });
    asyncio::sleep_ms(0);
    CHECK(queue.get() == 1);
    CHECK_THROWS_AS(queue.put_nowait(3), asyncio::QueueFull);  // reserved for the putter
    putter.wait();
    CHECK(queue.get() == 2);
  });
}

TEST_CASE("a getter cancelled while waiting takes nothing; the next getter gets the item") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Queue<int> queue;
    auto first = asyncio::create_task([&] { return queue.get(); });
    auto second = asyncio::create_task([&] { return queue.get(); });
    asyncio::sleep_ms(0);
    first.cancel();
    asyncio::sleep_ms(0);
    CHECK(first.cancelled());
    queue.put(7);
    CHECK(asyncio::await(second) == 7);
    CHECK(queue.empty());
  });
}

TEST_CASE("a getter woken and then cancelled before it runs passes the item on") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Queue<int> queue;
    auto first = asyncio::create_task([&] { return queue.get(); });
    auto second = asyncio::create_task([&] { return queue.get(); });
    asyncio::sleep_ms(0);
    queue.put(7);  // reserved for `first`, which is now ready but has not run
    first.cancel();
    CHECK(asyncio::await(second) == 7);
    CHECK(first.cancelled());
    CHECK(queue.empty());
    // With nobody else waiting, the item stays in the queue.
    auto third = asyncio::create_task([&] { return queue.get(); });
    asyncio::sleep_ms(0);
    queue.put(8);
    third.cancel();
    asyncio::sleep_ms(0);
    CHECK(third.cancelled());
    CHECK(queue.qsize() == 1);
    CHECK(queue.get_nowait() == 8);
  });
}

TEST_CASE("a putter cancelled while waiting adds nothing; the next putter gets the slot") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Queue<int> queue(1);
    queue.put(0);
    auto first = asyncio::create_task([&] { queue.put(1); });
    auto second = asyncio::create_task([&] { queue.put(2); });
    asyncio::sleep_ms(0);
    first.cancel();
    asyncio::sleep_ms(0);
    CHECK(first.cancelled());
    CHECK(queue.get() == 0);
    second.wait();
    CHECK(queue.get() == 2);
    CHECK(queue.empty());
  });
}

TEST_CASE("a putter woken and then cancelled before it runs passes the slot on") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::Queue<int> queue(1);
    queue.put(0);
    auto first = asyncio::create_task([&] { queue.put(1); });
    auto second = asyncio::create_task([&] { queue.put(2); });
    asyncio::sleep_ms(0);
    CHECK(queue.get_nowait() == 0);  // the slot is reserved for `first`
    first.cancel();
    second.wait();
    CHECK(first.cancelled());
    CHECK(queue.get_nowait() == 2);
    // With nobody else waiting, the slot is simply free again.
    queue.put(3);
    auto third = asyncio::create_task([&] { queue.put(4); });
    asyncio::sleep_ms(0);
    CHECK(queue.get_nowait() == 3);
    third.cancel();
    asyncio::sleep_ms(0);
    CHECK(third.cancelled());
    CHECK(queue.empty());
    queue.put_nowait(5);
    CHECK(queue.full());
  });
}

TEST_CASE("join waits until task_done was called for every item put") {
  test::fresh_loop();
  Log log;
  asyncio::run([&] {
    asyncio::Queue<int> queue;
    queue.join();  // nothing put: returns at once
    for (int i = 0; i < 3; ++i) queue.put(i);
    auto worker = asyncio::create_task([&] {
      for (int i = 0; i < 3; ++i) {
        int item = queue.get();
        asyncio::sleep_ms(1);
        log.push_back(test::label("done ", item));
        queue.task_done();
      }
    });
    queue.join();
    log.push_back("joined");
    worker.wait();
    CHECK_THROWS_AS(queue.task_done(), asyncio::ValueError);
    queue.put(9);
    queue.get();
    queue.task_done();
    CHECK_THROWS_AS(queue.task_done(), asyncio::ValueError);
    queue.join();
  });
  CHECK(log == Log{"done 0", "done 1", "done 2", "joined"});
}

TEST_CASE("a bounded queue carries every item of several producers to several consumers") {
  test::fresh_loop();
  constexpr int kProducers = 4;
  constexpr int kItems = 200;
  std::vector<std::vector<int>> received(kProducers);
  asyncio::run([&] {
    asyncio::Queue<std::pair<int, int>> queue(3);
    std::vector<asyncio::Task<void>> tasks;
    for (int p = 0; p < kProducers; ++p) {
      tasks.push_back(asyncio::create_task([&queue, p] {
        for (int i = 0; i < kItems; ++i) {
          queue.put({p, i});
          if (i % 7 == 0) asyncio::sleep_ms(0);
        }
      }));
    }
    for (int c = 0; c < 3; ++c) {
      tasks.push_back(asyncio::create_task([&] {
        for (;;) {
          auto [producer, item] = queue.get();
          if (producer < 0) return;
          received[producer].push_back(item);
          queue.task_done();
          CHECK(queue.qsize() <= 3);
        }
      }));
    }
    for (int p = 0; p < kProducers; ++p) tasks[p].wait();
    queue.join();
    for (int c = 0; c < 3; ++c) queue.put({-1, 0});
    for (auto& task : tasks) task.wait();
  });
  for (const auto& items : received) {
    REQUIRE(items.size() == kItems);
    for (int i = 0; i < kItems; ++i) CHECK(items[i] == i);  // per producer, in order
  }
}

TEST_CASE("LifoQueue returns the newest item, PriorityQueue the smallest") {
  test::fresh_loop();
  asyncio::run([] {
    asyncio::LifoQueue<int> lifo;
    for (int i : {1, 2, 3}) lifo.put(i);
    CHECK(lifo.get() == 3);
    CHECK(lifo.get() == 2);
    CHECK(lifo.get() == 1);

    asyncio::PriorityQueue<int> priority;
    for (int i : {5, 1, 4, 2, 3}) priority.put(i);
    for (int i = 1; i <= 5; ++i) CHECK(priority.get() == i);

    asyncio::PriorityQueue<int, std::greater<int>> largest_first(2);
    largest_first.put(1);
    largest_first.put(9);
    CHECK(largest_first.full());
    CHECK(largest_first.get() == 9);
  });
}

TEST_CASE("a blocking get outside a task raises RuntimeError") {
  test::fresh_loop();
  asyncio::Queue<int> queue;
  CHECK_THROWS_AS(queue.get(), asyncio::RuntimeError);
  queue.put_nowait(1);  // the non-waiting calls work anywhere on the loop thread
  CHECK(queue.get() == 1);
}
