"""The learner's commands: ./workbook test, progress and reset."""
import re
import shutil
import subprocess
import sys
import time

from project import (BUILD, ROOT, STEPS, TESTS, build, criterion_failures, find_step,
                     logged_tests, run_suite, say, subtests, suite_targets, written_steps)

# In tests/*.c, a line such as
#     /* ================================ stage 2: the staircase ============ */
# opens a stage of the learner's path; the tests after it belong to it. The
# first failure shown is the one of the lowest stage (then the first in the
# file): the most basic thing still wrong.
STAGE_MARKER = re.compile(r"^/\* =+ stage (\d+): .+? =+ \*/\s*$")
TEST_DEFINITION = re.compile(r"^(?:SERVER_TEST\((\w+)\)|Test\(\s*\w+\s*,\s*(\w+))")
# A failing program that is not a Criterion suite (the pool under
# ThreadSanitizer): after the pool's own tests, before the server's.
PROGRAM_STAGE = 0.5


def learner_path_order():
    """{test name: (stage, position)} from the stage markers of tests/*.c."""
    order = {}
    for source in sorted(TESTS.glob("*.c")):
        stage = 99
        for position, line in enumerate(source.read_text().splitlines()):
            marker = STAGE_MARKER.match(line)
            if marker:
                stage = int(marker.group(1))
            test = TEST_DEFINITION.match(line)
            if test:
                order.setdefault(test.group(1) or test.group(2), (stage, position))
    return order


def run_alone_line(logged, test_name):
    """For a failure whose message has none (a timeout, a crash of the test
    itself): the command that runs that test alone."""
    program = next((word for word in logged.command.split() if word.startswith(str(BUILD))), "")
    relative = program.replace(str(ROOT) + "/", "")
    return (f"\nRun this test alone, from the workbook's folder:\n  {relative} "
            f"--filter='{test_name}'")


def program_failure(logged):
    """The message for a failing program that is not a Criterion suite."""
    program = next((word for word in logged.command.split() if word.startswith(str(BUILD))), "")
    tail = "\n".join(logged.stderr.strip().splitlines()[-40:])
    return (f"{logged.name}: {logged.result}.\n{tail}\n\nRun it alone, from the workbook's "
            f"folder:\n  {program.replace(str(ROOT) + '/', '')}")


def ranked_failures():
    """[(rank, name, message)] of every failure of meson's last run, the most
    basic first."""
    order = learner_path_order()
    failures = []
    for logged in logged_tests():
        blocks = criterion_failures(logged.stderr)
        if blocks:
            for name, message in blocks:
                if "Run this test alone" not in message:
                    message += run_alone_line(logged, name)
                rank = order.get(name.split("/")[-1], (99, 0))
                failures.append((rank, name, message))
        elif logged.result != "exit status 0" and "--tap" not in logged.command:
            failures.append(((PROGRAM_STAGE, 0), logged.name, program_failure(logged)))
    return sorted(failures, key=lambda failure: failure[0])


def command_test(args):
    if len(args) != 1:
        sys.exit("usage: ./workbook test STEP   (e.g. ./workbook test step1)")
    step = find_step(args[0])
    if not build(suite_targets(step.name)):
        return 1
    result = run_suite(step.name)
    say("\n".join(l for l in result.stdout.splitlines() if re.match(r"\s*\d+/\d+ ", l)))
    passed, total = subtests(result.stdout)
    say()
    if result.returncode == 0:
        say(f"{step.name}: all {total} tests pass. Well done: read the rest of its chapter "
            "in NOTES.md, then go on.")
        return 0
    failures = ranked_failures()
    if failures:
        _, name, message = failures[0]
        say(f"Start with this one ({name}):\n")
        say("\n".join("  " + line for line in message.splitlines()))
        others = [n.split("/")[-1] for _, n, _ in failures[1:]]
        if others:
            say(f"\nAlso failing, often for the same reason: {', '.join(others)}.")
    say(f"\n{step.name}: {passed} of {total} tests pass. Every failure in full: "
        f"meson test -C build --suite {step.name} --print-errorlogs")
    return result.returncode


def command_progress(args):
    if args:
        sys.exit("usage: ./workbook progress")
    written = written_steps()
    for step in STEPS:
        if step not in written:
            say(f"{step.name}  {step.title:30}  not yet in this workbook")
            continue
        if not build(suite_targets(step.name), quiet=True):
            say(f"{step.name}  {step.title:30}  does not build: ./workbook test {step.name}")
            continue
        passed, total = subtests(run_suite(step.name).stdout)
        bar = "#" * passed + "." * (total - passed)
        say(f"{step.name}  {step.title:30}  {passed:2} of {total:2} tests pass  {bar}")
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
