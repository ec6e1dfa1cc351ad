"""What every command of ./workbook shares: the paths, the steps, building,
running a meson suite and reading its results, and starting a server.

The commands live in their own modules (learner.py, demo.py, check.py,
bench.py); each imports this one and none imports another.
"""
import dataclasses
import json
import pathlib
import re
import select
import signal
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
TESTS = ROOT / "tests"


@dataclasses.dataclass
class Step:
    name: str          # step1
    folder: str        # step1_serial
    title: str
    reference: str     # the reference program: its meson target
    is_server: bool = True
    also_build: tuple = ()  # targets the reference program needs beside it


STEPS = [
    Step("step1", "step1_serial", "the serial server", "step1_serial_reference"),
    Step("step2", "step2_threadpool", "the thread-pool server", "step2_threadpool_reference"),
    Step("step3", "step3_epoll", "the epoll event loop", "step3_epoll_reference"),
    Step("step4", "step4_addloop", "the add loop", "step4_reference_O2", is_server=False,
         also_build=("step4_reference_O0",)),
    Step("step5", "step5_coroutines", "coroutines on the event loop", "step5_coroutines_reference"),
]


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


def meson_targets(build_dir=BUILD):
    """The names of the targets meson knows."""
    configure(build_dir)
    targets = json.loads((build_dir / "meson-info" / "intro-targets.json").read_text())
    return {target["name"] for target in targets}


def written_steps():
    """The steps this workbook builds: their reference is a meson target."""
    names = meson_targets()
    return [s for s in STEPS if s.reference in names]


def find_step(name):
    wanted = name if name.startswith("step") else "step" + name
    for step in STEPS:
        if step.name == wanted:
            if step not in written_steps():
                sys.exit(f"workbook: {step.name} ({step.title}) is not yet in this workbook")
            return step
    sys.exit(f"workbook: no step '{name}'; steps: "
             + ", ".join(s.name for s in written_steps()))


def suite_targets(suite, build_dir=BUILD):
    """The files ninja must make before the tests of a meson suite can run:
    only those, so that a step that does not compile never stops another."""
    configure(build_dir)
    info = build_dir / "meson-info"
    tests = json.loads((info / "intro-tests.json").read_text())
    files = {t["id"]: t["filename"] for t in json.loads((info / "intro-targets.json").read_text())}
    wanted = set()
    for test in tests:
        if any(s.split(":")[-1] == suite for s in test["suite"]):
            for target in test["depends"]:
                wanted.update(files.get(target, []))
            if test["cmd"] and test["cmd"][0].startswith(str(build_dir)):
                wanted.add(test["cmd"][0])
    return sorted(str(pathlib.Path(f).relative_to(build_dir)) for f in wanted
                  if f.startswith(str(build_dir)))


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


def command_build(args):
    """./workbook build: everything, as a learner's editor might want."""
    if args:
        sys.exit("usage: ./workbook build")
    return 0 if build() else 1


# ---------------------------------------------------------------- suites

def run_suite(suite, extra=(), build_dir=BUILD, env=None):
    """meson test for one suite, already built (see suite_targets)."""
    return subprocess.run(["meson", "test", "-C", str(build_dir), "--no-rebuild", "--suite",
                           suite, *extra], cwd=ROOT, capture_output=True, text=True, env=env)


def subtests(output):
    """(passed, total) over meson's lines for its tests, each counted once
    (meson repeats the failing ones in its summary). A TAP test counts its
    subtests ("3/8 subtests passed", or "8 subtests passed" when all did);
    any other test counts as one."""
    counts = {}
    for line in output.splitlines():
        match = re.match(r"^\s*\d+/\d+ (\S+ / .+?)\s+(OK|FAIL|ERROR|TIMEOUT|EXPECTEDFAIL|"
                         r"UNEXPECTEDPASS|SKIP)\s+[\d.]+s\s*(.*)$", line)
        if not match:
            continue
        name, result, rest = match.groups()
        tap = re.search(r"(\d+)(?:/(\d+))? subtests passed", rest)
        if tap:
            counts[name.strip()] = (int(tap.group(1)), int(tap.group(2) or tap.group(1)))
        else:
            counts[name.strip()] = (1 if result == "OK" else 0, 1)
    return sum(p for p, _ in counts.values()), sum(t for _, t in counts.values())


@dataclasses.dataclass
class LoggedTest:
    """One test of meson's last run, from build/meson-logs/testlog.txt."""
    name: str       # "step2 pool"
    result: str     # "exit status 1"
    command: str
    stdout: str
    stderr: str


def logged_tests(build_dir=BUILD):
    log = build_dir / "meson-logs" / "testlog.txt"
    text = log.read_text(errors="replace") if log.exists() else ""
    tests = []
    for chunk in re.split(r"^=+ \d+/\d+ =+$", text, flags=re.M)[1:]:
        name = re.search(r"^test:\s+\S+?:\S+ / (.+)$", chunk, re.M)
        result = re.search(r"^result:\s+(.+)$", chunk, re.M)
        command = re.search(r"^command:\s+(.+)$", chunk, re.M)
        stdout = re.search(r"^-+ stdout -+$\n(.*?)(?=^-+ stderr -+$|\Z)", chunk, re.M | re.S)
        stderr = re.search(r"^-+ stderr -+$\n(.*)", chunk, re.M | re.S)
        if name:
            tests.append(LoggedTest(name.group(1).strip(), result.group(1) if result else "",
                                    command.group(1) if command else "",
                                    stdout.group(1) if stdout else "",
                                    stderr.group(1) if stderr else ""))
    return tests


def meson_results(build_dir=BUILD):
    """[(name, result, seconds)] of the last meson test run, from its JSON log."""
    log = build_dir / "meson-logs" / "testlog.json"
    entries = []
    for line in log.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short (another meson run wrote the log meanwhile)
    return [(e["name"].split(" / ", 1)[-1], e["result"], e["duration"]) for e in entries]


def criterion_failures(stderr):
    """[(suite/test, message)] of each failing test in a Criterion report, in
    the order they were reported."""
    blocks, lines = [], []
    for line in stderr.splitlines():
        failed = re.match(r"\[FAIL\] (\S+?)::(\S+?):", line)
        if failed:
            message = "\n".join(l for l in lines if l.strip())
            blocks.append((f"{failed.group(1)}/{failed.group(2)}", message))
            lines = []
        elif line.startswith("[----]"):
            lines.append(line[7:])
        elif re.match(r"\[(PASS|SKIP|RUN )\]", line):
            lines = []
    return blocks


# ---------------------------------------------------------------- servers

class Server:
    """A reference server started on a free port, stopped by its pid."""

    def __init__(self, program, *flags, wrapper=(), build_dir=BUILD, preexec_fn=None):
        self.command = [*wrapper, str(build_dir / program), "--port", "0", *flags]
        self.process = subprocess.Popen(self.command, cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        preexec_fn=preexec_fn)
        self.port = self._read_port()

    def _read_port(self, seconds=30):
        ready, _, _ = select.select([self.process.stdout], [], [], seconds)
        line = self.process.stdout.readline() if ready else ""
        match = re.match(r"listening on [\d.]+:(\d+)", line)
        if not match:
            self.process.kill()
            self.process.wait()
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
        self.stdout = self.process.stdout.read()
        return status

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"
