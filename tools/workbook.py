#!/usr/bin/env python3
"""The commands of ./workbook (which installs what they need first).

Run through ./workbook, not directly: see ./workbook --help.
"""
import asyncio
import dataclasses
import json
import os
import pathlib
import re
import select
import shutil
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"


@dataclasses.dataclass
class Step:
    name: str          # step1
    folder: str        # step1_serial
    title: str
    targets: list      # ninja targets its tests need
    reference: str = ""  # the reference program, for the demo and the checks
    is_server: bool = True


STEPS = [
    Step("step1", "step1_serial", "the serial server",
         ["step1_serial", "step1_serial_reference", "step1_tests"], "step1_serial_reference"),
    Step("step2", "step2_threadpool", "the thread-pool server",
         ["step2_threadpool", "step2_threadpool_reference", "step2_tests",
          "step2_pool_tests", "step2_pool_tests_reference"], "step2_threadpool_reference"),
    Step("step3", "step3_epoll", "the epoll event loop", []),
    Step("step4", "step4_addloop", "the add loop",
         ["step4_addloop_O0", "step4_addloop_O2", "step4_reference_O0", "step4_reference_O2",
          "step4_tests"], "step4_reference_O2", is_server=False),
]


def written_steps():
    """The steps this workbook builds: their reference is a meson target."""
    configure()
    targets = json.loads((BUILD / "meson-info" / "intro-targets.json").read_text())
    names = {target["name"] for target in targets}
    return [s for s in STEPS if s.reference and s.reference in names]


def find_step(name):
    wanted = name if name.startswith("step") else "step" + name
    for step in STEPS:
        if step.name == wanted:
            if step not in written_steps():
                sys.exit(f"workbook: {step.name} ({step.title}) is not yet in this workbook")
            return step
    sys.exit(f"workbook: no step '{name}'; steps: "
             + ", ".join(s.name for s in written_steps()))


def say(text=""):
    print(text, flush=True)


# ------------------------------------------------------------------ build

def configure(build_dir=BUILD, options=()):
    if not (build_dir / "build.ninja").exists():
        result = subprocess.run(["meson", "setup", str(build_dir), *options], cwd=ROOT,
                                capture_output=True, text=True)
        if result.returncode != 0:
            say(result.stdout + result.stderr)
            sys.exit("workbook: meson setup failed (above)")


