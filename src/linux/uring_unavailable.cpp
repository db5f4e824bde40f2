// The io_uring backend's stand-in when the library was built without liburing: asking for
// "uring" fails clearly, and "auto" falls back to epoll as on a kernel without io_uring.
#include <cerrno>

#include "asyncio/errors.hpp"
#include "linux_backend.hpp"

namespace asyncio::detail {

std::atomic<int> uring_test_init_error{0};
std::atomic<bool> uring_test_no_multishot_accept{false};
std::atomic<unsigned> uring_test_receive_buffers{0};
std::atomic<unsigned long> uring_multishot_receives{0};
std::atomic<unsigned long> uring_receive_fallbacks{0};
std::atomic<unsigned long> uring_receive_stops{0};

std::size_t uring_buffers_lent(Loop&) { return 0; }

IoBackend* make_uring_backend(Loop&) {
  throw OSError(ENOSYS, "io_uring backend not built (liburing was not found at meson setup)");
}

}  // namespace asyncio::detail
