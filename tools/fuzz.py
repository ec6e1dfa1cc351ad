"""./workbook fuzz: the libFuzzer targets of fuzz/, built with clang under
AddressSanitizer and UBSan in build-fuzz/ (the main build stays gcc).

  ./workbook fuzz [--seconds N | --runs N] [--target NAME] [--seed]

Each target runs in turn on a work copy of its committed seed corpus
(fuzz/corpus/NAME/ is never rewritten), for --seconds each (default 60) or
--runs executions each. Per target it prints the executions, their speed,
the corpus it grew, and its findings: an input that crashed it, leaked or
broke one of its checks, saved under build-fuzz/findings/NAME/. Exit status 1
when any target found something.

--seed rewrites the seeds of fuzz/corpus/ (seed-*) from the requests in
tests/*.c and a few made here (heads at the 8 KiB limit, pipelined
requests), then stops. The inputs of past findings (finding-*) stay.
"""
import argparse
import codecs
import os
import re
import shutil
import subprocess
import sys
import time

from project import ROOT, say

FUZZ_BUILD = ROOT / "build-fuzz"
CORPUS = ROOT / "fuzz" / "corpus"
WORK = FUZZ_BUILD / "work"
FINDINGS = FUZZ_BUILD / "findings"

# name: the largest input libFuzzer makes. The split and connection targets
# need room past the 8 KiB limit, and a few bytes of cuts in front.
TARGETS = {
    "parse_head": 9000,
    "split_head": 9300,
    "connection": 9300,
    "differential": 9000,
}


# ----------------------------------------------------------------- build

def build_targets(names):
    """Sets up build-fuzz/ (clang, -Dfuzz=true) if needed and builds the
    targets. Returns the names that were built; says why for the others."""
    if not (FUZZ_BUILD / "build.ninja").exists():
        env = dict(os.environ, CC="clang")
        result = subprocess.run(["meson", "setup", str(FUZZ_BUILD), "-Dfuzz=true"], cwd=ROOT,
                                env=env, capture_output=True, text=True)
        if result.returncode != 0:
            say(result.stdout[-3000:] + result.stderr[-3000:])
            say("workbook fuzz: meson setup of build-fuzz/ with clang failed (above)")
            return []
    built = []
    for name in names:
        result = subprocess.run(["ninja", "-C", str(FUZZ_BUILD), "fuzz_" + name], cwd=ROOT,
                                capture_output=True, text=True)
        if result.returncode == 0:
            built.append(name)
        else:
            say("\n".join(result.stdout.splitlines()[-40:]))
            say(f"workbook fuzz: fuzz_{name} did not build (above)")
    return built


# ------------------------------------------------------------------- run

def final_stats(output):
    """libFuzzer's -print_final_stats lines: {name: number}."""
    return {key: int(value) for key, value in re.findall(r"^stat::(\w+):\s+(\d+)", output, re.M)}


def fresh_work_corpus(name):
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    committed = CORPUS / name
    for seed in sorted(committed.glob("*")) if committed.exists() else []:
        shutil.copy(seed, work / seed.name)
    return work


def run_target(name, seconds=None, runs=None):
    """Runs one target; returns a dict of what it did."""
    findings = FINDINGS / name
    findings.mkdir(parents=True, exist_ok=True)
    before = set(findings.iterdir())
    work = fresh_work_corpus(name)
    seeds = len(list(work.iterdir()))
    limit = [f"-runs={runs}"] if runs else [f"-max_total_time={seconds}"]
    command = [str(FUZZ_BUILD / f"fuzz_{name}"), *limit, f"-max_len={TARGETS[name]}",
               "-timeout=10", "-rss_limit_mb=4096", "-print_final_stats=1",
               f"-artifact_prefix={findings}/", str(work)]
    started = time.monotonic()
    # UBSan stops at the first error. A 16 MB quarantine (256 by default)
    # still catches the use of a block freed moments before, and doubles the
    # speed of the connection target, which frees and allocates per request.
    env = dict(os.environ, UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
               ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=16")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env,
                            timeout=(seconds or 3600) * 3 + 600)
    took = time.monotonic() - started
    log = FINDINGS.parent / f"fuzz-{name}.log"
    log.write_text(result.stderr)
    stats = final_stats(result.stderr)
    new = sorted(set(findings.iterdir()) - before)
    executions = stats.get("number_of_executed_units", 0)
    return {
        "name": name,
        "executions": executions,
        "per_second": stats.get("average_exec_per_sec", 0),
        "seconds": took,
        "seeds": seeds,
        "corpus": len(list(work.iterdir())),
        "peak_rss_mb": stats.get("peak_rss_mb", 0),
        "exit": result.returncode,
        "findings": new,
        "log": log,
        "stderr": result.stderr,
    }


def finding_summary(stderr):
    """The first lines that say what went wrong."""
    wanted = [l for l in stderr.splitlines()
              if "==fuzz==" in l or "ERROR:" in l or "runtime error" in l or
              "SUMMARY:" in l or l.startswith("  ours") or l.startswith("  theirs")]
    return "\n".join(wanted[:8])


