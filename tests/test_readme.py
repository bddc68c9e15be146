"""Every command in the README refers to what exists: a make target (and its variables), a
module with the subcommand and flags given, a shipped recipe, grid or training config
with valid override keys, a file of the repository. Commands in ```bash blocks and in
inline code spans; every ```yaml block parses. The README stays short and undated."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from core.resources import resolve
from core.typed_config import ConfigError, parse_args_with_overrides

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PROGRAMS = ("make", "python", "torchrun", "deepspeed", "sbatch")
# The repository's own folders (not runs/, shards/ or data/ that commands write).
TOP_LEVEL = {p.parent.name for p in REPO.glob("*/__init__.py")} | {"docs", "requirements"}


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def block_commands(block: str) -> list[list[str]]:
    """Commands of a bash block, with variables (assignments, a for loop's first value)
    substituted; `for`/`do`/`done` lines and leading VAR=value assignments dropped."""
    env: dict[str, str] = {}
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["for"] and "in" in words:
            env[words[1]] = words[words.index("in") + 1].rstrip(";")
            continue
        if not words or words[0] in ("do", "done"):
            continue
        while words and re.fullmatch(r"[A-Za-z_]\w*=\S*", words[0]):
            name, value = words.pop(0).split("=", 1)
            env[name] = value
        if words:
            subst = r"\$\{?([A-Za-z_]\w*)\}?"
            commands.append([re.sub(subst, lambda m: env.get(m[1], m[0]), w) for w in words])
    return commands


def inline_commands(text: str) -> list[list[str]]:
    """Inline code spans that are commands (`make demo`, `python -m eval run ...`). A span
    ending in `...` or naming a module alone is a fragment: `...` is kept as its last word,
    and only what it gives is checked."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"\n(?!\n)", " ", text))
    found = []
    for span in spans:
        if span.split()[0] not in PROGRAMS:
            continue
        words = shlex.split(span)
        if len(words) > 1:
            fragment = words[0] == "python" and len(words) == 3
            found.append([*words, "..."] if fragment and words[-1] != "..." else words)
    return found


def readme_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    blocks = fenced(text, "bash")
    return [cmd for block in blocks for cmd in block_commands(block)] + inline_commands(text)


def fragment_problems(parser: argparse.ArgumentParser, args: list[str]) -> list[str]:
    """A command fragment (`python -m eval run --grid opus100 ...`): its subcommand and
    options exist; required arguments may be left out."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if args and subparsers:
        if args[0] not in subparsers[0].choices:
            return [f"{args[0]!r}: no such subcommand"]
        parser = subparsers[0].choices[args[0]]
    options = parser._option_string_actions
    return [f"{a}: no such option" for a in args if a.startswith("-") and a not in options]


# --- the checks, one per program ------------------------------------------------------


def make_targets_and_variables() -> tuple[set[str], set[str]]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w-]*):(?!=)", text, flags=re.M))
    variables = set(re.findall(r"^([A-Z_][A-Z0-9_]*)\s*[?:]?=", text, flags=re.M))
    return targets, variables


def check_make(args: list[str]) -> list[str]:
    targets, variables = make_targets_and_variables()
    problems = []
    for arg in args:
        if "=" in arg:
            if arg.split("=", 1)[0] not in variables:
                problems.append(f"make variable {arg.split('=', 1)[0]!r} not in the Makefile")
        elif arg not in targets:
            problems.append(f"make target {arg!r} not in the Makefile")
    return problems


def train_config_problems(config: str, overrides: list[str]) -> list[str]:
    """Problems of a training config and its overrides, less the data folder's (the
    README's shards are built by the commands before it)."""
    from training.config import load_train_config

    try:
        load_train_config(config, overrides)
    except ConfigError as err:
        return [p for p in err.problems if not p.startswith("data:")]
    return []


def shipped_problems(name: str, package: str) -> list[str]:
    if resolve(name, package, ".yaml").is_file():
        return []
    return [f"{name!r}: no such file, nor a shipped name in {package}"]


def cli_problems(module: str, args: list[str]) -> list[str]:
    """The module's own parser accepts the arguments; names of shipped files resolve."""
    if module in ("data_prep", "eval"):
        cli = importlib.import_module(f"{module}.cli")
        if args[-1:] == ["..."]:
            found = fragment_problems(cli.parser(), args[:-1])
            if module == "data_prep" and args[:1] == ["build"] and len(args) > 2:
                found += shipped_problems(args[1], "data_prep.recipes")
            if "--grid" in args:
                found += shipped_problems(args[args.index("--grid") + 1], "eval.grids")
            return found
        try:
            parsed = parse_args_with_overrides(cli.parser(), args)
        except SystemExit:
            return [f"python -m {module} {' '.join(args)}: rejected by its argument parser"]
        if module == "data_prep" and parsed.command == "build":
            from data_prep.recipe import load_recipe

            try:
                load_recipe(parsed.recipe, parsed.overrides)
            except ConfigError as err:
                return [f"recipe {parsed.recipe}: {err.problems}"]
        grid = getattr(parsed, "grid", None)
        return shipped_problems(grid, "eval.grids") if grid else []
    if module == "training.plan":
        from training.plan import parse_args

        try:
            parse_args(args)
        except SystemExit:
            return [f"python -m training.plan {' '.join(args)}: rejected"]
        return []
    if module == "training.train":
        config = args[args.index("--config") + 1] if "--config" in args else None
        overrides = [a for a in args if "=" in a]
        return train_config_problems(config, overrides) if config else []
    return [] if importlib.util.find_spec(module) else [f"no module {module}"]


def check_python(args: list[str]) -> list[str]:
    if args[:1] != ["-m"] or len(args) < 2:
        return [f"expected python -m MODULE, got {args}"]
    return cli_problems(args[1], args[2:])


def check_launcher(args: list[str]) -> list[str]:
    """deepspeed / torchrun: training/train.py (or -m training.train) and its config."""
    if "-m" in args:
        index = args.index("-m")
        return cli_problems(args[index + 1], args[index + 2 :])
    scripts = [i for i, a in enumerate(args) if a.endswith(".py")]
    if not scripts:
        return [f"no script in {args}"]
    return cli_problems("training.train", args[scripts[0] + 1 :])


def check_sbatch(args: list[str]) -> list[str]:
    scripts = [i for i, a in enumerate(args) if a.endswith(".sbatch")]
    if not scripts:
        return [f"no batch script in {args}"]
    script, rest = args[scripts[0]], args[scripts[0] + 1 :]
    if script == "training/slurm/train.sbatch":
        return train_config_problems(rest[0], rest[1:])
    if script == "eval/slurm/eval.sbatch":
        return cli_problems("eval", ["run", *rest])
    return [f"unknown batch script {script}"]


CHECKS: dict[str, Callable[[list[str]], list[str]]] = {
    "make": check_make,
    "python": check_python,
    "torchrun": check_launcher,
    "deepspeed": check_launcher,
    "sbatch": check_sbatch,
}


def path_problems(words: list[str]) -> list[str]:
    """Arguments that are paths into the repository's own folders must exist."""
    problems = []
    for word in words:
        value = word.split("=", 1)[-1]
        first = value.split("/", 1)[0]
        if "/" in value and first in TOP_LEVEL and "$" not in value and not (REPO / value).exists():
            problems.append(f"{value}: no such file in the repository")
    return problems


def check_command(words: list[str]) -> list[str]:
    check = CHECKS.get(words[0])
    if check is None:
        return [f"{words[0]}: not a command this test knows how to check"]
    return path_problems(words) + check(words[1:])


# --- the tests ----------------------------------------------------------------------


def test_the_readme_has_the_commands_a_newcomer_needs() -> None:
    commands = [" ".join(c) for c in readme_commands()]
    for needed in ("make demo", "make test", "python -m data_prep build", "sbatch",
                   "python -m eval run", "python -m eval report"):  # fmt: skip
        assert any(c.startswith(needed) or f" {needed}" in f" {c}" for c in commands), needed
    assert len(commands) >= 15


@pytest.mark.parametrize("words", readme_commands(), ids=lambda w: " ".join(w)[:60])
def test_every_readme_command_refers_to_what_exists(words: list[str]) -> None:
    assert check_command(words) == []


def test_every_readme_yaml_block_parses() -> None:
    for block in fenced(README.read_text(encoding="utf-8"), "yaml"):
        yaml.safe_load(block)


def test_the_readme_is_short_and_has_no_dates_or_timings() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\bUTC\b|\d+(\.\d+)? ?(s|min|ms)\b", text)


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("make demo-please", "make target 'demo-please'"),
        ("make demo DEMO_STEPZ=5", "make variable 'DEMO_STEPZ'"),
        ("python -m data_prep biuld freedict --out x", "rejected by its argument parser"),
        ("python -m data_prep build no-such-recipe --out x", "recipe no-such-recipe"),
        ("python -m eval run --grid opus101 --out x", "'opus101': no such file"),
        ("python -m data_prep build freedikt ...", "'freedikt': no such file"),
        ("python -m eval run --gird opus100 --out x", "rejected by its argument parser"),
        ("python -m eval runn --grid opus100 ...", "'runn': no such subcommand"),
        ("python -m eval run --gird opus100 ...", "--gird: no such option"),
        ("deepspeed training/train.py --config tiny-cpu dat=x", "dat: unknown key"),
        ("sbatch training/slurm/train.sbatch training/configs/nope.yaml data=x", "nope.yaml"),
        ("python -m eval report runs/a --out training/nope/x", "training/nope/x: no such file"),
        ("rm -rf runs", "not a command this test knows"),
    ],
)
def test_the_checks_catch_broken_commands(command: str, problem: str) -> None:
    assert problem in "\n".join(check_command(shlex.split(command)))
