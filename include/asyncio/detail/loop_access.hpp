// How the library reaches a Loop's internals: its scheduler (the task-facing primitives), its
// inbox of remote calls and its console-interrupt state. Loop's public API holds none of them.
#pragma once

namespace asyncio {

class Loop;

namespace detail {

class Scheduler;
struct RemoteCallQueue;

/// The scheduler `loop` holds by value. Defined inline in asyncio/loop.hpp (it reads a private
/// member), so that reaching it costs nothing on the switch path.
inline Scheduler& scheduler_of(Loop& loop) noexcept;
inline const Scheduler& scheduler_of(const Loop& loop) noexcept;
/// The loop's inbox for call_soon_threadsafe; defined inline in asyncio/loop.hpp.
inline RemoteCallQueue& remote_calls_of(Loop& loop) noexcept;
/// True once if Loop::interrupt() was called since the last call; run() asks after its run.
/// Loop thread.
bool take_interrupt(Loop& loop) noexcept;

}  // namespace detail
}  // namespace asyncio