def print_table(results):
    say(f"\n{'target':<14}{'executions':>14}{'exec/s':>10}{'seconds':>9}"
        f"{'corpus':>14}{'findings':>10}")
    for r in results:
        say(f"{r['name']:<14}{r['executions']:>14,}{r['per_second']:>10,.0f}"
            f"{r['seconds']:>9.1f}{r['seeds']:>6} -> {r['corpus']:<6}"
            f"{len(r['findings']) if r['exit'] == 0 else max(1, len(r['findings'])):>8}")
    for r in results:
        if r["exit"] != 0 or r["findings"]:
            say(f"\n{r['name']}: FOUND something (exit {r['exit']}); log: "
                f"{r['log'].relative_to(ROOT)}")
            for path in r["findings"]:
                say(f"  saved: {path.relative_to(ROOT)}   reproduce: "
                    f"build-fuzz/fuzz_{r['name']} {path.relative_to(ROOT)}")
            say(finding_summary(r["stderr"]))
        designed = re.search(r"^differential: designed disagreements.*?(?=\n\S|\Z)",
                             r["stderr"], re.M | re.S)
        if designed:
            say("\n" + designed.group(0))


# ------------------------------------------------------------- the seeds

def c_string_literals(text):
    """The string literals of C source, adjacent ones joined, as bytes."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"'(?:\\.|[^'\\])'", "0", text)  # character literals: '"'
    literals, current = [], None
    for match in re.finditer(r'"((?:[^"\\\n]|\\.)*)"|([^\s"])', text):
        if match.group(1) is not None:
            piece = decode_c_string(match.group(1))
            current = piece if current is None else current + piece
        else:
            if current is not None:
                literals.append(current)
            current = None
    if current is not None:
        literals.append(current)
    return literals


def decode_c_string(body):
    """A C literal's bytes: escapes (\\r, \\x01, \\0, ...) decoded, the rest as UTF-8.
    (C's \\x takes every hex digit that follows; the tests use two.)"""
    return codecs.escape_decode(body.encode("utf-8"))[0]


REQUEST_START = re.compile(rb"^(\r?\n)*[A-Z][A-Z-]{1,9} \S")


def requests_in_tests():
    found = set()
    for source in sorted((ROOT / "tests").glob("*.c")):
        for literal in c_string_literals(source.read_text()):
            if REQUEST_START.match(literal) and (b" HTTP/" in literal or
                                                 literal.endswith(b"\n")):
                found.add(literal)
    return sorted(found)


def made_heads():
    """Heads the tests build at run time: at and over the 8 KiB limit, many
    tiny headers, pipelined requests."""
    start = b"GET / HTTP/1.1\r\nHost: a\r\nX: "
    return [
        start + b"a" * (8192 - len(start) - 4) + b"\r\n\r\n",       # exactly 8192
        start + b"a" * (8193 - len(start) - 4) + b"\r\n\r\n",       # 8193: 431
        b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: a\r\n\r\n",     # 414
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"a:b\r\n" * 1600 + b"\r\n",  # tiny headers: 431
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 20,                  # pipelined
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        b"GET /bytes/3000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
    ]


def write_seeds():
    requests = requests_in_tests() + made_heads()
    for name in TARGETS:
        (CORPUS / name).mkdir(parents=True, exist_ok=True)
        # The inputs of past findings (finding-*) stay: they are regressions.
        for old in (CORPUS / name).glob("seed-*"):
            old.unlink()
    for index, request in enumerate(requests):
        # parse_head and differential take the bytes as they are; split_head
        # one cut in the middle; connection the options byte (heavy work,
        # half-close) and the same cut.
        middle = len(request) // 2
        cut = bytes([middle & 255, middle >> 8])
        seeds = {
            "parse_head": request,
            "differential": request,
            "split_head": bytes([1]) + cut + request,
            "connection": bytes([index % 16, 1]) + cut + request,
        }
        for name, seed in seeds.items():
            (CORPUS / name / f"seed-{index:03d}").write_bytes(seed)
    say(f"workbook fuzz: {len(requests)} seeds per target written to fuzz/corpus/ "
        f"(from the requests in tests/*.c, and {len(made_heads())} made here)")


# ------------------------------------------------------------------ main

def parse_args(argv):
    parser = argparse.ArgumentParser(prog="./workbook fuzz",
                                     description=__doc__.split("\n\n")[1])
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--seconds", type=int, default=None,
                       help="how long to run each target (default 60)")
    limit.add_argument("--runs", type=int, default=None,
                       help="how many executions per target instead")
    parser.add_argument("--target", choices=sorted(TARGETS), action="append",
                        help="only this target (may be repeated)")
    parser.add_argument("--seed", action="store_true",
                        help="rewrite fuzz/corpus/ from the requests in tests/*.c, then stop")
    return parser.parse_args(argv)


def fuzz(names, seconds=None, runs=None):
    """Builds and runs the targets; returns (results, names that did not build)."""
    built = build_targets(names)
    results = []
    for name in built:
        say(f"workbook fuzz: {name} ({f'{runs:,} runs' if runs else f'{seconds} s'})")
        results.append(run_target(name, seconds=seconds, runs=runs))
    return results, [n for n in names if n not in built]


def main(argv):
    args = parse_args(argv)
    if args.seed:
        write_seeds()
        return 0
    names = args.target or list(TARGETS)
    seconds = args.seconds if args.seconds or args.runs else 60
    results, unbuilt = fuzz(names, seconds=seconds, runs=args.runs)
    print_table(results)
    failed = unbuilt or any(r["exit"] != 0 or r["findings"] for r in results)
    say(f"\nworkbook fuzz: {'FOUND something' if failed else 'nothing found'}; "
        f"logs in build-fuzz/fuzz-NAME.log")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