def build(targets=(), build_dir=BUILD, quiet=False):
    """Builds the targets (all when empty). True on success; the compiler's
    messages are shown on failure."""
    configure(build_dir)
    result = subprocess.run(["ninja", "-C", str(build_dir), *targets], cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0:
        errors = [l for l in result.stdout.splitlines()
                  if not l.startswith("[") and not l.startswith("ninja: Entering")]
        say("\n".join(errors[-60:]))
        say("workbook: the build failed; the compiler's messages are above.")
    elif not quiet and "warning" in result.stdout:
        say(result.stdout)
    return result.returncode == 0


# ---------------------------------------------------------- test, progress

def run_suite(suite, extra=(), build_dir=BUILD):
    return subprocess.run(["meson", "test", "-C", str(build_dir), "--no-rebuild", "--suite",
                           suite, *extra], cwd=ROOT, capture_output=True, text=True)


def subtests(output):
    """(passed, total) over meson's lines for TAP tests ("3/8 subtests passed",
    or "8 subtests passed" when all did), each test counted once: meson
    repeats the failing ones in its summary."""
    counts = {}
    for name, some, of in re.findall(
            r"^\s*\d+/\d+ (\S+ / .+?)\s+[A-Z]+\s.*?(\d+)(?:/(\d+))? subtests passed",
            output, re.M):
        counts[name.strip()] = (int(some), int(of or some))
    return sum(p for p, _ in counts.values()), sum(t for _, t in counts.values())


def failure_blocks(log_text):
    """[(test name, message)] of each failing test, from Criterion's report."""
    blocks, lines = [], []
    for line in log_text.splitlines():
        failed = re.match(r"\[FAIL\] (\S+):\s", line)
        if failed:
            message = "\n".join(l for l in lines if l.strip())
            blocks.append((failed.group(1), message))
            lines = []
        elif line.startswith("[----]"):
            lines.append(line[7:])
        else:
            lines = [] if re.match(r"\[(PASS|SKIP|RUN )\]", line) else lines
    return blocks


def command_test(args):
    if len(args) != 1:
        sys.exit("usage: ./workbook test STEP   (e.g. ./workbook test step1)")
    step = find_step(args[0])
    if not build(step.targets):
        return 1
    result = run_suite(step.name)
    say("\n".join(l for l in result.stdout.splitlines() if re.match(r"\s*\d+/\d+ ", l)))
    log = (BUILD / "meson-logs" / "testlog.txt").read_text()
    passed, total = subtests(result.stdout)
    failures = failure_blocks(log)
    say()
    if result.returncode == 0:
        say(f"{step.name}: all {total} tests pass. Well done: read the rest of its chapter "
            "in NOTES.md, then go on.")
        return 0
    if failures:
        name, message = failures[0]
        say(f"Start with this one ({name}):\n")
        say("\n".join("  " + line for line in message.splitlines()))
        others = [n.split("::")[-1] for n, _ in failures[1:]]
        if others:
            say(f"\nAlso failing, often for the same reason: {', '.join(others)}.")
    say(f"\n{step.name}: {passed} of {total} tests pass. Every failure in full: "
        f"meson test -C build --suite {step.name} --print-errorlogs")
    return result.returncode


def command_progress(args):
    for step in STEPS:
        if step not in written_steps():
            say(f"{step.name}  {step.title:24}  not yet in this workbook")
            continue
        if not build(step.targets, quiet=True):
            say(f"{step.name}  {step.title:24}  does not build: ./workbook test {step.name}")
            continue
        passed, total = subtests(run_suite(step.name).stdout)
        bar = "#" * passed + "." * (total - passed)
        say(f"{step.name}  {step.title:24}  {passed:2} of {total:2} tests pass  {bar}")
    return 0


def command_reset(args):
    if len(args) != 1:
        sys.exit("usage: ./workbook reset STEP   (e.g. ./workbook reset step1)")
    step = find_step(args[0])
    folder = ROOT / step.folder
    backup = BUILD / "backups" / f"{step.folder}-{time.strftime('%Y%m%d-%H%M%S')}"
    if folder.is_dir():
        shutil.copytree(folder, backup)
        say(f"your files are saved in {backup.relative_to(ROOT)}/")
    subprocess.run([sys.executable, "tools/generate.py", "learner", step.name], cwd=ROOT,
                   check=True)
    say(f"{step.folder}/ has its stubs back.")
    return 0


# ------------------------------------------------------------ servers

class Server:
    """A reference server started on a free port, stopped by its pid."""

    def __init__(self, program, *flags, wrapper=()):
        self.command = [*wrapper, str(BUILD / program), "--port", "0", *flags]
        self.process = subprocess.Popen(self.command, cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.port = self._read_port()

    def _read_port(self, seconds=30):
        ready, _, _ = select.select([self.process.stdout], [], [], seconds)
        line = self.process.stdout.readline() if ready else ""
        match = re.match(r"listening on [\d.]+:(\d+)", line)
        if not match:
            self.process.kill()
            raise RuntimeError(f"{' '.join(self.command)} printed {line!r}, not its listening line")
        return int(match.group(1))

    def stop(self, seconds=20):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            status = None
        self.stderr = self.process.stderr.read()
        return status

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"


# ------------------------------------------------------------------ demo

ARTICLE_PERCENTILES = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "100%"]
ARTICLE_SERIAL = [50037, 50039, 50044, 50045, 196920, 196923, 196926, 196926, 196926]
ARTICLE_POOL = [5005, 5006, 5006, 5006, 5007, 5007, 5008, 5008, 5008]
ARTICLE_DELAY_MS = 5000


def run_ab(server, requests, concurrency, delay_ms, tsv):
    """ab's percentile table {percent: ms}; tsv receives ab's -g table."""
    timeout_s = requests * delay_ms // 1000 * 2 + 30
    result = subprocess.run(["ab", "-n", str(requests), "-c", str(concurrency), "-s",
                             str(timeout_s), "-g", str(tsv), server.url()],
                            capture_output=True, text=True, timeout=timeout_s + 30)
    if result.returncode != 0 or "Failed requests:        0" not in result.stdout:
        raise RuntimeError("ab failed:\n" + result.stdout[-1500:] + result.stderr[-1500:])
    table = dict(re.findall(r"^\s*(\d+%)\s+(\d+)", result.stdout, re.M))
    return {percent: int(ms) for percent, ms in table.items()}


async def one_request(port, started_at):
    """(start, end) of one GET, in seconds since started_at."""
    start = time.monotonic() - started_at
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
    await writer.drain()
    while await reader.read(65536):
        pass
    writer.close()
    return start, time.monotonic() - started_at


async def timed_wave(port, clients):
    started_at = time.monotonic()
    return await asyncio.gather(*(one_request(port, started_at) for _ in range(clients)))


def demo_server(step, delay_ms, wave_clients, out, extra_flags=()):
    """The article's load with ab, then one wave of clients for the picture.

    The picture needs each request's start and end to the millisecond. ab's
    -g table gives its start in whole seconds only, and ab sends its first
    request alone before the others, so the wave is timed here instead."""
    server = Server(step.reference, "--delay-ms", str(delay_ms), "--quiet", *extra_flags)
    try:
        table = run_ab(server, 30, 10, delay_ms, out / f"{step.name}-ab.tsv")
        bars = sorted(asyncio.run(asyncio.wait_for(
            timed_wave(server.port, wave_clients), timeout=wave_clients * delay_ms / 1000 + 30)),
            key=lambda bar: bar[1])
    finally:
        server.stop()
    return table, bars


def print_demo_table(delay_ms, tables):
    scale = delay_ms / ARTICLE_DELAY_MS
    say(f"ab -n 30 -c 10: time within which each share of the requests was served (ms)")
    say(f"The article ran at a 5000 ms delay; 'scaled' multiplies its figures by "
        f"{delay_ms}/5000 to compare with ours at {delay_ms} ms.")
    say()
    header = f"{'':>5} | {'serial: article':>15} {'scaled':>8} {'ours':>8} |" \
             f" {'pool: article':>13} {'scaled':>8} {'ours':>8}"
    say(header)
    say("-" * len(header))
    for i, percent in enumerate(ARTICLE_PERCENTILES):
        ours = [str(tables[name][percent]) if name in tables else "-"
                for name in ("step1", "step2")]
        say(f"{percent:>5} | {ARTICLE_SERIAL[i]:>15} {round(ARTICLE_SERIAL[i] * scale):>8} "
            f"{ours[0]:>8} | {ARTICLE_POOL[i]:>13} {round(ARTICLE_POOL[i] * scale):>8} "
            f"{ours[1]:>8}")


def draw_timeline(panels, delay_ms, png):
    """One panel per server; one bar per request, from its start to its end."""
    script = [f'set terminal pngcairo size 1200,{330 * len(panels)} font "sans,11"',
              f'set output "{png}"', f"set multiplot layout {len(panels)},1",
              "set xlabel 'seconds since the clients connected'", "set ylabel 'request'",
              "set grid xtics", "unset key", "set offsets 0, 0, 1, 1"]
    for title, data in panels:
        script += [f"set title '{title}'",
                   f"plot '{data}' using 2:1:($3-$2):(0) with vectors nohead lw 5"]
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)


