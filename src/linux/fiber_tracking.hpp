// Shared between the Linux fiber switch and the stack pool (private to src/linux/).
#pragma once

#include <cstddef>

#include "asyncio/detail/port.hpp"

namespace asyncio::detail {

namespace port {
/// Bytes a fiber may use: the stack minus its guard page and overflow sentinel.
std::size_t usable_stack_size(const Stack& stack);
}  // namespace port

}  // namespace asyncio::detail
