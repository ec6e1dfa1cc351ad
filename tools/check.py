"""./workbook check: the self-check that proves the workbook sound.

Each check prints one line as it finishes; a summary follows, and the last
line is the count alone: "N passed, M failed". The exit status is non-zero
when anything failed. Logs of every part are kept in build/check/.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time

from project import (BUILD, ROOT, Server, build, configure, criterion_failures, logged_tests,
                     meson_results, run_suite, subtests, suite_targets, written_steps)

LOGS = BUILD / "check"
ASAN_BUILD = ROOT / "build-asan"
FIXTURES = ROOT / "tests" / "fixtures"
LEARNER_SUITE_SECONDS = 20  # "fails within seconds": ours take a few


class Report:
    def __init__(self):
        self.rows = []

    def record(self, name, passed, seconds, detail=""):
        self.rows.append((name, passed, seconds))
        mark = "PASS" if passed else "FAIL"
        print(f"  {mark}  {name}  ({seconds:.1f} s)", flush=True)
        if detail and not passed:
            print("\n".join("        " + line for line in detail.strip().splitlines()[-40:]))

    def summary(self):
        passed = sum(1 for _, ok, _ in self.rows if ok)
        failed = len(self.rows) - passed
        print("\nself-check summary")
        for name, ok, seconds in self.rows:
            print(f"  {'passed' if ok else 'FAILED'}  {seconds:6.1f} s  {name}")
        print(f"\n{passed} passed, {failed} failed")
        return 1 if failed else 0


def timed(function, *args, **options):
    start = time.monotonic()
    result = function(*args, **options)
    return result, time.monotonic() - start


def save_log(name, text):
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / (re.sub(r"[^\w]+", "-", name).strip("-") + ".log")).write_text(text)


# ------------------------------------------------------------------ parts

def check_build(report):
    def full_build():
        configure()
        return subprocess.run(["ninja", "-C", str(BUILD)], cwd=ROOT, capture_output=True,
                              text=True)
    result, seconds = timed(full_build)
    save_log("build", result.stdout + result.stderr)
    warnings = "warning:" in result.stdout
    report.record("build is warning-free with -Wall -Wextra -Werror",
                  result.returncode == 0 and not warnings, seconds, result.stdout)
    return result.returncode == 0


def check_generated(report):
    result, seconds = timed(subprocess.run, [sys.executable, "tools/generate.py", "check"],
                            cwd=ROOT, capture_output=True, text=True)
    report.record("learner files are what tools/generate.py makes from solutions/",
                  result.returncode == 0, seconds, result.stdout + result.stderr)
    return result.returncode == 0


def reference_suites():
    return ["common"] + [f"{step.name}-reference" for step in written_steps()]


def check_suite_passes(report, suite, build_dir=BUILD, label=None, env=None):
    def run():
        return subprocess.run(["meson", "test", "-C", str(build_dir), "--no-rebuild", "--suite",
                               suite, "--print-errorlogs"], cwd=ROOT, capture_output=True,
                              text=True, env=env)
    result, seconds = timed(run)
    passed, total = subtests(result.stdout)
    save_log(label or suite, result.stdout + result.stderr)
    report.record(label or f"{suite} passes ({passed} of {total} tests)",
                  result.returncode == 0 and total > 0, seconds, result.stdout)
    return seconds


def check_reference_suites(report):
    """Every reference suite in one meson run, two test programs at a time
    (meson's default on two cores, as a learner's plain `meson test` runs
    them); each program runs its own tests one at a time (--jobs=1)."""
    suites = reference_suites()
    arguments = [a for suite in suites for a in ("--suite", suite)]

    def run():
        return subprocess.run(["meson", "test", "-C", str(BUILD), "--no-rebuild", *arguments,
                               "--print-errorlogs"], cwd=ROOT, capture_output=True, text=True)
    result, seconds = timed(run)
    save_log("reference-suites", result.stdout + result.stderr)
    for suite in suites:
        lines = [l for l in result.stdout.splitlines() if f":{suite} / " in l]
        passed, total = subtests("\n".join(lines))
        failed = [l for l in lines if re.search(r"\s(FAIL|ERROR|TIMEOUT)\s", l)]
        report.record(f"{suite} passes ({passed} of {total} tests)",
                      not failed and total > 0 and passed == total, 0,
                      "\n".join(failed) + "\n" + result.stderr[-3000:])
    report.record(f"reference suites together take under 60 s ({seconds:.0f} s)",
                  seconds < 60, seconds)


def notes_sections():
    """{"1.5": "The serial loop", ...} from NOTES.md's headings."""
    notes = (ROOT / "NOTES.md").read_text() if (ROOT / "NOTES.md").exists() else ""
    return dict(re.findall(r"^###\s+(\d+\.\d+)\s+(.+?)\s*$", notes, re.M))


