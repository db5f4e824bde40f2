/* libatomic for a single-core Cortex-M: the __atomic_* calls GCC emits when the CPU has no
 * suitable exclusive-access instruction.
 *
 * ARMv6-M (M0+) has no LDREX/STREX at all, so std::atomic read-modify-write on 1, 2 and 4 bytes
 * (exchange, compare_exchange, fetch_add, ...) becomes a library call that newlib does not
 * provide ("undefined reference to __atomic_exchange_1"). ARMv7-M/ARMv8-M (M33)
 * inline those, but no M-profile CPU has a 64-bit exclusive pair, so the 8-byte forms are
 * provided everywhere.
 *
 * One core, so masking interrupts (PRIMASK) makes each operation atomic with respect to every
 * interrupt handler. The RP2040's second core is not used by this port; code that starts it
 * must replace these with the SIO hardware spinlocks.
 *
 * Compiled as C: g++ would see these names as builtins and reject the definitions. */
#include <stdbool.h>
#include <stdint.h>

#pragma GCC diagnostic ignored "-Wbuiltin-declaration-mismatch"

static inline uint32_t mask(void) {
  uint32_t primask;
  __asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
  return primask;
}
static inline void restore(uint32_t primask) {
  __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}

#define ATOMIC_RMW(N, T, NAME, EXPR)                             \
  T __atomic_##NAME##_##N(volatile void* p, T v, int order) {    \
    (void)order;                                                 \
    uint32_t s = mask();                                         \
    T old = *(volatile T*)p;                                     \
    *(volatile T*)p = (EXPR);                                    \
    restore(s);                                                  \
    return old;                                                  \
  }

#define ATOMIC_OPS(N, T)                                                                  \
  T __atomic_load_##N(const volatile void* p, int order) {                                \
    (void)order;                                                                          \
    uint32_t s = mask();                                                                  \
    T v = *(const volatile T*)p;                                                          \
    restore(s);                                                                           \
    return v;                                                                             \
  }                                                                                       \
  void __atomic_store_##N(volatile void* p, T v, int order) {                             \
    (void)order;                                                                          \
    uint32_t s = mask();                                                                  \
    *(volatile T*)p = v;                                                                  \
    restore(s);                                                                           \
  }                                                                                       \
  bool __atomic_compare_exchange_##N(volatile void* p, void* expected, T desired,         \
                                     bool weak, int success, int failure) {               \
    (void)weak, (void)success, (void)failure;                                             \
    uint32_t s = mask();                                                                  \
    T current = *(volatile T*)p;                                                          \
    bool equal = current == *(T*)expected;                                                \
    if (equal) {                                                                          \
      *(volatile T*)p = desired;                                                          \
    } else {                                                                              \
      *(T*)expected = current;                                                            \
    }                                                                                     \
    restore(s);                                                                           \
    return equal;                                                                         \
  }                                                                                       \
  ATOMIC_RMW(N, T, exchange, v)                                                           \
  ATOMIC_RMW(N, T, fetch_add, old + v)                                                    \
  ATOMIC_RMW(N, T, fetch_sub, old - v)                                                    \
  ATOMIC_RMW(N, T, fetch_and, old & v)                                                    \
  ATOMIC_RMW(N, T, fetch_or, old | v)                                                     \
  ATOMIC_RMW(N, T, fetch_xor, old ^ v)

#if defined(__ARM_ARCH_6M__)
ATOMIC_OPS(1, uint8_t)
ATOMIC_OPS(2, uint16_t)
ATOMIC_OPS(4, uint32_t)

bool __atomic_test_and_set(volatile void* p, int order) {
  (void)order;
  uint32_t s = mask();
  bool old = *(volatile uint8_t*)p != 0;
  *(volatile uint8_t*)p = 1;
  restore(s);
  return old;
}
#endif

ATOMIC_OPS(8, uint64_t)
