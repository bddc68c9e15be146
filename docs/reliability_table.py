"""Write docs/reliability.md from docs/reliability.yaml (the one source of the table).

python docs/reliability_table.py            # rewrite the page
python docs/reliability_table.py --check    # exit 1 when the page is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SOURCE, PAGE = HERE / "reliability.yaml", HERE / "reliability.md"

INTRO = """\
# Reliability: faults tried and what the user sees

Generated from `docs/reliability.yaml` by `python docs/reliability_table.py`; do not
edit by hand (`tests/test_docs.py` fails when the two disagree, or when a named test
does not exist). Each row has a test that fails without the fix. User mistakes exit
with status 2 and one message naming the file, line or key; nothing is left
half-written. Rows marked *new* are the second round (issue 20).

| fault or bad input | what the user sees | tests |
| --- | --- | --- |
"""

OUTRO = """
## Stopping a run by hand

- **Ctrl-C** in the terminal of `deepspeed ...` / `torchrun ...`: every rank finishes
  its step, saves a checkpoint and stops (exit 130); rerun the same command to resume.
  The `deepspeed` launcher kills its ranks 30 s after a Ctrl-C: a save that takes longer
  (a large model) is cut, leaves nothing half-written, and the next launch resumes from
  the previous checkpoint. To give a large save its time, signal the rank processes
  only, not the launcher: `kill -INT $(pgrep -f training/train.py)` (on each node).
- **From another shell**: signal the launcher's whole process group, as a terminal
  does, so that the ranks hear it too: `kill -INT -- -$(ps -o pgid= -p LAUNCHER_PID | tr -d ' ')`
  (saves, exit 130) or `-TERM` (saves, exit 124: "requeue me", as a scheduler's
  preemption). Killing only the launcher also works: its ranks notice within about a
  second, save and stop.
- **At once, no save**: `kill -KILL -- -PGID`; the next launch resumes from the last
  periodic checkpoint (`save_every`).

## Resuming with other settings

A relaunch into a `run_dir` that has checkpoints resumes (`resume: auto`) and first
compares its settings with `run_dir/config.json`. Settings that change what is trained
are refused with the list of differences. To continue anyway:

```bash
deepspeed training/train.py --config CONFIG ... run_dir=RUN lr=3e-4 --allow-config-change
```

Each accepted change is appended to `RUN/config_changes.jsonl` as
`{"step": N, "changes": {"lr": {"was": 0.001, "now": 0.0003}}}`, and `config.json` then
holds the new settings. To start afresh instead: another `run_dir`, or `resume=never`.
"""


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(cases: list[dict]) -> str:
    rows = []
    for case in cases:
        fault = cell(case["fault"]) + (" *(new)*" if case.get("new") else "")
        tests = "<br>".join(
            f"`{t.split('::')[0].removeprefix('tests/')}::{t.split('::')[1]}`"
            for t in case["tests"]
        )
        rows.append(f"| {fault} | {cell(case['sees'])} | {tests} |")
    return INTRO + "\n".join(rows) + "\n" + OUTRO


def main(argv: list[str]) -> int:
    text = render(yaml.safe_load(SOURCE.read_text(encoding="utf-8")))
    if "--check" in argv:
        if PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is out of date: run python docs/reliability_table.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
