#!/usr/bin/env node
// Runs an RP2040 firmware in the rp2040js emulator (npm, pinned in hw/package.json) and turns
// its console into an exit status.
//
//   node hw/tools/run-rp2040.mjs FW.bin|FW.uf2 [--boot2] [--check SEL:COND]... [--expect TEXT]
//        [--fail TEXT] [--expect-exit N] [--max-sim-ms N] [--timeout-ms N] [--uart-input TEXT]
//        [--uart1-loopback] [--gpio-toggle PIN:PERIOD_MS]
//
// The firmware's UART0 lines go to stdout as they come (its JSON figures among them); the
// runner's own notes go to stderr. Exit 0 when the firmware ended with BKPT #0 (hal::exit(0)),
// printed --expect (default PASS) and no --fail line (default FAIL), and every --check holds.
// --uart1-loopback wires UART1's TX to its RX as a jumper from GPIO4 to GPIO5 would (uart_test).
// --gpio-toggle drives input PIN low/high alternately every PERIOD_MS of simulated time
// (gpio_irq_test), first at PERIOD_MS.
//
// rp2040js facts this relies on: it ships no bootrom, so the image is loaded after
// construction (reset would refill flash with 0xff) and the runner does what the bootrom would;
// its clock is simulated (8 ns per cycle, whatever clk_sys is programmed to), so figures are
// exact and repeatable; a TIMER alarm may fire up to 1 µs early (the firmware re-checks time);
// and WFI executed while an enabled interrupt is already pending never wakes, so this runner
// drives the CPU itself instead of the library's Simulator.execute() loop.
import { readFileSync } from 'node:fs';
import { Simulator, ConsoleLogger, LogLevel } from 'rp2040js';
import { Verdict, parseArgs } from './verdict.mjs';

const [options, [imagePath]] = parseArgs(process.argv.slice(2),
  { boot2: false, 'uart-input': '', 'uart1-loopback': false, 'gpio-toggle': '' });
if (!imagePath) {
  console.error('usage: run-rp2040.mjs FW.bin|FW.uf2 [--boot2] [--check SEL:COND]...');
  process.exit(2);
}
const note = (text) => process.stderr.write(`[run-rp2040] ${text}\n`);

const FLASH = 0x10000000, SRAM = 0x20000000, BOOT2_SRAM = 0x20041f00, STACK_TOP = 0x20042000;
// The Simulator only for its clock and chip; its execute() loop is not used (see above).
const simulator = new Simulator();
const clock = simulator.clock;
const mcu = simulator.rp2040;
const core = mcu.core;
// Warnings (an unimplemented register) are printed, except for the light-sleep registers that
// rp2040js does not model (CLOCKS SLEEP_EN0/1 at 0xa8/0xac, SCB SCR at 0xd10): writing them is
// right on silicon and harmless here. Errors end the run through the exception they raise.
const modelled = new ConsoleLogger(LogLevel.Warn, true);
const sleepRegisters = /^Unimplemented peripheral write to 0x(a8|ac|d10):/;
let ignoredWrites = 0;
mcu.logger = {
  debug: (component, message) => modelled.debug(component, message),
  info: (component, message) => modelled.info(component, message),
  warn: (component, message) => {
    if (sleepRegisters.test(message)) ignoredWrites++;
    else modelled.warn(component, message);
  },
  error: (component, message) => modelled.error(component, message),
};

// ---- Load: after construction, into the emulator's flash array ------------------------------
function loadUf2(data) {
  for (let offset = 0; offset + 512 <= data.length; offset += 512) {
    const block = new DataView(data.buffer, data.byteOffset + offset, 512);
    if (block.getUint32(0, true) !== 0x0a324655 || block.getUint32(4, true) !== 0x9e5d5157 ||
        block.getUint32(508, true) !== 0x0ab16f30) throw new Error(`bad UF2 block at ${offset}`);
    if (block.getUint32(28, true) !== 0xe48bff56) throw new Error('UF2 family is not RP2040');
    const address = block.getUint32(12, true), size = block.getUint32(16, true);
    mcu.flash.set(data.subarray(offset + 32, offset + 32 + size), address - FLASH);
  }
}
const image = readFileSync(imagePath);
if (imagePath.endsWith('.uf2')) loadUf2(image); else mcu.flash.set(image, 0);

// ---- Boot: what the bootrom does --------------------------------------------------------------
function crc32Mpeg2(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte << 24;
    for (let k = 0; k < 8; k++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
  }
  return crc >>> 0;
}
if (options.boot2) {
  // Datasheet 2.8.1.3: copy boot2 to the top of SRAM5, check its CRC, call it with lr = 0.
  const boot2 = mcu.flash.subarray(0, 256);
  const stored = new DataView(boot2.buffer, boot2.byteOffset).getUint32(252, true);
  const computed = crc32Mpeg2(boot2.subarray(0, 252));
  if (stored !== computed) {
    note(`boot2 CRC mismatch: stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)}`);
    process.exit(1);
  }
  mcu.sram.set(boot2, BOOT2_SRAM - SRAM);
  core.SP = STACK_TOP;
  core.LR = 0;
  core.PC = BOOT2_SRAM;
} else {
  core.VTOR = FLASH + 0x100;  // what boot2 does; reset() then loads SP and PC from there
  core.reset();
}

