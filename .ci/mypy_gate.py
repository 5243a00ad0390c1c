"""Types checked against a committed baseline that may only shrink (issue 21). mypy runs over kehu/; an error
that is not in .ci/mypy-baseline.txt fails, and so does a baseline entry that no longer occurs, so the baseline
follows every fix down: `python .ci/mypy_gate.py --update` rewrites it. Entries leave out line numbers, which
move with every edit above them. The baseline itself may not gain an entry over the previous commit's (an error
is fixed, not written into the baseline)."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path

BASELINE = Path(__file__).with_name("mypy-baseline.txt")
ERROR = re.compile(r"^(?P<file>[^:]+):\d+: error: (?P<message>.*)$")


def current() -> collections.Counter[str]:
    done = subprocess.run([sys.executable, "-m", "mypy", "kehu"], capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 2: mypy itself failed
        sys.exit(f"mypy did not run:\n{done.stdout}{done.stderr}")
    found: collections.Counter[str] = collections.Counter()
    for line in done.stdout.splitlines():
        match = ERROR.match(line)
        if match:
            found[f"{match['file']}: {match['message']}"] += 1
    return found


def grown(known: collections.Counter[str]) -> collections.Counter[str]:
    """Entries of the baseline that the previous commit's baseline did not have (nothing, outside a git clone)."""
    done = subprocess.run(["git", "show", f"HEAD~1:{BASELINE.relative_to(BASELINE.parent.parent).as_posix()}"],
                          capture_output=True, text=True, cwd=BASELINE.parent.parent)
    if done.returncode != 0:
        return collections.Counter()
    return known - collections.Counter(done.stdout.splitlines())


def main() -> int:
    found = current()
    if "--update" in sys.argv:
        BASELINE.write_text("".join(f"{entry}\n" for entry in sorted(found.elements())), encoding="utf-8")
        print(f"baseline: {sum(found.values())} errors")
        return 0
    known = collections.Counter(BASELINE.read_text(encoding="utf-8").splitlines()) if BASELINE.exists() else {}
    new = found - known
    gone = known - found
    for entry in sorted(new.elements()):
        print(f"new type error: {entry}")
    for entry in sorted(gone.elements()):
        print(f"fixed, still in the baseline (run python .ci/mypy_gate.py --update): {entry}")
    added = grown(collections.Counter(known))
    for entry in sorted(added.elements()):
        print(f"added to the baseline since the previous commit (fix it instead): {entry}")
    print(f"mypy: {sum(found.values())} errors, baseline {sum(known.values())}")
    return 1 if new or gone or added else 0


if __name__ == "__main__":
    sys.exit(main())
