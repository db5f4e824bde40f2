#!/usr/bin/python3
"""Renders docs/benchmarks.md and its plots (docs/img/*.png) from the benchmarks' --json output.

  bench/report.py                       re-render from the stored JSON (docs/data/*.jsonl)
  bench/report.py --run build           run every benchmark and demo of build/ with --json
                                        into docs/data/, then render
  bench/report.py --run build --quick   the same, each benchmark in its quick mode
  bench/report.py --run build --only switch,wake   run some again, keep the others' data
  bench/report.py --compare             run bench/compare (f20b98a against the work tree)
                                        into docs/data/compare.jsonl, then render

Needs Debian's python3-matplotlib (apt-get install python3-matplotlib); the shebang names
/usr/bin/python3 so that a python3 from elsewhere on PATH does not hide it.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DATA = DOCS / "data"
IMAGES = DOCS / "img"
RUN_INFO = DATA / "run.json"

# Every run: the data file it appends to, the program (relative to the build directory), its
# arguments, and whether it has a --quick mode. The demos run on both backends.
RUNS = [
    ("timer_test", "examples/timer_test", ["--backend", "uring"], False),
    ("timer_test", "examples/timer_test", ["--backend", "epoll"], False),
    ("tsf_test", "examples/tsf_test", ["--source", "thread", "--backend", "uring"], False),
    ("tsf_test", "examples/tsf_test", ["--source", "thread", "--backend", "epoll"], False),
    ("switch", "bench/switch", [], True),
    # Three interleaved rounds: a lateness p99 is a tail, and one round's tail moves with
    # whatever else the host runs in that round.
    ("timers", "bench/timers", ["--rounds", "3"], True),
    ("wake", "bench/wake", [], True),
    ("memory", "bench/memory", [], True),
    ("memory", "bench/memory", ["--wait", "read"], True),
    ("power", "bench/power", [], True),
    ("echo", "bench/echo", [], True),
]


# ---- Running ----------------------------------------------------------------------------


def run_benchmarks(build, quick, only, niceness):
    DATA.mkdir(parents=True, exist_ok=True)
    names = {name for name, *_ in RUNS}
    selected = names if not only else set(only)
    unknown = selected - names
    if unknown:
        sys.exit(f"report.py: unknown benchmark(s): {', '.join(sorted(unknown))}")
    for name in selected:
        (DATA / f"{name}.jsonl").unlink(missing_ok=True)
    load_before = os.getloadavg()[0]
    for name, program, args, has_quick in RUNS:
        if name not in selected:
            continue
        command = ["nice", "-n", str(niceness), str(Path(build) / program), "--json", *args]
        if quick and has_quick:
            command.append("--quick")
        print("running", " ".join(command[3:]), file=sys.stderr)
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        with open(DATA / f"{name}.jsonl", "a") as out:
            out.write(output)
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": quick,
        "nice": niceness,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "commit": git_describe(),
        "build": build_options(build),
        "benchmarks": sorted(selected),
    }
    previous = json.loads(RUN_INFO.read_text()) if RUN_INFO.exists() and only else {}
    runs = previous.get("runs", {}) if only else {}
    for name in selected:
        runs[name] = info
    RUN_INFO.write_text(json.dumps({"runs": runs}, indent=1, sort_keys=True) + "\n")


def run_compare(old, quick, niceness):
    """bench/compare --json into docs/data/compare.jsonl, replaced only when the run succeeds."""
    command = [str(ROOT / "bench" / "compare"), "--json", "--nice", str(niceness)]
    if old:
        command += ["--old", old]
    if quick:
        command.append("--quick")
    print("running", " ".join(command[1:]), file=sys.stderr)
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "compare.jsonl").write_text(output)


def build_options(build):
    """'release, LTO' or the like, from Meson's introspection of the build directory."""
    try:
        options = json.loads((Path(build) / "meson-info" / "intro-buildoptions.json").read_text())
    except (OSError, ValueError):
        return "unknown build"
    values = {option["name"]: option["value"] for option in options}
    lto = "LTO" if values.get("b_lto") else "no LTO"
    return f"{values.get('buildtype', '?')}, {lto}"