def failures_without_pointer(criterion_report):
    """Names of failing tests whose message names no function to write."""
    missing, block = [], []
    for line in criterion_report.splitlines():
        failed = re.search(r"\[FAIL\] (\S+):\s", line)
        if failed:
            if not any("TODO: write " in l for l in block):
                missing.append(failed.group(1))
            block = []
        elif re.search(r"\[(PASS|SKIP)\]", line):
            block = []
        else:
            block.append(line)
    return missing


def check_learner_suite_fails_fast(report, step):
    result, seconds = timed(run_suite, step.name, ["--print-errorlogs"])
    text = result.stdout + result.stderr
    save_log(f"{step.name}-learner", text)
    passed, total = subtests(text)
    sections = notes_sections()
    pointers = set(re.findall(r'TODO: write (\w+)\(\): see NOTES\.md section ([\d.]+) "([^"]+)"',
                              text))
    problems = []
    if result.returncode == 0 or passed == total:
        problems.append(f"the shipped stubs pass {passed} of {total} tests: they should fail")
    if seconds > LEARNER_SUITE_SECONDS:
        problems.append(f"it took {seconds:.1f} s, more than {LEARNER_SUITE_SECONDS} s")
    if not pointers:
        problems.append("no failure names a function to write (no 'TODO: write' line)")
    unpointed = failures_without_pointer(text)
    if unpointed:
        problems.append("failures that name no function: " + ", ".join(unpointed))
    for function, number, title in sorted(pointers):
        if sections.get(number) != title:
            problems.append(f'{function}() points to NOTES.md section {number} "{title}", '
                            f"which NOTES.md does not have")
    names = ", ".join(sorted(f"{f}() -> {n}" for f, n, _ in pointers))
    report.record(f"{step.name} as shipped fails fast ({total - passed} of {total} tests fail, "
                  f"pointing to {names or 'nothing'})", not problems, seconds,
                  "\n".join(problems))


