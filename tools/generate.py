#!/usr/bin/env python3
"""Makes the learner's files and the wrong-design fixtures from the solutions.

One source of truth: every file of step N_x/ is made from solutions/stepN_x/,
so the two never drift apart.

  generate.py learner [STEP ...]   (re)write stepN_x/ from solutions/stepN_x/
  generate.py check                 exit 1 if a committed learner file differs
  generate.py fixture FIX TARGET OUT
                                    write OUT: TARGET with the functions of FIX
                                    swapped in (see tests/fixtures/)

In a solution, the body a learner writes sits between two marker comments:

    /* EXERCISE serve_forever: NOTES.md section 1.5 "The serial loop"
     * stub:
     *     (void)config;
     */
    ...the solution...
    /* END EXERCISE */

The learner's file gets, instead, a TODO comment, a call that reports the
function as unwritten, and the stub lines. Lines between
/* SOLUTION ONLY */ and /* END SOLUTION ONLY */ are left out entirely.
"""
import difflib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"

EXERCISE = re.compile(r'^(\s*)/\* EXERCISE (\w+): NOTES\.md section ([\d.]+) "([^"]+)"\s*$')
STUB_LINE = re.compile(r"^\s*\* {5}(.*)$")
END_EXERCISE = re.compile(r"^\s*/\* END EXERCISE \*/\s*$")
SOLUTION_ONLY = re.compile(r"^\s*/\* SOLUTION ONLY \*/\s*$")
END_SOLUTION_ONLY = re.compile(r"^\s*/\* END SOLUTION ONLY \*/\s*$")


class GenerateError(Exception):
    pass


def read_stub(lines, start, path):
    """The stub lines of the marker comment that begins at lines[start]."""
    index = start + 1
    if index >= len(lines) or lines[index].strip() != "* stub:":
        raise GenerateError(f"{path}:{start + 1}: EXERCISE must be followed by ' * stub:'")
    stub = []
    index += 1
    while index < len(lines) and lines[index].strip() != "*/":
        match = STUB_LINE.match(lines[index])
        if not match:
            raise GenerateError(f"{path}:{index + 1}: stub lines are ' *     code'")
        stub.append(match.group(1))
        index += 1
    return stub, index + 1


def learner_text(solution_text, path="<solution>"):
    """The learner's version of one solution file."""
    lines = solution_text.split("\n")
    out = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if SOLUTION_ONLY.match(line):
            while index < len(lines) and not END_SOLUTION_ONLY.match(lines[index]):
                index += 1
            if index == len(lines):
                raise GenerateError(f"{path}: SOLUTION ONLY without its END")
            index += 1
            continue
        match = EXERCISE.match(line)
        if not match:
            out.append(line)
            index += 1
            continue
        indent, function, section, title = match.groups()
        stub, index = read_stub(lines, index, path)
        while index < len(lines) and not END_EXERCISE.match(lines[index]):
            index += 1
        if index == len(lines):
            raise GenerateError(f"{path}: EXERCISE {function} without its END EXERCISE")
        index += 1
        out.append(f'{indent}/* TODO: write {function}(). NOTES.md section {section} "{title}" explains it. */')
        out.append(f'{indent}exercise_unwritten("{function}", "{section}", "{title}");')
        out.extend(indent + s for s in stub)
    return "\n".join(out)


def step_dirs(names):
    dirs = sorted(d for d in SOLUTIONS.iterdir() if d.is_dir())
    if not names:
        return dirs
    chosen = [d for d in dirs if any(d.name == n or d.name.startswith(n + "_") for n in names)]
    if len(chosen) != len(names):
        raise GenerateError(f"unknown step in {names}; steps: {[d.name for d in dirs]}")
    return chosen


def expected_learner_files(names=()):
    """{learner path: text} for every file of the chosen steps."""
    files = {}
    for solution_dir in step_dirs(names):
        for source in sorted(solution_dir.iterdir()):
            if source.is_file():
                target = ROOT / solution_dir.name / source.name
                files[target] = learner_text(source.read_text(), source.relative_to(ROOT))
    return files


def write_learner(names):
    for target, text in expected_learner_files(names).items():
        target.parent.mkdir(exist_ok=True)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)}")


def check():
    differing = []
    for target, text in expected_learner_files().items():
        actual = target.read_text() if target.exists() else ""
        if actual != text:
            differing.append(target)
            name = str(target.relative_to(ROOT))
            sys.stdout.writelines(difflib.unified_diff(
                text.splitlines(True), actual.splitlines(True),
                f"{name} (as generated)", f"{name} (in the tree)", n=1))
    if differing:
        print(f"\n{len(differing)} learner file(s) differ from what tools/generate.py makes "
              "from solutions/.\nMaintainer: run `python3 tools/generate.py learner` and commit. "
              "Learner: that is your own work; `./workbook reset STEP` brings the stubs back.")
        return 1
    print("learner files match the solutions")
    return 0


def function_span(lines, name, path):
    """(first, last) line indexes of the definition of `name` in lines:
    from the line at column 0 that names it and does not end in ';',
    to the next line that is exactly '}'."""
    signature = re.compile(r"^[A-Za-z_].*\b" + re.escape(name) + r"\(")
    for first, line in enumerate(lines):
        if signature.match(line) and not line.rstrip().endswith(";"):
            for last in range(first, len(lines)):
                if lines[last] == "}":
                    return first, last
    raise GenerateError(f"{path}: no definition of {name}() to replace")


def fixture_text(fixture_source, target_source, fixture_path, target_path):
    """target_source with the functions of fixture_source swapped in."""
    parts = re.split(r"^/\* replaces (\w+) \*/$", fixture_source, flags=re.M)
    prelude, replacements = parts[0], list(zip(parts[1::2], parts[2::2]))
    if not replacements:
        raise GenerateError(f"{fixture_path}: no '/* replaces NAME */' line")
    lines = target_source.split("\n")
    for name, body in replacements:
        first, last = function_span(lines, name, target_path)
        lines[first:last + 1] = body.strip("\n").split("\n")
    # The fixture's own includes and helpers go after the target's includes.
    prelude = re.sub(r"^/\*.*?\*/\n", "", prelude.lstrip(), count=1, flags=re.S).strip("\n")
    last_include = max((i for i, l in enumerate(lines) if l.startswith("#include")), default=-1)
    header = [f"/* Generated by tools/generate.py from {target_path} and {fixture_path}. */"]
    lines[last_include + 1:last_include + 1] = ["", prelude] if prelude else []
    return "\n".join(header + lines)


def main(argv):
    try:
        if len(argv) >= 1 and argv[0] == "learner":
            write_learner(argv[1:])
            return 0
        if argv == ["check"]:
            return check()
        if len(argv) == 4 and argv[0] == "fixture":
            fixture, target, out = (pathlib.Path(a) for a in argv[1:])
            text = fixture_text(fixture.read_text(), target.read_text(), fixture.name, target.name)
            out.write_text(text)
            return 0
    except GenerateError as error:
        print(f"generate.py: {error}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
