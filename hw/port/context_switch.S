@ Cooperative context switch between fibers (tasks and the loop's own thread).
@
@   void hw_context_switch(void** save_sp, void* next_sp);
@
@ Only the registers the AAPCS says a callee must preserve are saved: r4-r11 and the return
@ address; everything else is dead across a call anyway. Frame, low to high address:
@   r8 r9 r10 r11 r4 r5 r6 r7 lr        (9 words, see port::make_fiber)
@ ARMv6-M (M0+) cannot push r8-r11 directly, hence the moves through r4-r7. The code is also
@ valid on ARMv8-M (M33) as long as the FPU is unused (we build with -mfloat-abi=soft; with a
@ hard-float ABI s16-s31 would have to be saved too).
    .syntax unified
    .thumb
    .section .text.hw_context_switch, "ax"
    .global hw_context_switch
    .type   hw_context_switch, %function
    .thumb_func
hw_context_switch:
    push    {r4-r7, lr}
    mov     r4, r8
    mov     r5, r9
    mov     r6, r10
    mov     r7, r11
    push    {r4-r7}
    mov     r2, sp
    str     r2, [r0]                    @ *save_sp = sp
    mov     sp, r1
    pop     {r4-r7}
    mov     r8, r4
    mov     r9, r5
    mov     r10, r6
    mov     r11, r7
    pop     {r4-r7, pc}
    .size   hw_context_switch, . - hw_context_switch

@ First code of a new fiber: make_fiber put the Fiber* in r4 and this address in lr.
    .section .text.hw_fiber_trampoline, "ax"
    .global hw_fiber_trampoline
    .type   hw_fiber_trampoline, %function
    .thumb_func
hw_fiber_trampoline:
    mov     r0, r4
    bl      hw_fiber_start              @ [[noreturn]]
    udf     #0
    .size   hw_fiber_trampoline, . - hw_fiber_trampoline
