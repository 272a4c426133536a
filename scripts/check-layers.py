#!/usr/bin/env python3
"""Fail on an import cycle between the modules of a crate.

For each `src/` of the workspace's crates, every `crate::a::...` path in a
module's code (outside its trailing `#[cfg(test)]` part) is an edge from the
module's top-level module to `a`. A cycle among top-level modules (`server`
uses `chat`, which uses `server`) is reported with its path and fails the
check, so the layers the crate doc draws stay layers.

Usage: scripts/check-layers.py [CRATE_SRC_DIR ...]   (default: crates/*/src)
"""

import glob
import os
import re
import sys

PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
USE_GROUP = re.compile(r"\buse\s+crate::\{([^;]*)\}", re.S)


def top_module(src: str, file: str) -> str:
    rel = os.path.relpath(file, src)
    parts = rel[:-3].split(os.sep)  # strip .rs
    if parts[0] in ("lib", "main"):
        return "crate"
    return parts[0]


def code_without_tests(text: str) -> str:
    # The convention: a module's tests come last, under #[cfg(test)].
    cut = text.find("\n#[cfg(test)]")
    text = text if cut < 0 else text[:cut]
    # Comments mention paths without depending on them.
    text = re.sub(r"//[^\n]*", "", text)
    return text


def edges(src: str) -> dict:
    graph: dict = {}
    for file in glob.glob(os.path.join(src, "**", "*.rs"), recursive=True):
        if os.sep + "bin" + os.sep in file:
            continue
        me = top_module(src, file)
        with open(file, encoding="utf-8") as f:
            code = code_without_tests(f.read())
        targets = set(PATH.findall(code))
        for group in USE_GROUP.findall(code):
            for item in group.split(","):
                name = item.strip().split("::")[0].strip()
                if re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                    targets.add(name)
        for t in targets:
            if t != me and me != "crate":
                graph.setdefault(me, set()).add(t)
        graph.setdefault(me, set())
    return graph


def find_cycle(graph: dict):
    state: dict = {}
    stack: list = []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def main() -> int:
    srcs = sys.argv[1:] or sorted(glob.glob("crates/*/src"))
    failed = False
    for src in srcs:
        graph = edges(src)
        cycle = find_cycle(graph)
        if cycle:
            failed = True
            print(f"{src}: import cycle: {' -> '.join(cycle)}")
            for a, b in zip(cycle, cycle[1:]):
                print(f"  {a} uses crate::{b}")
        else:
            print(f"{src}: no import cycle among {len(graph)} modules")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
