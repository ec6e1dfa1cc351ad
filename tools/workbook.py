#!/usr/bin/env python3
"""The commands of ./workbook (which installs what they need first).

Run through ./workbook, not directly: see ./workbook --help. Each command
lives in its own module; what they share is in project.py.
"""
import importlib
import sys

# command: (module, function)
COMMANDS = {
    "test": ("learner", "command_test"),
    "progress": ("learner", "command_progress"),
    "reset": ("learner", "command_reset"),
    "demo": ("demo", "main"),
    "check": ("check", "main"),
    "bench": ("bench", "main"),
    "build": ("project", "command_build"),
    "fuzz": ("fuzz", "main"),
}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        sys.exit("usage: ./workbook COMMAND; see ./workbook --help")
    module, function = COMMANDS[argv[0]]
    return getattr(importlib.import_module(module), function)(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
