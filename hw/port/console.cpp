#include "console.hpp"

#include "hal.hpp"

namespace hw {

void print(std::string_view text) { hal::console_write(text.data(), text.size()); }

void print_line(std::string_view text) {
  print(text);
  print("\r\n");  // CR LF: what a serial terminal expects; the runners strip the CR
}

void print_int(std::int64_t value) {
  char digits[24];
  char* end = digits + sizeof digits;
  char* p = end;
  // Negate through unsigned so that INT64_MIN does not overflow.
  std::uint64_t magnitude = value < 0 ? 0 - static_cast<std::uint64_t>(value) : value;
  do {
    *--p = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude);
  if (value < 0) *--p = '-';
  print({p, static_cast<std::size_t>(end - p)});
}

void print_fixed(std::int64_t value, int decimals) {
  std::int64_t scale = 1;
  for (int i = 0; i < decimals; ++i) scale *= 10;
  if (value < 0) {
    print("-");
    value = -value;
  }
  print_int(value / scale);
  if (decimals == 0) return;
  print(".");
  std::int64_t fraction = value % scale;
  for (std::int64_t digit = scale / 10; digit > 0; digit /= 10) {
    char c = static_cast<char>('0' + fraction / digit % 10);
    print({&c, 1});
  }
}

void JsonLine::key(std::string_view name) {
  print(first_ ? "\"" : ",\"");
  first_ = false;
  print(name);
  print("\":");
}

JsonLine& JsonLine::str(std::string_view name, std::string_view value) {
  key(name);
  print("\"");
  print(value);
  print("\"");
  return *this;
}

JsonLine& JsonLine::integer(std::string_view name, std::int64_t value) {
  key(name);
  print_int(value);
  return *this;
}

JsonLine& JsonLine::fixed(std::string_view name, std::int64_t value, int decimals) {
  key(name);
  print_fixed(value, decimals);
  return *this;
}

JsonLine& JsonLine::boolean(std::string_view name, bool value) {
  key(name);
  print(value ? "true" : "false");
  return *this;
}

}  // namespace hw
