#!/usr/bin/env python3
"""Fail when the Dockerfile copies a path that does not exist.

No Docker engine runs on the project's machines, so the image is never built
in CI; this keeps its build stage in step with the workspace: every local
source of a COPY (not `--from=` another stage) must exist, and the build
command must build the gateway package.
"""

import os
import shlex
import sys


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "Dockerfile"
    root = os.path.dirname(os.path.abspath(path))
    problems = []
    saw_build = False
    with open(path, encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    for n, line in enumerate(text.splitlines(), 1):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        op = words[0].upper()
        if op == "COPY":
            args = [w for w in words[1:] if not w.startswith("--")]
            if any(w.startswith("--from") for w in words[1:]):
                continue
            for src in args[:-1]:
                if not os.path.exists(os.path.join(root, src)):
                    problems.append(f"{path}:{n}: COPY source '{src}' does not exist")
        if op == "RUN" and "cargo build" in line:
            saw_build = True
            if "-p gateway" not in line:
                problems.append(f"{path}:{n}: the build should build only the gateway package (-p gateway)")
    if not saw_build:
        problems.append(f"{path}: no `cargo build` in the build stage")
    for p in problems:
        print(p)
    if not problems:
        print(f"{path}: every COPY source exists")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
