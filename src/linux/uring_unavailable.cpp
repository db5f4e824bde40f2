// The io_uring backend's stand-in when the library was built without liburing: asking for
// "uring" fails clearly, and "auto" falls back to epoll as on a kernel without io_uring.
#include <cerrno>

#include "asyncio/errors.hpp"
#include "linux_backend.hpp"

namespace asyncio::detail {

std::atomic<int> uring_test_init_error{0};
std::atomic<bool> uring_test_no_multishot_accept{false};

IoBackend* make_uring_backend(Loop&) {
  throw OSError(ENOSYS, "io_uring backend not built (liburing was not found at meson setup)");
}

}  // namespace asyncio::detail
