#!/usr/bin/env python3
"""The gateway's folders depend on each other without cycles (Endpoint -> Pipeline -> Registry ->
Downstream; Admin and Auth beside them). Prints each folder's dependencies; exits 1 on a cycle."""
import os
import re
import sys
from collections import defaultdict

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Services", "Gateway", "Library")
folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
declaration = re.compile(r"^(?:package |public |private |fileprivate )?(?:final )?(?:struct|class|enum|actor|protocol) (\w+)", re.M)


def sources(folder):
    """The Swift files of a top-level folder, its subfolders' included (they are part of its layer)."""
    for directory, subdirectories, names in sorted(os.walk(os.path.join(root, folder))):
        subdirectories.sort()
        for name in sorted(names):
            if name.endswith(".swift"):
                with open(os.path.join(directory, name)) as f:
                    yield re.sub(r"//.*", "", f.read())


home = {name: folder for folder in folders for text in sources(folder) for name in declaration.findall(text)}
depends = defaultdict(set)
for folder in folders:
    for text in sources(folder):
        for name, owner in home.items():
            if owner != folder and re.search(r"\b" + name + r"\b", text):
                depends[folder].add(owner)


def reaches(start, goal, seen):
    return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in depends[start])


cycles = sorted({tuple(sorted((a, b))) for a in folders for b in depends[a] if reaches(b, a, {b})})
for folder in folders:
    print(f"layers: {folder} -> {', '.join(sorted(depends[folder])) or '(nothing)'}")
for a, b in cycles:
    print(f"layers: cycle between {a}/ and {b}/", file=sys.stderr)
sys.exit(1 if cycles else 0)