def git_describe():
    """The commit measured, "-dirty" if the tree differs from it outside docs/ (this script
    rewrites docs/ between runs, which changes nothing that is measured)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], check=True,
                              stdout=subprocess.PIPE, text=True).stdout.strip()
    try:
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs")
        return git("describe", "--always") + ("-dirty" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---- Reading ----------------------------------------------------------------------------


def load(name):
    path = DATA / f"{name}.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def number(value, digits=3):
    """A figure for a table: '—' when absent, thousands separated, `digits` significant."""
    if value is None:
        return "—"
    if isinstance(value, int) or abs(value) >= 10 ** digits:
        return f"{round(value):,}"
    return f"{value:.{digits}g}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(value, reference):
    if value is None or not reference:
        return "—"
    return f"{value / reference:.2f}×"


def save(figure, name):
    IMAGES.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(IMAGES / name, dpi=110)
    plt.close(figure)
    return f"![{name}](img/{name})"


def grouped_bars(axis, groups, series, values, log=False):
    """Bars for values[(group, series)], one cluster per group."""
    width = 0.8 / max(len(series), 1)
    for index, name in enumerate(series):
        heights = [values.get((group, name)) or 0 for group in groups]
        positions = [g + index * width - 0.4 + width / 2 for g in range(len(groups))]
        axis.bar(positions, heights, width, label=name)
    axis.set_xticks(range(len(groups)))
    axis.set_xticklabels([str(group) for group in groups])
    if log:
        axis.set_yscale("log")
    axis.legend(fontsize="small")
    axis.grid(axis="y", alpha=0.3)


# ---- Sections ---------------------------------------------------------------------------


def section_demos():
    out = ["## The seed's demos: `timer_test` and `tsf_test`", """
What they compare: round-robin against fast-I/O scheduling (`roundrobin(false)`), each demo
running both modes one after the other, on both backends.
- `timer_test`: a nominal 100 ms timer written as a pollable device (asyncio_alt's
  `timer_test.py`) while ten tasks each block 5 ms and yield. The seed measured 155 ms
  (round-robin) against ~102 ms (fast I/O) on an RP2350.
- `tsf_test --source thread`: how long after a `ThreadSafeFlag::set()` from a second thread
  the waiting task runs, with the same ten blocking tasks.

Commands: `build/examples/timer_test --json --backend uring|epoll`,
`build/examples/tsf_test --source thread --json --backend uring|epoll`. Targets in fast-I/O
mode: `timer_test` median ≤ 102 ms and max ≤ 106 ms; `tsf_test` median ≤ 3 ms and max ≤ 5.5 ms
(one 5 ms block, at most, stands between a set and the waiter). The blocks are busy-waits on
the wall clock, like MicroPython's `time.sleep_ms(5)`: on a loaded machine preemption
stretches them, and the figures with them.
"""]
    rows, samples = [], {}
    for demo in ("timer_test", "tsf_test"):
        for record in load(demo):
            key = (demo, record.get("backend"), record.get("mode"))
            if record.get("summary"):
                rows.append([f"`{demo}`", record.get("backend"), record.get("mode"),
                             number(record.get("median_ms")), number(record.get("min_ms")),
                             number(record.get("max_ms"))])
            elif "ms" in record:
                samples.setdefault(key, []).append(record["ms"])
    if not rows:
        return out + ["No data yet."]
    out.append(table(["demo", "backend", "mode", "median ms", "min ms", "max ms"], rows))
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, demo in zip(axes, ("timer_test", "tsf_test")):
        keys = sorted(key for key in samples if key[0] == demo)
        if not keys:
            continue
        axis.boxplot([samples[key] for key in keys], showfliers=True)
        axis.set_xticks(range(1, len(keys) + 1))
        axis.set_xticklabels([f"{key[1]}\n{key[2]}" for key in keys], fontsize="small")
        axis.set_title(f"{demo}: latency per iteration")
        axis.set_ylabel("ms")
        if demo == "tsf_test":
            axis.set_yscale("log")  # fast I/O is ~1000x below round-robin
        axis.grid(axis="y", alpha=0.3)
    out.append(save(figure, "demos_latency.png"))
    return out


def section_switch():
    out = ["## `bench/switch`: task switches", """
