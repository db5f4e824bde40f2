#!/usr/bin/env node
// Runs a Cortex-M33 firmware on QEMU's mps2-an505 board (the RP2350's instruction set) and turns
// its console into an exit status, like run-rp2040.mjs.
//
//   node hw/tools/run-qemu.mjs FW.elf [--check SEL:COND]... [--expect TEXT] [--fail TEXT]
//        [--expect-exit N] [--timeout-ms N]
//
// The console is the board's CMSDK UART0 (QEMU's -serial stdio, which -nographic implies); the
// exit status comes from ARM semihosting SYS_EXIT_EXTENDED (hal::exit). -icount shift=6 runs the
// CPU at one instruction per 64 ns of virtual time and sleep=off lets WFI skip straight to the
// next timer event: virtual time is deterministic and idle time costs no wall time.
import { spawn } from 'node:child_process';
import { Verdict, parseArgs } from './verdict.mjs';

const [options, [elf]] = parseArgs(process.argv.slice(2), { qemu: 'qemu-system-arm' });
if (!elf) {
  console.error('usage: run-qemu.mjs FW.elf [--check SEL:COND]...');
  process.exit(2);
}
const note = (text) => process.stderr.write(`[run-qemu] ${text}\n`);

const args = ['-M', 'mps2-an505', '-nographic', '-monitor', 'none', '-serial', 'stdio',
  '-semihosting-config', 'enable=on,target=native', '-icount', 'shift=6,sleep=off',
  '-kernel', elf];
const verdict = new Verdict(options);
const started = Date.now();
const qemu = spawn(options.qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
qemu.stdout.setEncoding('latin1');
qemu.stdout.on('data', (text) => verdict.feed(text));
qemu.stderr.setEncoding('latin1');
qemu.stderr.on('data', (text) => process.stderr.write(text));
const timer = setTimeout(() => {
  note(`wall-clock timeout ${options.timeoutMs} ms`);
  qemu.kill('SIGKILL');
}, options.timeoutMs);

qemu.on('close', (code, signal) => {
  clearTimeout(timer);
  verdict.feed('\n');
  const problems = verdict.problems();
  const expectedExit = options.expectExit ?? 0;
  if (code !== expectedExit) {
    problems.unshift(`QEMU exited with ${signal ?? code} (expected ${expectedExit})`);
  }
  note(`exit ${signal ?? code}; wall ${Date.now() - started} ms`);
  for (const problem of problems) note(`FAIL: ${problem}`);
  note(problems.length ? 'verdict FAIL' : 'verdict PASS');
  process.exit(problems.length ? 1 : 0);
});
