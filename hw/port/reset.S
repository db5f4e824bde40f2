@ Reset entry for every board: put thread mode on its own stack, then start C++.
@
@ Thread mode (the event loop and, through the context switch, every task) runs on the
@ process stack pointer (PSP); exception handlers run on the main stack pointer (MSP). An
@ interrupt then pushes only its 8-word exception frame onto the interrupted task's stack and
@ runs its handler on the handler stack, so a task's stack size does not have to include the
@ deepest interrupt handler (ARMv6-M ARM B1.4.2 / ARMv8-M ARM B3.19: CONTROL.SPSEL).
@ ARMv6-M instructions only: the same file serves the M0+ and the M33.
    .syntax unified
    .thumb
    .section .text.Reset_Handler, "ax"
    .global Reset_Handler
    .type   Reset_Handler, %function
    .thumb_func
Reset_Handler:
    ldr     r0, =__handler_stack_top    @ the vector table's initial SP is the same value, but
    msr     msp, r0                     @ boot2 / a debugger may enter with another one
    ldr     r0, =__thread_stack_top
    msr     psp, r0
    movs    r0, #2                      @ CONTROL.SPSEL = 1: thread mode uses PSP
    msr     control, r0
    isb
    bl      hw_start                    @ never returns
1:  b       1b
    .ltorg
    .size   Reset_Handler, . - Reset_Handler