def command_demo(args):
    delay_ms = 500
    if args[:1] == ["--delay-ms"] and len(args) == 2 and args[1].isdigit():
        delay_ms = int(args[1])
    elif args:
        sys.exit("usage: ./workbook demo [--delay-ms MS]")
    steps = written_steps()
    if not build([t for s in steps for t in s.targets if "reference" in t]):
        return 1
    out = BUILD / "demo"
    out.mkdir(parents=True, exist_ok=True)
    tables, panels, programs = {}, [], []
    for step in STEPS:
        if step not in steps or not step.reference:
            say(f"{step.name} ({step.title}): not yet in this workbook")
            continue
        if not step.is_server:
            say(f"{step.name} ({step.title}): measuring ...")
            programs.append(subprocess.run([str(BUILD / step.reference)], cwd=ROOT,
                                           capture_output=True, text=True, timeout=120))
            continue
        if step.name == "step1":
            clients, flags, what = 10, (), "one after another: the staircase"
        else:
            clients, flags, what = 20, ("--workers", "10"), "10 workers: two waves"
        say(f"{step.name} ({step.title}): ab -n 30 -c 10, then {clients} clients at once ...")
        table, bars = demo_server(step, delay_ms, clients, out, flags)
        tables[step.name] = table
        data = out / f"{step.name}-bars.dat"
        data.write_text("".join(f"{i + 1} {start:.4f} {end:.4f}\n"
                                for i, (start, end) in enumerate(bars)))
        panels.append((f"{step.name}, {step.title}: {clients} clients at once, "
                       f"{delay_ms} ms of work each ({what})", data))
    say()
    print_demo_table(delay_ms, tables)
    for program in programs:
        say()
        say(program.stdout.rstrip() if program.returncode == 0 else
            f"the step 4 program failed:\n{program.stdout}{program.stderr}")
    say()
    png = out / "timeline.png"
    draw_timeline(panels, delay_ms, png)
    say(f"picture of every request: {png.relative_to(ROOT)}")
    return 0


# ----------------------------------------------------------------- main

COMMANDS = {"test": command_test, "progress": command_progress, "reset": command_reset,
            "demo": command_demo}


def main(argv):
    if not argv or argv[0] not in COMMANDS and argv[0] not in ("check", "build", "bench"):
        sys.exit("usage: ./workbook COMMAND; see ./workbook --help")
    if argv[0] == "check":
        import check
        return check.main(argv[1:])
    if argv[0] == "bench":
        import bench
        return bench.main(argv[1:])
    if argv[0] == "build":
        return 0 if build() else 1
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
