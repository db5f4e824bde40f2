// Helpers shared by the ports of MicroPython's asyncio tests: Python's print() and the repr()
// of the few exceptions the tests print, so that each port reads like the script it ports.
#pragma once

#include <asyncio/linux.hpp>
#include <asyncio/testing.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <type_traits>

namespace py {

inline std::string str(std::string_view text) {
  return std::string(text);
}
inline std::string str(const char* text) {
  return text;
}
inline std::string str(bool value) {
  return value ? "True" : "False";
}
template <class T>
requires std::is_integral_v<T> std::string str(T value) {
  return std::to_string(value);
}

/// Python's print(a, b, ...): the arguments separated by spaces, then a newline, on stdout.
template <class... Args>
void print(const Args&... args) {
  std::string line;
  bool first = true;
  auto add = [&line, &first](const std::string& text) {
    if (!first) line.push_back(' ');
    first = false;
    line.append(text);
  };
  (add(str(args)), ...);
  line.push_back('\n');
  std::fputs(line.c_str(), stdout);
}
inline void print() {
  std::fputs("\n", stdout);
}

/// Python's ValueError(args): what() holds the repr of the arguments as MicroPython prints
/// them ("2," for a single argument, as its repr of a one-tuple).
inline asyncio::ValueError value_error(std::string args = {}) {
  return asyncio::ValueError(args);
}

/// repr() of an exception a port catches or receives in an exception handler.
inline std::string repr(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const asyncio::CancelledError&) {
    return "CancelledError()";
  } catch (const asyncio::TimeoutError&) {
    return "TimeoutError()";
  } catch (const asyncio::ValueError& e) {
    return std::string("ValueError(") + e.what() + ")";
  } catch (const asyncio::RuntimeError& e) {
    return std::string("RuntimeError(") + e.what() + ")";
  } catch (const std::exception& e) {
    return std::string("Exception(") + e.what() + ")";
  }
}

/// Prints what a waiting call returned: MicroPython's Event.wait() and Lock.acquire() return
/// True. Works whether the C++ call returns bool or void (void is printed as True).
template <class Call>
std::string returned(Call&& call) {
  if constexpr (std::is_void_v<std::invoke_result_t<Call>>) {
    call();
    return "True";
  } else {
    return str(static_cast<bool>(call()));
  }
}

/// What the Python tests print as round(measured_ms, -2) for a wait of `nominal_ms`. A wait
/// that ends early (by Python's rounding) still prints the measured time, but a late one
/// prints the nominal time unless it is a second late: a loaded machine wakes tasks late, and
/// the tests check the order and the waits' lengths, not the machine's speed. On virtual time
/// (suite core) every wait lasts exactly what it should: the measured time is printed as is.
inline std::int64_t took(std::int64_t measured_ms, std::int64_t nominal_ms) {
  if (asyncio::testing::active()) return measured_ms;
  if (measured_ms >= nominal_ms - 50 && measured_ms < nominal_ms + 1000) return nominal_ms;
  return (measured_ms + 50) / 100 * 100;
}

/// MicroPython's time.ticks_ms() on the steady clock, or on the virtual one (suite core).
inline std::int64_t ticks_ms() {
  using namespace std::chrono;
  if (asyncio::testing::active()) return duration_cast<milliseconds>(asyncio::testing::now()).count();
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace py
