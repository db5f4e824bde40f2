// The calling thread's module-level modes (asyncio::roundrobin(), asyncio::power_mode()):
// every loop the thread makes starts in them.
#pragma once

namespace asyncio::detail {

bool default_roundrobin();
bool default_low_power();

}  // namespace asyncio::detail