// ---- Console and verdict -------------------------------------------------------------------
const verdict = new Verdict(options);
let finished = false;
const started = process.hrtime.bigint();
let instructions = 0, sleptNanos = 0;
function finish(code, why) {
  if (finished) return;
  finished = true;
  verdict.feed('\n');
  const problems = verdict.problems();
  const expectedExit = options.expectExit ?? 0;
  if (code !== expectedExit) problems.unshift(`${why} (expected exit ${expectedExit})`);
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  note(`${why}; simulated ${(clock.nanos / 1e6).toFixed(3)} ms ` +
       `(${(sleptNanos / 1e6).toFixed(3)} ms in WFI), ${instructions} instructions, ` +
       `wall ${wallMs.toFixed(0)} ms; ${ignoredWrites} writes to unmodelled sleep registers`);
  for (const problem of problems) note(`FAIL: ${problem}`);
  note(problems.length ? 'verdict FAIL' : 'verdict PASS');
  process.exit(problems.length ? 1 : 0);
}
mcu.uart[0].onByte = (byte) => verdict.feed(String.fromCharCode(byte));
mcu.onBreak = (code) => finish(code, `firmware stopped with BKPT #${code}`);
setTimeout(() => finish(-1, `wall-clock timeout ${options.timeoutMs} ms`), options.timeoutMs).unref();
for (const ch of options['uart-input']) mcu.uart[0].feedByte(ch.charCodeAt(0));

// ---- UART1 loopback ------------------------------------------------------------------------
// rp2040js hands each byte written to UARTDR to onByte at once and ignores the PL011's own
// loopback bit (CR.LBE). A byte on a wire takes 10 bit times (start, 8 data, stop): each is fed
// back into the RX FIFO that long after the previous one has left, on a simulated-clock alarm,
// so the RX interrupt comes when it would on silicon (and ends a WFI, as a real byte would).
function loopBack(uart) {
  const pending = [];  // {value, at}: bytes on the wire, in order
  let lineFreeAt = 0;  // when the last queued byte has been sent, in simulated ns
  let armed = false;
  const alarm = clock.createAlarm(() => {
    armed = false;
    uart.feedByte(pending.shift().value);
    if (pending.length) arm();
  });
  function arm() {
    armed = true;
    alarm.schedule(Math.max(0, pending[0].at - clock.nanos));
  }
  uart.onByte = (value) => {
    const byteNanos = 10 * 1e9 / uart.baudRate;
    lineFreeAt = Math.max(lineFreeAt, clock.nanos) + byteNanos;
    pending.push({ value, at: lineFreeAt });
    if (!armed) arm();
  };
}
if (options['uart1-loopback']) loopBack(mcu.uart[1]);

// ---- GPIO input driven from outside ------------------------------------------------------------
// A simulated-clock alarm, so the edges come at exact simulated times and end a WFI as a real
// edge's interrupt would.
function toggle(spec) {
  const [pin, periodMs] = spec.split(':').map(Number);
  if (!(pin >= 0 && pin < mcu.gpio.length && periodMs > 0)) throw new Error(`bad --gpio-toggle ${spec}`);
  let level = false;
  const alarm = clock.createAlarm(() => {
    level = !level;
    mcu.gpio[pin].setInputValue(level);
    alarm.schedule(periodMs * 1e6);
  });
  alarm.schedule(periodMs * 1e6);
}
if (options['gpio-toggle']) toggle(options['gpio-toggle']);

// ---- Run ---------------------------------------------------------------------------------------
const NANOS_PER_CYCLE = 8;  // rp2040js charges every cycle at 125 MHz
const maxSimNanos = options.maxSimMs * 1e6;
function slice() {
  try {
    for (let i = 0; i < 200000 && !finished; i++) {
      if (core.waiting && (core.pendingInterrupts & core.enabledInterrupts)) {
        core.waiting = false;  // the WFI-with-pending-interrupt quirk: WFI must return at once
      }
      if (core.waiting) {
        const next = clock.nanosToNextAlarm;
        if (!(next > 0)) return finish(-1, 'WFI with no alarm pending: the firmware would sleep forever');
        clock.tick(next);  // jump to the next alarm: sleeping costs no wall time
        sleptNanos += next;
      } else {
        clock.tick(core.executeInstruction() * NANOS_PER_CYCLE);
        instructions++;
      }
      if (clock.nanos > maxSimNanos) return finish(-1, `simulated-time limit ${options.maxSimMs} ms`);
    }
  } catch (error) {
    return finish(-1, `emulator error: ${error.message}`);
  }
  if (!finished) setImmediate(slice);
}
slice();
