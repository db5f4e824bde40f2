@ RP2040 second-stage boot loader (boot2) for any SPI NOR flash: plain 1-bit SPI, READ (03h),
@ 24-bit addresses. Slower than the SDK's quad-SPI boot2 for the W25Q080, but chip-independent.
@
@ The bootrom reads the first 256 bytes of flash into SRAM at 0x20041f00, checks the CRC32 in
@ the last word (CRC-32/MPEG-2 of bytes 0..251, written by hw/tools/image.py) and calls it with
@ lr = 0 (datasheet 2.8.1.3). boot2 sets up execute-in-place through the SSI, then enters the
@ image: VTOR = 0x10000100, SP and PC from that vector table. Called with lr != 0 (a flash
@ programmer re-running it) it returns instead. Position-independent: PC-relative loads only.
@ SSI registers: datasheet 4.10.13 (Synopsys DW_apb_ssi at 0x18000000).
    .syntax unified
    .cpu cortex-m0plus
    .thumb
    .section .boot2, "ax"

    .equ SSI_BASE,       0x18000000
    .equ SSI_CTRLR0,     0x00
    .equ SSI_CTRLR1,     0x04
    .equ SSI_SSIENR,     0x08
    .equ SSI_BAUDR,      0x14
    .equ SSI_SPI_CTRLR0, 0xf4
    @ CTRLR0: SPI_FRF (22:21) 0 = standard SPI, DFS_32 (20:16) 31 = 32-bit frames,
    @ TMOD (9:8) 3 = EEPROM read (send command + address, then receive).
    .equ CTRLR0_VALUE,     (0 << 21) | (31 << 16) | (3 << 8)
    @ SPI_CTRLR0: XIP_CMD (31:24) 0x03 = READ, INST_L (9:8) 2 = 8-bit instruction,
    @ ADDR_L (5:2) 6 = 24-bit address, TRANS_TYPE (1:0) 0 = instruction and address in std SPI.
    .equ SPI_CTRLR0_VALUE, (0x03 << 24) | (2 << 8) | (6 << 2)
    @ SCK = clk_sys / 4. clk_sys is the ring oscillator (~6 MHz) at this point; READ (03h) is
    @ specified up to ~50 MHz on common parts, so any divisor works.
    .equ BAUD_DIVISOR,   4
    .equ VECTORS,        0x10000100
    .equ SCB_VTOR,       0xe000ed08

    .global boot2_entry
    .type   boot2_entry, %function
    .thumb_func
boot2_entry:
    push    {lr}
    ldr     r3, =SSI_BASE
    movs    r1, #0
    str     r1, [r3, #SSI_SSIENR]       @ the SSI must be disabled while it is configured
    movs    r1, #BAUD_DIVISOR
    str     r1, [r3, #SSI_BAUDR]
    ldr     r1, =CTRLR0_VALUE
    str     r1, [r3, #SSI_CTRLR0]
    ldr     r1, =SPI_CTRLR0_VALUE
    ldr     r0, =SSI_BASE + SSI_SPI_CTRLR0
    str     r1, [r0]
    movs    r1, #0
    str     r1, [r3, #SSI_CTRLR1]       @ NDF 0: one data frame per XIP access
    movs    r1, #1
    str     r1, [r3, #SSI_SSIENR]       @ reads of 0x10000000.. now fetch from flash
    pop     {r0}
    cmp     r0, #0
    beq     enter_image
    bx      r0                          @ called as a function: return
enter_image:
    ldr     r0, =VECTORS
    ldr     r1, =SCB_VTOR
    str     r0, [r1]
    ldmia   r0!, {r1, r2}               @ initial SP, reset handler
    msr     msp, r1
    bx      r2
    .ltorg
    .size   boot2_entry, . - boot2_entry
