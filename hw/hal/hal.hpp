// The chip contract: what one board file (hw/<board>/hal_<board>.cpp) implements.
//
// The scheduler core (src/core/) talks to the asyncio port contract
// (include/asyncio/detail/port.hpp). The hw port (hw/port/) implements that contract once, for
// every Cortex-M board, on top of the few calls below. As in Embassy, a board only says how to
// keep time, how to wake and how to idle; the policy (when to sleep, for how long, what to poll
// between slices) lives in hw/port/mcu_backend.cpp.
//
//   time      now(), schedule_wake(at), cancel_wake()      a 64-bit µs clock + one alarm
//   idle      light_sleep()                                  WFI, with the chip's clock gating
//   console   console_write(), console_read()                UART, non-blocking
//   devices   gpio_*(), set_user_alarm(), uart_*()           for drivers, examples and tests
//   end       exit(code)                                     emulator verdict / park on silicon
//
// Threading model: one core, thread mode runs the loop and its tasks (on the process stack),
// handlers run on the main stack. Functions marked "ISR-safe" may be called from a handler.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hal {

using Micros = std::int64_t;

/// Clocks, console, tick source, interrupt enables. Called once by the reset handler, before
/// static constructors run.
void init();

/// Short board name for logs and JSON: "rp2040", "rp2350", "an505".
const char* board_name();

// ---- Time driver ------------------------------------------------------------------------

/// Monotonic microseconds since boot. ISR-safe.
Micros now();

/// Arms the wake-up alarm for `at` (absolute µs). Its interrupt does nothing but wake the core
/// from light_sleep(); a later call replaces it. Returns false if `at` is already past, in
/// which case no interrupt is promised (the caller must not sleep).
bool schedule_wake(Micros at);

/// Disarms the wake-up alarm.
void cancel_wake();

/// Resolution of schedule_wake (µs): the alarm cannot be set more finely than this.
Micros wake_resolution();

// ---- Idle -------------------------------------------------------------------------------

/// Light sleep until an enabled interrupt is pending. Called with interrupts masked (PRIMASK
/// set), so that a wake-up that happens between the caller's last check and the WFI is not
/// lost: WFI returns on a pending interrupt even while masked. Returns with interrupts still
/// masked; the caller unmasks them to let the handler run. Chips gate clocks here as
/// MicroPython's machine.lightsleep() does (see each board file).
void light_sleep();

// ---- Console (UART) -----------------------------------------------------------------------

/// Writes bytes to the console, waiting for FIFO space. Not ISR-safe.
void console_write(const char* data, std::size_t size);
/// Copies up to `size` received bytes; returns 0 at once if none are waiting.
std::size_t console_read(char* data, std::size_t size);
/// True if console_read would return at least one byte.
bool console_readable();

// ---- Devices for examples and tests -------------------------------------------------------

/// Configures `pin` as a push-pull output (RP2: SIO function, pad enabled).
void gpio_set_output(unsigned pin);
void gpio_put(unsigned pin, bool value);

/// Configures `pin` as an input (SIO function, input buffer on, no pull).
void gpio_set_input(unsigned pin);
bool gpio_get(unsigned pin);

enum class Edge : unsigned { kFalling = 1, kRising = 2, kBoth = 3 };

/// Calls `handler(pin)` from interrupt context on every `edge` of input `pin` (RP2:
/// IO_IRQ_BANK0); the edge is acknowledged before the handler runs, so an edge during the
/// handler calls it again. Any pending edge is discarded when the interrupt is enabled.
/// nullptr disables it. Light sleep keeps the GPIO block clocked while any pin has a handler,
/// so an edge wakes the core. Boards without GPIO interrupts (an505) ignore the call.
void gpio_set_irq(unsigned pin, Edge edge, void (*handler)(unsigned pin));

/// A second hardware alarm, independent of the wake-up alarm: calls `handler` from interrupt
/// context at `at` (absolute µs). A truly asynchronous source for ThreadSafeFlag tests.
/// A handler may call set_user_alarm again (periodic sources). nullptr disarms.
void set_user_alarm(Micros at, void (*handler)());

// ---- Device UART: the one that is not the console -----------------------------------------
//
// RP2: UART1 (PL011) on GPIO4 (TX) / GPIO5 (RX), 8N1; the console keeps UART0. hw::Uart
// (hw/port/uart.hpp) is the asyncio driver on top of these calls.

struct UartConfig {
  std::uint32_t baud = 115'200;
  /// Connects TX to RX inside the UART (PL011 LBE), for a self-test without a wire.
  bool loopback = false;
};

/// Resets and configures the device UART and enables its receive interrupt. `on_receive` runs in
/// interrupt context whenever received bytes wait; it must take them all with uart_read() (the
/// interrupt stays asserted until the receive FIFO is empty). Light sleep keeps the UART
/// clocked while it is open. Returns false on boards without one (an505).
bool uart_open(const UartConfig& config, void (*on_receive)());
/// Disables the device UART and its interrupt.
void uart_close();
/// Copies up to `size` received bytes from the receive FIFO; 0 if it is empty. ISR-safe.
std::size_t uart_read(std::uint8_t* data, std::size_t size);
/// Queues up to `size` bytes in the transmit FIFO without waiting; returns how many it took.
std::size_t uart_write(const std::uint8_t* data, std::size_t size);
/// True if uart_write would take at least one byte.
bool uart_writable();

// ---- End of a run -------------------------------------------------------------------------

/// Flushes the console and ends the program: code 0 = pass. On an emulator the code becomes the
/// process exit status (rp2040js: BKPT #code; QEMU: semihosting exit). On silicon the core parks.
[[noreturn]] void exit(int code);

}  // namespace hal
