// Shared between the Linux fiber switch and the stack pool (private to src/linux/).
#pragma once

#include <cstddef>

#include "asyncio/detail/port.hpp"

namespace asyncio::detail {

/// The fiber running on this thread (null before the first switch): the stack-overflow
/// handler uses it to name the task whose guard page was hit.
extern thread_local const Fiber* running_fiber;

namespace port {
/// Bytes a fiber may use: the stack minus its guard page and overflow sentinel.
std::size_t usable_stack_size(const Stack& stack);
}  // namespace port

}  // namespace asyncio::detail
