#!/usr/bin/python3
"""Check the module floors stated in ARCHITECTURE.md against the includes.

ARCHITECTURE.md holds a table between the markers `<!-- layers:begin -->` and
`<!-- layers:end -->` with rows `| floor | module | role | purpose |`:
floor is an integer, module a directory under src/ (or `main` for
src/main.c), role `core`, `front end` or `program`.

Rules, for every #include "dir/..." in a file of module M under src/:
  1. dir is M itself, or a module on a lower floor than M;
  2. a core module includes no front-end module's header (a front end is
     a peer on top of the core, never below it);
  3. every directory under src/ appears in the table.
Exit status 0 when the tree follows them, 1 with one line per violation.
Standard library only; run by `make layers` (part of `make test`).
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def read_table(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"<!-- layers:begin -->(.*?)<!-- layers:end -->", text, re.S)
    if not m:
        sys.exit(f"layers: no '<!-- layers:begin -->' table in {path}")
    mods = {}
    for line in m.group(1).splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].isdigit():
            continue
        floor, module, role = int(cells[0]), cells[1].rstrip("/"), cells[2]
        if module.startswith("src/"):
            module = module[4:]
        if role not in ("core", "front end", "program"):
            sys.exit(f"layers: module {module}: role must be core, front end or program")
        mods[module] = (floor, role)
    return mods


def module_of(rel):
    """src/log/log.c -> log; src/proto/kafka/gen/x.c -> proto; src/main.c -> main."""
    parts = rel.split("/")
    if len(parts) == 2:
        return os.path.splitext(parts[1])[0]
    return parts[1]


def main():
    mods = read_table(os.path.join(ROOT, "ARCHITECTURE.md"))
    bad = []
    src = os.path.join(ROOT, "src")
    for d in sorted(os.listdir(src)):
        if os.path.isdir(os.path.join(src, d)) and d not in mods:
            bad.append(f"src/{d}: not in the ARCHITECTURE.md layers table")
    for dirpath, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), ROOT)
            me = module_of(rel)
            if me not in mods:
                continue
            my_floor, my_role = mods[me]
            for n, line in enumerate(open(os.path.join(ROOT, rel), encoding="utf-8"), 1):
                m = INCLUDE.match(line)
                if not m or "/" not in m.group(1):
                    continue
                dep = m.group(1).split("/")[0]
                if dep == me or dep not in mods:
                    continue
                floor, role = mods[dep]
                if my_role == "core" and role == "front end":
                    bad.append(f"{rel}:{n}: core module {me} includes front end {dep} ({m.group(1)})")
                elif floor >= my_floor:
                    bad.append(f"{rel}:{n}: {me} (floor {my_floor}) includes {m.group(1)} "
                               f"from {dep} (floor {floor}): only lower floors")
    for b in bad:
        print(b)
    if bad:
        print(f"layers: {len(bad)} violation(s) (table in ARCHITECTURE.md)")
        return 1
    print(f"layers: {len(mods)} modules, every include goes down a floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
