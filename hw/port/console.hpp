// Console output for firmware: plain lines and one-line JSON objects, without printf (newlib's
// printf costs kilobytes of flash and formats no floating point in nano builds).
#pragma once

#include <cstdint>
#include <string_view>

namespace hw {

void print(std::string_view text);
void print_line(std::string_view text);
/// Decimal integer.
void print_int(std::int64_t value);
/// `value / 10^decimals` with exactly `decimals` digits after the point: print_fixed(101234, 3)
/// prints 101.234.
void print_fixed(std::int64_t value, int decimals);

/// Builds one JSON object on the console, field by field; the destructor closes it and ends
/// the line. Keys and string values are printed as given (no escaping: use plain ASCII).
///   hw::JsonLine().str("demo", "timer_test").fixed("ms", us, 3);
class JsonLine {
 public:
  JsonLine() { print("{"); }
  ~JsonLine() { print_line("}"); }
  JsonLine(const JsonLine&) = delete;
  JsonLine& operator=(const JsonLine&) = delete;

  JsonLine& str(std::string_view key, std::string_view value);
  JsonLine& integer(std::string_view key, std::int64_t value);
  JsonLine& fixed(std::string_view key, std::int64_t value, int decimals);
  JsonLine& boolean(std::string_view key, bool value);

 private:
  void key(std::string_view name);
  bool first_ = true;
};

}  // namespace hw
