#!/usr/bin/env python3
"""Runs one conformance port and compares its stdout byte for byte with the expected output.

Usage: compare.py PROGRAM EXPECTED [PATCH] [-- ARGUMENT...]

EXPECTED is MicroPython's .exp (or CPython's output of the same script where MicroPython has
none). PATCH, if given, is a unified diff applied to EXPECTED first: it holds only the lines
that differ because of a deliberate difference, with the reason in its header. The program's
stderr passes through (the default exception handler logs there). On a mismatch the unified
diff is printed and the exit status is 1; the program's own failure exits 1 too. The
arguments after "--" go to the program (`conformance NAME` runs the port NAME).
"""

import difflib
import re
import subprocess
import sys

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def apply_patch(lines, patch_text):
    """Applies a unified diff to `lines`; every context and removed line must match exactly."""
    result = []
    position = 0  # next line of `lines` not yet copied
    patch_lines = patch_text.splitlines(keepends=True)
    index = 0
    while index < len(patch_lines):
        match = HUNK.match(patch_lines[index])
        index += 1
        if not match:
            continue  # the header: its reason, and the ---/+++ lines
        start = int(match.group(1)) - (0 if match.group(2) == "0" else 1)
        if start < position:
            sys.exit(f"patch: hunk at line {start + 1} overlaps the previous one")
        result.extend(lines[position:start])
        position = start
        while index < len(patch_lines) and not patch_lines[index].startswith("@@"):
            line = patch_lines[index]
            index += 1
            tag, text = line[:1], line[1:]
            if tag == "\\":
                continue  # "\ No newline at end of file"
            if tag in (" ", "-"):
                if position >= len(lines) or lines[position] != text:
                    sys.exit(f"patch: line {position + 1} of the expected output does not match {line!r}")
                position += 1
                if tag == " ":
                    result.append(text)
            elif tag == "+":
                result.append(text)
            else:
                sys.exit(f"patch: unexpected line {line!r}")
    result.extend(lines[position:])
    return result


def main():
    args, program_args = sys.argv[1:], []
    if "--" in args:
        split = args.index("--")
        args, program_args = args[:split], args[split + 1:]
    if len(args) not in (2, 3):
        sys.exit(__doc__)
    program, expected_path = args[0], args[1]
    with open(expected_path, encoding="utf-8") as file:
        expected = file.read().splitlines(keepends=True)
    if len(args) == 3:
        with open(args[2], encoding="utf-8") as file:
            expected = apply_patch(expected, file.read())
    run = subprocess.run([program] + program_args, stdout=subprocess.PIPE, check=False)
    actual = run.stdout.decode("utf-8", errors="replace").splitlines(keepends=True)
    if actual != expected:
        sys.stdout.writelines(
            difflib.unified_diff(expected, actual, fromfile="expected", tofile="actual"))
        print("\nconformance: output differs from the expected output")
        return 1
    if run.returncode != 0:
        print(f"conformance: the output matches but the program exited with {run.returncode}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