What it compares: the switch rate of N tasks looping on `sleep_ms(0)` in fast-I/O mode, on
each backend, against the same workload on Boost.Fiber (`this_fiber::yield`) and Boost.Asio
(handlers re-posting themselves). Each implementation runs `--repeat` times, interleaved;
the median rate is reported. `*_consumer` is the same program built as a consumer without LTO
would build it. Command: `build/bench/switch --json`. Targets: at least 2× Boost.Fiber at 10
tasks and 1.5× at 1,000, in the in-tree build and in the consumer build.
"""]
    records = load("switch")
    if not records:
        return out + ["No data yet."]
    fiber = {r["tasks"]: r["switches_per_sec"] for r in records if r["impl"] == "boost_fiber"}
    rows = [[r["impl"], r["tasks"], number(r["switches_per_sec"] / 1e6) + " M",
             number(1e9 / r["switches_per_sec"]), ratio(r["switches_per_sec"], fiber.get(r["tasks"]))]
            for r in records]
    out.append(table(["impl", "tasks", "switches/s", "ns/switch", "vs Boost.Fiber"], rows))
    groups = sorted({r["tasks"] for r in records})
    series = list(dict.fromkeys(r["impl"] for r in records))
    values = {(r["tasks"], r["impl"]): r["switches_per_sec"] / 1e6 for r in records}
    figure, axis = plt.subplots(figsize=(7, 3.5))
    grouped_bars(axis, groups, series, values)
    axis.set_xlabel("tasks")
    axis.set_ylabel("million switches/s")
    out.append(save(figure, "switch.png"))
    return out


def section_timers():
    out = ["## `bench/timers`: timer precision and cost", """
What it compares: 1,000 tasks looping on `sleep_ms(random 1..50)`, on each backend, against a
raw `timerfd` serving the same random schedule from one thread. Lateness is the wake time
minus the due time; CPU is the whole process's, divided by the task wake-ups; loop wake-ups
are the process's voluntary context switches. The loop's timer grid (250 µs by default,
`--timer-resolution-us`; `grid µs` below) trades lateness for fewer wake-ups. Three rounds,
interleaved; each figure is the median of the rounds. Command:
`build/bench/timers --json --rounds 3`. Targets, against the raw peer in the same run: a
lateness p99 of at most the grid plus the peer's p99 (the grid's delay is by design; what the
loop adds beyond it must be no worse than the machine's own lateness), and at most 0.5× the
peer's CPU per wake-up.
"""]
    records = load("timers")
    if not records:
        return out + ["No data yet."]
    raw = next((r for r in records if r["impl"] == "timerfd_raw"), None)
    rows = []
    for r in records:
        p99_bound = cpu_ratio = "—"
        if raw and r is not raw:
            bound = r.get("timer_grid_us", 0) + raw["lateness_p99_us"]
            p99_bound = f"{number(bound)} ({'met' if r['lateness_p99_us'] <= bound else 'NOT met'})"
            ratio = r["cpu_us_per_wakeup"] / raw["cpu_us_per_wakeup"]
            cpu_ratio = f"{ratio:.2f}× ({'met' if ratio <= 0.5 else 'NOT met'})"
        rows.append([r["impl"], number(r.get("wakeups")), number(r.get("cpu_us_per_wakeup")),
                     cpu_ratio, number(r.get("lateness_p50_us")),
                     number(r.get("lateness_p99_us")), p99_bound,
                     number(r.get("timer_grid_us")), number(r.get("loop_wakeups_per_sec"))])
    out.append(table(["impl", "task wake-ups", "CPU µs per wake-up", "CPU vs raw",
                      "lateness p50 µs", "lateness p99 µs", "p99 bound: grid + raw p99",
                      "grid µs", "loop wake-ups/s"], rows))
    figure, axis = plt.subplots(figsize=(7, 3.5))
    values = {}
    for r in records:
        values[("p50", r["impl"])] = r.get("lateness_p50_us")
        values[("p99", r["impl"])] = r.get("lateness_p99_us")
    grouped_bars(axis, ["p50", "p99"], [r["impl"] for r in records], values, log=True)
    axis.set_ylabel("lateness, µs (log)")
    out.append(save(figure, "timers_lateness.png"))
    return out


def section_wake():
    out = ["## `bench/wake`: ThreadSafeFlag wake-up latency", """
