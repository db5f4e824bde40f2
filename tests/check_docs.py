#!/usr/bin/env python3
"""Builds the API reference as `ninja docs` does, into a temporary directory, and fails on any
Doxygen warning (an undocumented public name, a broken reference): the reference must stay
complete. Exits 77 (skip) when Doxygen was not found at configure time.

usage: check_docs.py [DOXYGEN DOXYFILE]     DOXYFILE: the docs target's, docs/Doxyfile in the build
"""
import subprocess
import sys
import tempfile

if len(sys.argv) != 3:
    print("doxygen not found at configure time: nothing to check", file=sys.stderr)
    sys.exit(77)
doxygen, doxyfile = sys.argv[1], sys.argv[2]
with open(doxyfile, encoding="utf-8") as handle:
    config = handle.read()
with tempfile.TemporaryDirectory() as output:
    # A later assignment wins: the docs target's configuration, written elsewhere.
    config += f'\nOUTPUT_DIRECTORY = "{output}"\nWARN_LOGFILE =\n'
    result = subprocess.run([doxygen, "-"], input=config, capture_output=True, text=True,
                            cwd=output, timeout=300)
messages = (result.stdout + result.stderr).strip()
if result.returncode != 0 or messages:
    print(f"doxygen exited with {result.returncode}:\n{messages}", file=sys.stderr)
    sys.exit(1)
