#!/usr/bin/env python3
"""Runs a program and checks that every line it prints on stdout is one JSON object, and that
stderr contains a given text (what the library logged), or with a leading "!" does not.

usage: check_json_stdout.py [!]STDERR_TEXT PROGRAM [ARGS...]
"""
import json
import subprocess
import sys

expected, command = sys.argv[1], sys.argv[2:]
result = subprocess.run(command, capture_output=True, text=True, timeout=120)
failed = False
if result.returncode != 0:
    print(f"exit status {result.returncode}", file=sys.stderr)
    failed = True
lines = result.stdout.splitlines()
if not lines:
    print("no output on stdout", file=sys.stderr)
    failed = True
for number, line in enumerate(lines, 1):
    try:
        if not isinstance(json.loads(line), dict):
            raise ValueError("not an object")
    except ValueError as error:
        print(f"stdout line {number} is not a JSON object ({error}): {line!r}", file=sys.stderr)
        failed = True
if expected.startswith("!"):
    if expected[1:] in result.stderr:
        print(f"stderr has {expected[1:]!r}:\n{result.stderr}", file=sys.stderr)
        failed = True
elif expected not in result.stderr:
    print(f"stderr lacks {expected!r}; it was:\n{result.stderr}", file=sys.stderr)
    failed = True
sys.exit(1 if failed else 0)
