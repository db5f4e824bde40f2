@ RP2350 IMAGE_DEF block: without a valid block loop in the first 4 KiB of flash the RP2350
@ bootrom does not boot the image (datasheet 5.9 "Metadata block details", 5.9.5 minimum
@ viable image). No VECTOR_TABLE item, so the bootrom uses the vector table at the start of
@ the image (0x10000000). Words:
@   0xffffded3  PICOBIN_BLOCK_MARKER_START
@   0x10210142  item IMAGE_TYPE (0x42), 1 word, flags 0x1021:
@               IMAGE_TYPE EXE | EXE_SECURITY S | EXE_CPU ARM | EXE_CHIP RP2350
@   0x000001ff  item LAST (0xff), total size of the preceding items: 1 word
@   0x00000000  relative link to the next block: 0 = this block is a loop of one
@   0xab123579  PICOBIN_BLOCK_MARKER_END
    .section .image_def, "a"
    .align 2
    .global rp2350_image_def
rp2350_image_def:
    .word 0xffffded3
    .word 0x10210142
    .word 0x000001ff
    .word 0x00000000
    .word 0xab123579
