#!/usr/bin/env python3
"""make check: the module map in Package.swift holds in the sources, and no file or function
grows past what a maintainer reads at once.

- a target imports only the targets it lists (SwiftPM lets a module import any target built
  before it; this does not);
- docs/architecture.md's module table names every target with the dependencies Package.swift gives it;
- no Swift file over 400 lines (the store's migrations excepted), no function over 80 lines.
"""
import json, os, re, subprocess, sys

MAX_FILE, MAX_FUNC = 400, 80
EXEMPT_FILES = {"Sources/RevenantStore/StoreMigrations.swift"}

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(root)
pkg = json.loads(subprocess.run(["swift", "package", "dump-package"], check=True, capture_output=True, text=True).stdout)
ours = {t["name"] for t in pkg["targets"]}
problems = []

for t in pkg["targets"]:
    path = t.get("path") or ("Tests/" if t["type"] == "test" else "Sources/") + t["name"]
    allowed = {d["byName"][0] for d in t["dependencies"] if "byName" in d} | {t["name"]}
    for dirpath, _, names in os.walk(path):
        for n in names:
            if not n.endswith(".swift"):
                continue
            f = os.path.join(dirpath, n)
            for i, line in enumerate(open(f, encoding="utf-8"), 1):
                m = re.match(r"\s*(?:@testable\s+|@_exported\s+)?import\s+(\w+)", line)
                if m and m.group(1) in ours and m.group(1) not in allowed:
                    problems.append(f"{f}:{i}: {t['name']} imports {m.group(1)}, which is not in its dependencies in Package.swift")

# The module table in docs/architecture.md, against Package.swift.
shipped = {t["name"]: {d["byName"][0] for d in t["dependencies"] if "byName" in d}
           for t in pkg["targets"] if t["type"] in ("regular", "executable") and t.get("path") is None}
doc = open("docs/architecture.md", encoding="utf-8").read()
table = doc.split("## Module map", 1)[-1].split("\n## ", 1)[0]
drawn = {}
for line in table.split("\n"):
    m = re.match(r"\| `([\w-]+)` \| ([^|]*) \|", line)
    if m:
        drawn[m.group(1)] = set(re.findall(r"`([\w-]+)`", m.group(2)))
for name in sorted(set(shipped) | set(drawn)):
    if name not in drawn:
        problems.append(f"docs/architecture.md: the module table lacks {name}")
    elif name not in shipped:
        problems.append(f"docs/architecture.md: the module table names {name}, which Package.swift does not have")
    elif drawn[name] != shipped[name]:
        problems.append(f"docs/architecture.md: {name} depends on {sorted(shipped[name])} in Package.swift, the table says {sorted(drawn[name])}")

func = re.compile(r"^(\s*)(?:@[\w.]+(?:\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\))?\s+)*(?:(?:public|package|private|fileprivate|internal|static|final|override|mutating|nonisolated|@inline\(__always\)|class)\s+)*(?:func\s+\S+|init\??|subscript)[\s(<]")
for base in ("Sources", "Tests"):
    for dirpath, _, names in os.walk(base):
        for n in sorted(names):
            if not n.endswith(".swift"):
                continue
            f = os.path.join(dirpath, n)
            lines = open(f, encoding="utf-8").read().split("\n")
            if len(lines) - 1 > MAX_FILE and f not in EXEMPT_FILES:
                problems.append(f"{f}: {len(lines) - 1} lines (at most {MAX_FILE}): split it by concern")
            for i, line in enumerate(lines):
                m = func.match(line)
                if not m or "{" not in line and not (i + 1 < len(lines) and "{" in lines[i + 1]):
                    continue
                indent = m.group(1)
                # The body ends at the first later line that closes at the declaration's indentation.
                j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith(indent + "}")), i)
                if "}" in line.split("{", 1)[-1] and line.count("{") == line.count("}"):
                    continue  # one-line body
                if j - i + 1 > MAX_FUNC:
                    problems.append(f"{f}:{i + 1}: function of {j - i + 1} lines (at most {MAX_FUNC}): {line.strip()[:70]}")

for p in problems:
    print(p)
if problems:
    print(f"check-structure: {len(problems)} problem(s)", file=sys.stderr)
    sys.exit(1)
print("check-structure: module map, file and function sizes ok")