What it compares: the time from `ThreadSafeFlag::set()` on another thread to the waiting task
running, on an otherwise idle loop, on each backend, against the raw peer: an `eventfd` write
waking a thread blocked in `epoll_wait`. The implementations take turns in rounds. Command:
`build/bench/wake --json`. Target: p50 within 1.2× the raw p50 on an idle machine.
"""]
    records = load("wake")
    if not records:
        return out + ["No data yet."]
    raw = next((r["p50_us"] for r in records if r["impl"] == "raw_eventfd_epoll"), None)
    rows = [[r["impl"], number(r["p50_us"]), number(r["p99_us"]), ratio(r["p50_us"], raw)]
            for r in records]
    out.append(table(["impl", "p50 µs", "p99 µs", "p50 vs raw"], rows))
    figure, axis = plt.subplots(figsize=(7, 3.5))
    values = {}
    for r in records:
        values[("p50", r["impl"])] = r["p50_us"]
        values[("p99", r["impl"])] = r["p99_us"]
    grouped_bars(axis, ["p50", "p99"], [r["impl"] for r in records], values)
    axis.set_ylabel("µs from set() to the task running")
    out.append(save(figure, "wake_latency.png"))
    return out


def section_memory():
    out = ["## `bench/memory`: memory per task", """
What it measures: the peak resident memory of N tasks blocked at once (on one `Event`, or in
a long sleep), and the bytes each costs. One backend per process, since the peak never goes
down. Command: `build/bench/memory --json` (100,000 tasks; 10,000 with `--quick`). Target:
100,000 tasks in at most 1 GiB.

With `--wait read`, each task is an idle connection: it has read one 100-byte request from its
socket and waits to read again (5,000 connections, opened one after another; 500 with
`--quick`). `uring_pool` is io_uring with `set_receive_pool(true)`: the sockets receive into
buffers the loop shares rather than each into its own. Command: `build/bench/memory --json
--wait read`.
"""]
    records = load("memory")
    if not records:
        return out + ["No data yet."]
    rows = [[r["impl"], r.get("wait", "event"), number(r["tasks"]),
             number(r["peak_rss_bytes"] / 2 ** 20) + " MiB", number(r["bytes_per_task"])]
            for r in records]
    out.append(table(["impl", "waiting on", "tasks", "peak RSS", "bytes per task"], rows))
    return out


def section_power():
    out = ["## `bench/power`: low-power mode", """
