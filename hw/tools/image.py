#!/usr/bin/env python3
"""Post-link tool for the hw firmware (Python standard library only; no picotool, no SDK).

  image.py image FW.elf --board rp2040 --bin FW.bin [--uf2 FW.uf2 --family rp2040]
      ELF -> flat binary of the flash contents (from the ELF's load segments), boot2 CRC
      patched in for the RP2040, then UF2 for drag-and-drop flashing.
  image.py size FW.elf --firmware NAME --board BOARD [--max-flash N] [--max-ram N]
      prints {"firmware":NAME,"board":BOARD,"flash_bytes":X,"ram_bytes":X}; fails if over a limit.
  image.py selftest

RP2040 boot2 CRC (datasheet 2.8.1.3.1): CRC-32/MPEG-2 (polynomial 0x04c11db7, initial value
0xffffffff, no reflection, no final xor) of flash bytes 0..251, stored little-endian at 252.
UF2 (Microsoft's format, as the RP2040/RP2350 bootroms accept it): 512-byte blocks, each with a
256-byte payload at a 256-byte aligned flash address and the family ID flag set.
"""
import json
import struct
import sys

UF2_MAGIC_START0, UF2_MAGIC_START1, UF2_MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
UF2_FLAG_FAMILY_ID_PRESENT = 0x00002000
UF2_FAMILIES = {  # datasheets: RP2040 2.8.4.2, RP2350 5.5.3
    "rp2040": 0xE48BFF56,
    "rp2350-arm-s": 0xE48BFF59,
    "rp2350-riscv": 0xE48BFF5A,
    "rp2350-arm-ns": 0xE48BFF5B,
}
FLASH_BASE = 0x10000000  # XIP flash on RP2040 and RP2350; the an505 image's code RAM too

PT_LOAD = 1
SHT_NOBITS = 8
SHF_WRITE, SHF_ALLOC = 0x1, 0x2


def crc32_mpeg2(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


class Elf32:
    """Just enough of a little-endian ELF32 reader for our own images."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        if self.data[:4] != b"\x7fELF" or self.data[4] != 1 or self.data[5] != 1:
            raise SystemExit(f"{path}: not a little-endian ELF32 file")
        (self.phoff, self.shoff, _, _, self.phentsize, self.phnum, self.shentsize, self.shnum,
         self.shstrndx) = struct.unpack_from("<IIIHHHHHH", self.data, 28)

    def segments(self):
        for i in range(self.phnum):
            p_type, offset, _vaddr, paddr, filesz, _memsz, _flags, _align = struct.unpack_from(
                "<8I", self.data, self.phoff + i * self.phentsize)
            yield p_type, offset, paddr, filesz

    def sections(self):
        def header(i):
            return struct.unpack_from("<10I", self.data, self.shoff + i * self.shentsize)
        names = header(self.shstrndx)[4]
        for i in range(self.shnum):
            name_off, sh_type, flags, addr, offset, size = header(i)[:6]
            end = self.data.index(b"\0", names + name_off)
            yield self.data[names + name_off:end].decode(), sh_type, flags, addr, size


def flash_image(elf: Elf32) -> bytes:
    """The bytes a programmer writes to flash: every loaded segment at its load address."""
    chunks = [(paddr, elf.data[offset:offset + filesz])
              for p_type, offset, paddr, filesz in elf.segments()
              if p_type == PT_LOAD and filesz > 0 and paddr >= FLASH_BASE]
    if not chunks:
        raise SystemExit("no loadable flash segment in the ELF")
    end = max(addr + len(chunk) for addr, chunk in chunks)
    image = bytearray(b"\xff" * (end - FLASH_BASE))  # erased flash reads 0xff
    for addr, chunk in chunks:
        image[addr - FLASH_BASE:addr - FLASH_BASE + len(chunk)] = chunk
    return bytes(image)


def patch_boot2_crc(image: bytes) -> bytes:
    if len(image) < 256:
        raise SystemExit("image shorter than the 256-byte boot2")
    return image[:252] + struct.pack("<I", crc32_mpeg2(image[:252])) + image[256:]


def to_uf2(image: bytes, base: int, family: int) -> bytes:
    if len(image) % 256:
        image += b"\xff" * (256 - len(image) % 256)
    count = len(image) // 256
    blocks = bytearray()
    for i in range(count):
        header = struct.pack("<8I", UF2_MAGIC_START0, UF2_MAGIC_START1, UF2_FLAG_FAMILY_ID_PRESENT,
                             base + 256 * i, 256, i, count, family)
        payload = image[256 * i:256 * (i + 1)].ljust(476, b"\0")
        blocks += header + payload + struct.pack("<I", UF2_MAGIC_END)
    return bytes(blocks)


def sizes(elf: Elf32):
    """Flash: everything stored in flash (code, constants, tables, initial values of .data).
    RAM: static data (.data, .bss, thread-locals), not counting the heap and stacks."""
    flash = ram = 0
    for name, sh_type, flags, _addr, size in elf.sections():
        if not flags & SHF_ALLOC or name == ".tbss_space":
            continue
        if sh_type != SHT_NOBITS:
            flash += size
        if flags & SHF_WRITE:
            ram += size
    return flash, ram


def option(args, name, default=None):
    if name in args:
        return args[args.index(name) + 1]
    if default is None:
        raise SystemExit(f"missing {name}")
    return default


def cmd_image(args):
    elf = Elf32(args[0])
    image = flash_image(elf)
    if option(args, "--board") == "rp2040":
        image = patch_boot2_crc(image)
    with open(option(args, "--bin"), "wb") as f:
        f.write(image)
    if "--uf2" in args:
        family = option(args, "--family")
        family_id = UF2_FAMILIES[family] if family in UF2_FAMILIES else int(family, 0)
        with open(option(args, "--uf2"), "wb") as f:
            f.write(to_uf2(image, FLASH_BASE, family_id))
    return 0


def cmd_size(args):
    flash, ram = sizes(Elf32(args[0]))
    print(json.dumps({"firmware": option(args, "--firmware"), "board": option(args, "--board"),
                      "flash_bytes": flash, "ram_bytes": ram}, separators=(",", ":")))
    max_flash, max_ram = int(option(args, "--max-flash", "0")), int(option(args, "--max-ram", "0"))
    over = []
    if max_flash and flash > max_flash:
        over.append(f"flash {flash} > {max_flash}")
    if max_ram and ram > max_ram:
        over.append(f"static RAM {ram} > {max_ram}")
    if over:
        print("FAIL: " + ", ".join(over), file=sys.stderr)
        return 1
    return 0


def cmd_selftest(_args):
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7  # the catalogued CRC-32/MPEG-2 check value
    uf2 = to_uf2(b"\x01" * 300, FLASH_BASE, UF2_FAMILIES["rp2040"])
    assert len(uf2) == 1024 and struct.unpack_from("<I", uf2, 12)[0] == FLASH_BASE
    assert struct.unpack_from("<I", uf2, 512 + 12)[0] == FLASH_BASE + 256
    print("selftest ok")
    return 0


def main(argv):
    commands = {"image": cmd_image, "size": cmd_size, "selftest": cmd_selftest}
    if not argv or argv[0] not in commands:
        raise SystemExit(__doc__)
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
