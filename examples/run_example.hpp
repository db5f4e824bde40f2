// The main() of an example that runs one asyncio program: a loop on the chosen backend, the
// program as its main task, and an error printed as "<example>: <what>" with exit status 1.
#pragma once

#include <asyncio/linux.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>

namespace demo {

/// `backend`: "epoll", "uring", "auto" or "" (then ASYNCIO_BACKEND, then auto).
template <class F, class... Args>
int run_example(const char* example, const std::string& backend, F&& program, Args&&... args) {
  try {
    asyncio::new_event_loop(asyncio::Loop::Options{.backend = backend});
    asyncio::run(std::forward<F>(program), std::forward<Args>(args)...);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: %s\n", example, error.what());
    return 1;
  }
  return 0;
}

}  // namespace demo