What it compares: each workload in normal and in low-power mode (`power_mode(true)`), each in
its own process under `tools/power_proxy`, which counts wake-ups (voluntary context switches)
and CPU time through a cgroup:
- `blink`: one task toggling every second;
- `timers`: 100 tasks sleeping periods of 1–50 ms;
- `pipe_1khz`: a pipe written at 1 kHz by another process, read by a task;
- `idle`: one task waiting on a `ThreadSafeFlag` nobody sets;
- `tsf_1khz`: a `ThreadSafeFlag` set at 1 kHz by another thread (the loop thread's own figures);
- `vm_wake`: the peer the latencies are read against, measured in the same run: a plain thread
  without our loop sleeping to each 20 ms boundary; its latency is how late the machine wakes it.

Latency is how late a sleep returned (`blink`, `timers`), or the time from the write or the
`set()` to the task running. "lost": bytes never read, sets never served. Each mode's median
round is shown, its worst lateness over all rounds. Command: `build/bench/power --json`.
Targets: `blink` at most 1.05 wake-ups/s in both modes, low power using no more CPU than
normal; `idle` at most 0.1 wake-ups/s in both modes; `timers` in low power at most 55
wake-ups/s, at least 20× less CPU than normal, lateness p99 ≤ 20 ms and max ≤ 25 ms (the max
is the 20 ms grid plus how late the machine wakes the loop: compare `vm_wake`); `pipe_1khz`
and `tsf_1khz` in low power at most 55 wake-ups/s with a p99 ≤ 21 ms; nothing lost.
"""]
    records = load("power")
    if not records:
        return out + ["No data yet."]
    rows = [[r["workload"], r["mode"], number(r.get("wakeups_per_sec")),
             number(r.get("cpu_us_per_sec")), number(r.get("latency_p99_ms")),
             number(r.get("latency_max_ms")), number(r.get("lost"))] for r in records]
    out.append(table(["workload", "mode", "wake-ups/s", "CPU µs/s", "p99 latency ms",
                      "max latency ms", "lost"], rows))
    workloads = list(dict.fromkeys(r["workload"] for r in records))
    modes = list(dict.fromkeys(r["mode"] for r in records))
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    wakeups = {(r["workload"], r["mode"]): r.get("wakeups_per_sec") for r in records}
    grouped_bars(axes[0], workloads, modes, wakeups, log=True)
    axes[0].set_title("wake-ups per second")
    latency = {(r["workload"], r["mode"]): r.get("latency_p99_ms") for r in records}
    grouped_bars(axes[1], workloads, modes, latency, log=True)
    axes[1].set_title("p99 latency, ms")
    for axis in axes:
        axis.tick_params(axis="x", labelsize="small")
    out.append(save(figure, "power.png"))
    return out


def section_echo():
    out = ["## `bench/echo`: streams against Boost.Asio", """
What it compares: 64-byte echo requests from one client (io_uring) against servers on a
thread each, taking turns in every round: asyncio on io_uring (`uring`), asyncio on epoll
(`epoll`), a Boost.Asio server of the same shape (`boost_asio`), and asyncio on io_uring with
busy polling, a fixed 200 µs window (`uring_busy_poll`) or an adaptive one
(`uring_adaptive`); the ceiling is `raw_uring`, a liburing server with multishot receive into
provided buffers and no library, and `uring_2loops` is asyncio with two loops on one port
(`SO_REUSEPORT`; the load generator shares the two cores, so it is reported, not targeted).
`uring_pool` is `uring` with `set_receive_pool(true)`: a multishot receive per connection into
buffers the loop shares (less memory per idle connection: see `bench/memory`).
Figures are medians over the rounds. Command: `build/bench/echo --json`. Targets for `uring`:
at 100 and 1,000 connections at least 1.3× Asio's requests/s, a p99 no worse than Asio's, at
most 0.75× Asio's CPU per request and at least 0.85× `raw_uring`'s requests/s; at 1
connection at least Asio's requests/s.
"""]
    records = load("echo")
    points = [r for r in records if r.get("bench") == "echo"]
    if not points:
        return out + ["No data yet."]
    by = {(r["connections"], r["impl"]): r for r in points}
    rows = []
    for r in points:
        asio = by.get((r["connections"], "boost_asio"), {})
        raw = by.get((r["connections"], "raw_uring"), {})
        rows.append([number(r["connections"]), r["impl"], number(r["requests_per_sec"]),
                     ratio(r["requests_per_sec"], asio.get("requests_per_sec")),
                     ratio(r["requests_per_sec"], raw.get("requests_per_sec")),
                     number(r.get("p99_us")), number(r.get("server_cpu_us_per_request")),
                     ratio(r.get("server_cpu_us_per_request"),
                           asio.get("server_cpu_us_per_request"))])
    out.append(table(["connections", "impl", "requests/s", "vs Asio", "vs raw_uring", "p99 µs",
                      "server CPU µs/request", "CPU vs Asio"], rows))
    figure, axis = plt.subplots(figsize=(8, 3.8))
    groups = sorted({r["connections"] for r in points})
    series = list(dict.fromkeys(r["impl"] for r in points))
    grouped_bars(axis, groups, series,
                 {(r["connections"], r["impl"]): r["requests_per_sec"] for r in points})
    axis.set_xlabel("connections")
    axis.set_ylabel("requests/s")
    out.append(save(figure, "echo_throughput.png"))
    if any(r["requests_per_sec"] == 0 for r in points):
        out.append("A 0 means that no request completed inside the measuring window: `--quick` "
                   "measures for 0.15 s after a 0.05 s warm-up, less than 1,000 connections may "
                   "take to come round once on a loaded machine. A full run measures for 0.6 s "
                   "per round.")
    out += section_echo_under_load(records)
    return out


def section_echo_under_load(records):
    out = ["### Fast I/O under load", """
`echo_under_load`: echo latency on the asyncio server while ten tasks each busy-wait 1 ms then
`sleep_ms(0)`, round-robin against fast I/O; six connections, each pausing a random 20–30 ms
between requests. The floor (`busy_poll_floor`) is a Boost.Asio server spinning on `poll()`
in the same run: what the machine itself adds. `write_nocopy`: heap allocations per
steady-state `write(buf, {.copy = false}); drain();` (the worst backend). Targets: fast-I/O
p99 at most 1.5 ms; zero allocations per write.
"""]
    loaded = [r for r in records if r.get("bench") == "echo_under_load"]
    if loaded:
        rows = [[r["mode"], number(r.get("p50_ms")), number(r.get("p99_ms")),
                 number(r.get("p99_pooled_ms")), number(r.get("p99_over_floor_ms")),
                 r.get("rounds")] for r in loaded]
        out.append(table(["mode", "p50 ms", "p99 ms (median of rounds)", "p99 ms (all samples)",
                          "p99 over the floor, ms", "rounds"], rows))
        figure, axis = plt.subplots(figsize=(7, 3.5))
        values = {}
        for r in loaded:
            values[("p50", r["mode"])] = r.get("p50_ms")
            values[("p99", r["mode"])] = r.get("p99_ms")
        grouped_bars(axis, ["p50", "p99"], [r["mode"] for r in loaded], values)
        axis.set_ylabel("round trip, ms")
        out.append(save(figure, "echo_under_load.png"))
    for r in records:
        if r.get("bench") == "write_nocopy":
            out.append(f"`write_nocopy`: **{r['allocations_per_write']:.3f}** allocations per write.")
    return out


def section_compare():
    out = ["## Old vs new", """
What it compares: an older commit against the current tree, built alike (release, LTO) and
run side by side, taking turns: old, new, old, new... for each benchmark, so that noise
from a shared machine hits both. Each figure is the median over the rounds; "noise" means that
the old and the new rounds' ranges overlap or that the medians are within the tolerance (2%
unless the run line below says otherwise), "better" or "WORSE" that neither holds. `bench/power`
runs one round per invocation, `bench/switch` three repeats, `bench/echo` three rounds; the
demos' figures include each run's CPU time (`process_cpu_ms`, from `wait4`). Command:
`bench/compare --old f20b98a` (a table; `--json` for lines, `--quick` for a short run, about
15–20 minutes in full on two cores), or `bench/report.py --compare` to refresh this section.
Builds go to `/tmp/asyncio-compare/` and are reused by the next run.
"""]
    records = load("compare")
    if not records:
        return out + ["No data yet."]
    first = records[0]
    mode = "**quick mode** (indicative only)" if first.get("quick") else "full mode"
    rounds = f"{first['rounds']} round{'s' if first['rounds'] != 1 else ''}"
    out.append(f"`{first['old_commit']}` (old) against `{first['new_commit']}` (new): "
               f"{first.get('date', '?')}, {mode}, {rounds}, load average "
               f"{first.get('load_before', '?')} before and {first.get('load_after', '?')} "
               f"after, {first.get('cpus', '?')} CPUs, {first.get('build', '?')} builds, "
               f"tolerance {first.get('tolerance', 0):.0%}.")
    verdicts = {}
    for r in records:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    out.append("Figures: " + ", ".join(f"{count} {verdict}"
                                       for verdict, count in sorted(verdicts.items())) + ".")
    def short(value):
        return f"{value / 1e6:.3g} M" if abs(value) >= 1e6 else number(value)

    def spread(r, side):
        low, high = r.get(f"{side}_range") or (None, None)
        if low is None or low == high:
            return short(r[side])
        return f"{short(r[side])} ({short(low)}–{short(high)})"

    rows = [[r["bench"], f"`{r['figure']}`", spread(r, "old"), spread(r, "new"),
             f"{r['ratio']:.2f}×" if r.get("ratio") is not None else "—",
             "**WORSE**" if r["verdict"] == "WORSE" else r["verdict"]] for r in records]
    out.append(table(["bench", "figure", "old: median (range)", "new: median (range)",
                      "new/old", "difference"], rows))
    return out


# ---- The document -----------------------------------------------------------------------


def provenance():
    if not RUN_INFO.exists():
        return ["No run recorded yet: `bench/report.py --run build` makes one."]
    runs = json.loads(RUN_INFO.read_text()).get("runs", {})
    distinct = {json.dumps(info, sort_keys=True) for info in runs.values()}
    lines = ["The figures below come from these runs:", ""]
    for text in sorted(distinct):
        info = json.loads(text)
        names = sorted(name for name, other in runs.items() if other == info)
        mode = "**quick mode** (short runs: indicative only)" if info["quick"] else "full mode"
        lines.append(
            f"- {', '.join(f'`{n}`' for n in names)}: {info['date']}, {mode}, "
            f"`nice -n {info['nice']}`, load average {info['load_before']} before and "
            f"{info['load_after']} after, {info['cpus']} CPUs, kernel {info['kernel']}, "
            f"{info.get('build', 'unknown build')} build of tree `{info['commit']}`.")
    if any(json.loads(text)["quick"] or json.loads(text)["load_before"] >= 1 for text in distinct):
        lines += ["", "Figures from a quick run or a loaded machine show the shape, not the "
                  "values to quote: refresh them with a full run on a quiet machine."]
    return lines


HEADER = """# Benchmarks