def catalogue():
    """{name: (changes, [rejected by], mistake)} from tests/fixtures/catalogue.txt."""
    entries = {}
    for line in (FIXTURES / "catalogue.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, changes, rejected_by, mistake = (f.strip() for f in line.split("|"))
            entries[name] = (changes, [r.strip() for r in rejected_by.split(",")], mistake)
    return entries


def check_catalogue(report):
    """Every fixture file is in the catalogue, and every entry has its file."""
    listed = set(catalogue())
    files = {p.stem for p in FIXTURES.glob("*.c")}
    problems = [f"tests/fixtures/{n}.c is not in catalogue.txt" for n in sorted(files - listed)]
    problems += [f"catalogue.txt lists {n}, which has no file" for n in sorted(listed - files)]
    report.record(f"every wrong solution in tests/fixtures/ is catalogued ({len(listed)})",
                  not problems, 0, "\n".join(problems))


def check_fixtures(report):
    """Each wrong solution is rejected by every test its catalogue line names."""
    result, seconds = timed(run_suite, "fixtures")
    save_log("fixtures", result.stdout + result.stderr)
    outcomes = {}
    for name, outcome, duration in meson_results():
        fixture = name.split(" rejected by ")[0]
        outcomes.setdefault(fixture, []).append((name, outcome, duration))
    for fixture, (changes, rejected_by, mistake) in catalogue().items():
        runs = outcomes.get(fixture, [])
        wrong = [f"{n}: meson says {o} (expected EXPECTEDFAIL)" for n, o, _ in runs
                 if o != "EXPECTEDFAIL"]
        if len(runs) != len(rejected_by):
            wrong.append(f"{len(runs)} runs for {len(rejected_by)} catalogued tests")
        report.record(f"wrong solution rejected: {fixture} ({mistake})", not wrong,
                      sum(d for _, _, d in runs), "\n".join(wrong))


def check_sanitizer_suites(report):
    configure(ASAN_BUILD, ["-Db_sanitize=address,undefined", "-Db_lundef=false"])
    targets = [t for suite in reference_suites() for t in suite_targets(suite, ASAN_BUILD)]
    ok, seconds = timed(build, targets, ASAN_BUILD, True)
    if not ok:
        report.record("build with AddressSanitizer and UBSan", False, seconds)
        return
    for suite in reference_suites():
        check_suite_passes(report, suite, ASAN_BUILD,
                           f"{suite} passes under AddressSanitizer and UBSan")


def open_descriptors(valgrind_log, log_path):
    """Descriptors valgrind saw open at exit, beyond stdin/out/err and its log."""
    opened = re.findall(r"Open file descriptor (\d+):\s*(.*)", valgrind_log)
    return [f"{fd}: {what}" for fd, what in opened
            if int(fd) > 2 and what.strip() != str(log_path)]


def read_one_response(connection):
    """The bytes of one small response (the server may keep the connection)."""
    data = b""
    while not data.endswith(b"Hello"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def valgrind_shutdown(step):
    """Serves a request, holds an idle keep-alive connection (a request
    answered, then nothing) and a silent one (nothing at all), SIGTERMs: the
    server must exit 0 at once with nothing lost and no descriptor left open."""
    log_path = LOGS / f"valgrind-{step.name}.log"
    LOGS.mkdir(parents=True, exist_ok=True)
    wrapper = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
               "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
               "--track-fds=yes", f"--log-file={log_path}"]
    server = Server(step.reference, "--delay-ms", "100", "--quiet", wrapper=wrapper)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: check\r\nConnection: close\r\n\r\n")
            answer = b"".join(iter(lambda: client.recv(65536), b""))
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        idle.sendall(b"GET / HTTP/1.1\r\nHost: check\r\n\r\n")
        kept_answer = read_one_response(idle)
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        time.sleep(0.5)
        started = time.monotonic()
        status = server.stop(seconds=30)
        took = time.monotonic() - started
        idle.close()
        silent.close()
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    log = log_path.read_text()
    problems = []
    if not answer.endswith(b"Hello") or not kept_answer.endswith(b"Hello"):
        problems.append(f"the requests got {answer[:200]!r} and {kept_answer[:200]!r}")
    if status != 0:
        problems.append(f"exit status {status} (99: valgrind found errors or leaks)")
    if took > 5:
        problems.append(f"it took {took:.1f} s to exit with idle connections open")
    descriptors = open_descriptors(log, log_path)
    if descriptors:
        problems.append("descriptors left open: " + "; ".join(descriptors))
    return problems, log


def check_valgrind(report):
    for step in (s for s in written_steps() if s.is_server):
        (problems, log), seconds = timed(valgrind_shutdown, step)
        report.record(f"{step.name}: graceful shutdown under valgrind, no leak, no fd left open "
                      "(idle and silent connections open)",
                      not problems, seconds, "\n".join(problems) + "\n" + log[-2000:])


def check_hostile(report):
    """The hostile clients (tests/hostile_test.c): every case against the
    plain reference servers, then the representative ones against the
    servers built with ASan and UBSan (a leak at SIGTERM is exit 23)."""
    check_suite_passes(report, "hostile",
                       label="hostile clients: every case against every reference server "
                             "(results in build/hostile/results.txt)")
    targets = suite_targets("hostile", ASAN_BUILD)
    ok, seconds = timed(build, targets, ASAN_BUILD, True)
    if not ok:
        report.record("hostile clients: build with AddressSanitizer and UBSan", False, seconds)
        return
    check_suite_passes(report, "hostile", ASAN_BUILD,
                       "hostile clients: the representative cases against the servers built "
                       "with ASan and UBSan, no leak at SIGTERM",
                       env=dict(os.environ, HOSTILE_SUBSET="representative"))


FUZZ_SMOKE_SECONDS = 5


def check_fuzz_smoke(report):
    """Each fuzz target of fuzz/ for a few seconds (./workbook fuzz): it must
    build with clang and find nothing."""
    command = [sys.executable, "tools/workbook.py", "fuzz", "--seconds",
               str(FUZZ_SMOKE_SECONDS)]
    result, seconds = timed(subprocess.run, command, cwd=ROOT, capture_output=True, text=True)
    save_log("fuzz smoke", result.stdout + result.stderr)
    rows = re.findall(r"^(\w+)\s+([\d,]+)\s+([\d,]+)\s+[\d.]+\s+\d+ -> \d+\s+(\d+)\s*$",
                      result.stdout, re.M)
    for name, executions, per_second, findings in rows:
        report.record(f"fuzz smoke: {name} ({executions} runs in {FUZZ_SMOKE_SECONDS} s, "
                      f"{per_second}/s, {findings} findings)",
                      findings == "0" and result.returncode == 0, FUZZ_SMOKE_SECONDS,
                      result.stdout)
    report.record(f"fuzz smoke: build-fuzz/ built with clang, {len(rows)} targets run, "
                  "nothing found", result.returncode == 0 and len(rows) >= 3, seconds,
                  result.stdout + result.stderr)


def main(args):
    if args:
        sys.exit("usage: ./workbook check")
    report = Report()
    print("self-check: build", flush=True)
    if not check_build(report):
        return report.summary()
    check_generated(report)
    check_catalogue(report)
    print("self-check: reference suites", flush=True)
    check_reference_suites(report)
    print("self-check: learner suites as shipped, and wrong designs", flush=True)
    for step in written_steps():
        check_learner_suite_fails_fast(report, step)
    check_fixtures(report)
    print("self-check: sanitizers and valgrind", flush=True)
    check_sanitizer_suites(report)
    check_valgrind(report)
    print("self-check: hostile clients and fuzzing", flush=True)
    check_hostile(report)
    check_fuzz_smoke(report)
    return report.summary()
