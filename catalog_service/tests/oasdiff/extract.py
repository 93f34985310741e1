"""How pairs.json was made: the base/revision pairs of oasdiff's checker tests, each
with what the test says oasdiff finds (rule ids and levels), and the data files they
name copied beside it.

    python extract.py PATH-TO-A-GIT-CLONE-OF-oasdiff

Kept out of the measurement: tests that change a document in Go code after loading
it (the files alone are not what they compare), that configure the checker away from
its defaults (deprecation days, stability level, attributes, severities), that
compare a file with itself, and tests whose non-breaking verdict is not exclusive
(they assert that one finding is present, not that nothing else is).

For a test that runs one of oasdiff's checks, only that check's findings are known:
its "family" (the rule ids rules.go registers for it, and those the test names) is
what the pair is judged on.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HELPER_DIRS = {
    "deprecationFile": "deprecation",
    "paramDeprecationFile": "param-deprecation",
    "requiredPropertyFile": "required-properties",
    "stabilityFile": "stability",
}
LOADS = re.compile(
    r'open\((?:(\w+)\()?"([^"]+)"\)?'  # open("../data/x.yaml") or open(deprecationFile("x.yaml"))
    r"|\bl\(t,\s*(\d+)"  # l(t, 1): data/openapi-test1.yaml
    r"|\bd\(t,\s*[^,]+,\s*(\d+),\s*(\d+)"  # d(t, config, 1, 2)
    r'|stabilityChanges\(t,\s*"([^"]+)",\s*"([^"]+)"'
)
MODIFIED = re.compile(r"\b(s1|s2|l1|l2|base|revision)\.Spec\b[^\n]*(=|\.Delete|\.Set|Put|Append)")
CONFIGURED = re.compile(r"WithDeprecation|StabilityLevel|WithAttributes|WithSeverityLevels|config\.\w+\s*=")
EXCLUSIVE = re.compile(
    r"requireSingleChange|requireSingleApiChange|require\.(Empty|Len)\(t, errs|require\.ElementsMatch"
    r"|require\.Equal\(t, checker\.Changes"
)


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True).stdout


def loads(body: str) -> list[str | None]:
    """The files a test loads, in order (None: one this script cannot name)."""
    found: list[str | None] = []
    for m in LOADS.finditer(body):
        if m.group(2):
            helper, name = m.group(1), m.group(2)
            if helper:
                found.append(f"data/{HELPER_DIRS[helper]}/{name}" if helper in HELPER_DIRS else None)
            else:
                found.append(name.removeprefix("../"))
        elif m.group(3):
            found.append(f"data/openapi-test{m.group(3)}.yaml")
        elif m.group(4):
            found += [f"data/openapi-test{m.group(4)}.yaml", f"data/openapi-test{m.group(5)}.yaml"]
        else:
            found += [f"data/stability/{m.group(6)}", f"data/stability/{m.group(7)}"]
    return found


def main(repo: str) -> None:
    names = git(repo, "ls-tree", "-r", "--name-only", "HEAD", "checker/").split()
    sources = {name: git(repo, "show", f"HEAD:{name}") for name in names if name.endswith(".go")}
    consts = {
        m.group(1): m.group(2)
        for source in sources.values()
        for m in re.finditer(r'\b([A-Z][A-Za-z0-9]*Id)\s*=\s*"([a-z0-9-]+)"', source)
    }
    levels: dict[str, str] = {}
    families: dict[str, list[str]] = {}
    for m in re.finditer(
        r"newBackwardCompatibilityRule\((\w+),\s*(ERR|WARN|INFO),\s*(\w+)", sources["checker/rules.go"]
    ):
        rule = consts.get(m.group(1), m.group(1))
        levels[rule] = m.group(2)
        families.setdefault(m.group(3), []).append(rule)

    pairs: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for name, source in sources.items():
        if not name.endswith("_test.go"):
            continue
        for m in re.finditer(r"^func (Test\w+)\(t \*testing\.T\) \{\n(.*?)^\}", source, re.S | re.M):
            test, body = m.group(1), m.group(2)
            files = loads(body)
            if "t.Run(" in body or len(files) != 2 or None in files:
                skipped["not two files"] += 1
                continue
            base, revision = str(files[0]), str(files[1])
            if MODIFIED.search(body):
                skipped["changed in code"] += 1
                continue
            if CONFIGURED.search(body):
                skipped["configured"] += 1
                continue
            if base == revision:
                skipped["same file"] += 1
                continue
            absent = re.findall(
                r"require\.(?:False|Nil)\(t, (?:containsId|findChange)\(\w+, checker\.(\w+Id)\)", body
            )
            absent += re.findall(r"require\.NotEqual\(t, checker\.(\w+Id)", body)
            ids = sorted(
                {consts.get(i, i) for i in re.findall(r"checker\.(\w+Id)\b", body) if i not in absent}
            )
            empty = bool(re.search(r"require\.(Empty|Len)\(t, errs(, 0)?\)", body)) and not ids
            if not ids and not empty:
                skipped["no expectation"] += 1
                continue
            checks = re.findall(r"singleCheckConfig\(checker\.(\w+)", body)
            checks += re.findall(r"WithSingleCheck\(checker\.(\w+)", body)
            checks += re.findall(r"BackwardCompatibilityChecks\{\s*checker\.(\w+)", body)
            checks += re.findall(r"errs := checker\.(\w+Check)\(", body)
            family = sorted({rule for check in set(checks) for rule in families.get(check, [])})
            if checks and not family:
                skipped["unknown check"] += 1
                continue
            explicit = re.findall(r"Level:\s*checker\.(ERR|WARN|INFO)", body)
            found_levels = sorted(set(explicit) if explicit else {levels.get(i, "?") for i in ids})
            if "ERR" not in found_levels and not EXCLUSIVE.search(body):
                skipped["not exclusive"] += 1
                continue
            pairs.append(
                {
                    "test": f"{name}:{test}",
                    "base": base,
                    "revision": revision,
                    "ids": ids,
                    "levels": found_levels,
                    "checks": sorted(set(checks)),
                    "family": family,
                }
            )
    for pair in pairs:
        for side in ("base", "revision"):
            target = HERE / pair[side]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(git(repo, "show", f"HEAD:{pair[side]}"))
    sha = git(repo, "rev-parse", "HEAD").strip()
    manifest = {"source": f"https://github.com/oasdiff/oasdiff/tree/{sha}", "pairs": pairs}
    (HERE / "pairs.json").write_text(json.dumps(manifest, indent=1) + "\n")
    breaking = sum("ERR" in p["levels"] for p in pairs)
    print(f"{len(pairs)} pairs ({breaking} breaking); left out: {dict(skipped)}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