<!-- Generated by bench/report.py from docs/data/*.jsonl: edit the script, not this file. -->

Every benchmark compares our loop with a reference measured in the same run, on the same
machine, taking turns, so that noise from a shared machine hits both alike: ratios in one run
are meaningful, absolute numbers move with the host. Every benchmark and demo accepts
`--help` and `--json` (one JSON object per line) and has a short `--quick` mode.

## Refreshing this page

```sh
meson setup build && ninja -C build    # release with LTO; bench/ needs Boost.Fiber
apt-get install python3-matplotlib     # Debian's, once; the script runs /usr/bin/python3
bench/report.py --run build      # run everything with --json into docs/data/, then render
bench/report.py                  # re-render from docs/data/ only
bench/report.py --compare        # an old commit against this tree: see "Old vs new"
```

`--quick` runs each benchmark in its short mode, `--only power,echo` reruns some and keeps
the others' data, `--nice N` runs them under `nice -n N`. Quote figures from the default
release build with LTO: LTO inlines the context switch into the scheduler, and a build
without it switches markedly slower.

The board figures (the seed's demos in the RP2040 emulator, time spent in light sleep and the
modelled current of `blink_power`, flash and RAM sizes) are asserted by the hw test suite
(`hw/run-tests`); see [hw/README.md](../hw/README.md).
"""


def render():
    parts = [HEADER, *provenance(), ""]
    for section in (section_demos, section_switch, section_timers, section_wake, section_memory,
                    section_power, section_echo, section_compare):
        # A blank line between parts: an image right under a table would join the table.
        parts += [part.strip("\n") + "\n" for part in section()]
    (DOCS / "benchmarks.md").write_text("\n".join(parts).rstrip("\n") + "\n")
    print(f"wrote {DOCS / 'benchmarks.md'} and {IMAGES}/*.png", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", metavar="BUILD_DIR", help="run the benchmarks of this build first")
    parser.add_argument("--quick", action="store_true", help="with --run: each in its quick mode")
    parser.add_argument("--only", metavar="NAMES", help="with --run: comma-separated benchmarks")
    parser.add_argument("--nice", type=int, default=0, help="with --run: nice -n for each run")
    parser.add_argument("--compare", nargs="?", const="", metavar="OLD_COMMIT",
                        help="run bench/compare (OLD_COMMIT against the work tree; default "
                             "its own) into docs/data/compare.jsonl first; --quick and "
                             "--nice apply")
    args = parser.parse_args()
    if args.run:
        only = args.only.split(",") if args.only else None
        run_benchmarks(args.run, args.quick, only, args.nice)
    if args.compare is not None:
        run_compare(args.compare, args.quick, args.nice)
    render()


if __name__ == "__main__":
    main()
