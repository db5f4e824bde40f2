@ Thread pointer for thread_local variables (ARM run-time ABI, __aeabi_read_tp).
@
@ Cortex-M has no thread-ID register, so GCC calls this function (-mtp=soft) and expects only r0
@ to change. A bare-metal image has one thread: the TLS block is the one the linker script lays
@ out (sections.ld), copied/zeroed by hw_start, and every fiber shares it, as threads' fibers
@ share their thread's TLS on Linux. The ARM TLS ABI (variant 1) puts an 8-byte thread control
@ block before the block, hence the - 8.
    .syntax unified
    .thumb
    .section .text.__aeabi_read_tp, "ax"
    .global __aeabi_read_tp
    .type   __aeabi_read_tp, %function
    .thumb_func
__aeabi_read_tp:
    ldr     r0, =__tls_base - 8
    bx      lr
    .ltorg
    .size   __aeabi_read_tp, . - __aeabi_read_tp
