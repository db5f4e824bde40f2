// What both emulator runners share: splitting the firmware's console into lines, echoing them,
// and turning them into a verdict.
//
// The firmware prints PASS (or FAIL ...) and its figures as one JSON object per line. A check
//   SELECTOR:CONDITIONS   e.g.  demo=timer_test,mode=fast_io,summary=true:median_ms<=101,max_ms<=105
// applies CONDITIONS (FIELD op NUMBER, op one of <= >= < > ==) to every JSON line whose fields
// match SELECTOR (key=value, compared as text); at least one line must match.

export class Verdict {
  constructor({ expect = 'PASS', fail = 'FAIL', checks = [], echo = true } = {}) {
    this.expect = expect;
    this.fail = fail;
    this.checks = checks.map(parseCheck);
    this.echo = echo;
    this.partial = '';
    this.sawExpect = false;
    this.sawFail = null;
    this.objects = [];
  }

  /** Feeds console text; returns the completed lines. */
  feed(text) {
    const lines = [];
    this.partial += text;
    let newline;
    while ((newline = this.partial.indexOf('\n')) >= 0) {
      const line = this.partial.slice(0, newline).replace(/\r$/, '');
      this.partial = this.partial.slice(newline + 1);
      this.line(line);
      lines.push(line);
    }
    return lines;
  }

  line(line) {
    if (this.echo) process.stdout.write(line + '\n');
    if (line.startsWith('{')) {
      try {
        this.objects.push(JSON.parse(line));
      } catch {
        this.sawFail ??= `unparsable JSON line: ${line}`;
      }
    }
    if (this.fail && line.includes(this.fail)) this.sawFail ??= line;
    if (line.includes(this.expect)) this.sawExpect = true;
  }

  /** Problems found, or an empty list when the run passed. */
  problems() {
    const problems = [];
    if (this.sawFail) problems.push(`firmware reported: ${this.sawFail}`);
    if (!this.sawExpect) problems.push(`no "${this.expect}" line`);
    for (const check of this.checks) {
      const matching = this.objects.filter((o) =>
        check.selector.every(([key, value]) => String(o[key]) === value));
      if (matching.length === 0) problems.push(`check ${check.text}: no JSON line matches`);
      for (const o of matching) {
        for (const [field, op, limit] of check.conditions) {
          const value = Number(o[field]);
          if (!(field in o) || !compare(value, op, limit)) {
            problems.push(`check ${check.text}: ${field}=${o[field]} fails ${op} ${limit}`);
          }
        }
      }
    }
    return problems;
  }
}

function parseCheck(text) {
  const colon = text.indexOf(':');
  if (colon < 0) throw new Error(`bad --check ${text}: expected SELECTOR:CONDITIONS`);
  const selector = text.slice(0, colon).split(',').filter(Boolean).map((pair) => {
    const eq = pair.indexOf('=');
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  });
  const conditions = text.slice(colon + 1).split(',').map((condition) => {
    const m = condition.trim().match(/^(\w+)\s*(<=|>=|==|<|>)\s*(-?[\d.]+)$/);
    if (!m) throw new Error(`bad condition "${condition}" in --check ${text}`);
    return [m[1], m[2], Number(m[3])];
  });
  return { text, selector, conditions };
}

function compare(value, op, limit) {
  switch (op) {
    case '<=': return value <= limit;
    case '>=': return value >= limit;
    case '<': return value < limit;
    case '>': return value > limit;
    default: return value === limit;
  }
}

/** Parses the options both runners take; returns [options, positional arguments]. */
export function parseArgs(argv, extra = {}) {
  const options = { checks: [], expect: 'PASS', fail: 'FAIL', timeoutMs: 100000, maxSimMs: 60000,
                    ...extra };
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => argv[++i];
    if (arg === '--check') options.checks.push(value());
    else if (arg === '--expect') options.expect = value();
    else if (arg === '--fail') options.fail = value();
    else if (arg === '--timeout-ms') options.timeoutMs = Number(value());
    else if (arg === '--max-sim-ms') options.maxSimMs = Number(value());
    else if (arg === '--expect-exit') options.expectExit = Number(value());
    else if (arg.startsWith('--') && arg.slice(2) in extra) {
      options[arg.slice(2)] = typeof extra[arg.slice(2)] === 'boolean' ? true : value();
    } else positional.push(arg);
  }
  return [options, positional];
}
