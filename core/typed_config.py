"""Typed dataclass configs from YAML with `key=value` overrides, validated up front.

`load_config(cls, path, overrides)` reads YAML, applies dotted overrides such as
`align.aligner=fast_align` (values parsed as YAML scalars), converts every field to
its annotated type and collects *every* problem (unknown keys, wrong types, values
outside a Literal) before raising one `ConfigError` that lists them all with keys.
Dataclasses may add a `problems(key) -> list[str]` method for cross-field checks.

Every setting of a config, nested ones as dotted keys, with its type, default and meaning
(the field's `field(metadata={"doc": ...})`, else the string right below the field, else
its `#` comment), as a Markdown table (docs/ embeds these, core.gendocs keeps them current):

    python -m core.typed_config --list eval.config:EvalConfig
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import importlib
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """One or more config problems, each naming its key."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} config problem(s):\n{lines}")


def parse_override(item: str) -> tuple[list[str], Any]:
    """`"a.b=3"` -> (["a", "b"], 3)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError("command line", [f"override {item!r}: expected key=value"])
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def parse_args_with_overrides(
    parser: argparse.ArgumentParser, argv: list[str] | None = None
) -> argparse.Namespace:
    """Parse a command line whose `overrides` positional collects `key=value` items.

    argparse ends a positional list at the first option, so overrides given after
    options come back as leftovers; they are appended, and anything else is an error.
    """
    args, extra = parser.parse_known_args(argv)
    unknown = [item for item in extra if item.startswith("-") or "=" not in item]
    if unknown or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    return args


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (creating mappings on the way)."""
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    return data


def load_config(cls: type[T], path: str | Path | None, overrides: list[str] | None = None) -> T:
    """Read `path` (YAML), apply overrides, convert and validate; raise ConfigError."""
    source = str(path) if path else "config"
    data: Any = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(source, [f"file not found: {path}"]) from None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(source, [f"cannot read: {err}"]) from None
        except yaml.YAMLError as err:
            raise ConfigError(source, [f"not valid YAML: {err}"]) from None
        if not isinstance(data, dict):
            raise ConfigError(source, [f"top level must be a mapping, got {type(data).__name__}"])
    apply_overrides(data, overrides or [])
    problems: list[str] = []
    obj = convert(cls, data, "", problems)
    problems.extend(p for p in _cross_checks(obj, "") if p not in problems)
    if problems:
        raise ConfigError(_blame(source if path else None, problems, overrides or []), problems)
    return obj


def _problem_key(problem: str) -> str:
    return problem.split(":", 1)[0].split("[", 1)[0].strip()


def _blame(file: str | None, problems: list[str], overrides: list[str]) -> str:
    """The header of a ConfigError: the file, and the key=value overrides whose keys have
    problems (the file never said those values); only the overrides when the file has
    none of the problems."""
    given = {item.partition("=")[0].strip(): item for item in overrides}
    named: list[str] = []
    from_file = False
    for problem in problems:
        key = _problem_key(problem)
        item = next(
            (v for k, v in given.items() if key == k or key.startswith(f"{k}.")
             or k.startswith(f"{key}.")),
            None,
        )  # fmt: skip
        from_file = from_file or item is None
        if item is not None and item not in named:
            named.append(item)
    if not named:
        return file or "config"
    overridden = f"override{'s' if len(named) > 1 else ''} {', '.join(map(repr, named))}"
    return f"{file} and {overridden}" if file and from_file else overridden


def _cross_checks(obj: Any, key: str) -> list[str]:
    found: list[str] = []
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            found.extend(_cross_checks(getattr(obj, f.name), _join(key, f.name)))
        if hasattr(obj, "problems"):
            # A field of the wrong type (already reported by convert) may break the check.
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                found.extend(obj.problems(key or "config"))
    elif isinstance(obj, (list, tuple)):
        for index, item in enumerate(obj):
            found.extend(_cross_checks(item, f"{key}[{index}]"))
    elif isinstance(obj, dict):
        for name, item in obj.items():
            found.extend(_cross_checks(item, f"{key}.{name}"))
    return found


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def convert(tp: Any, value: Any, key: str, problems: list[str]) -> Any:
    """Convert `value` to type `tp`, appending problems instead of raising."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, key, problems)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return convert(inner[0], value, key, problems) if len(inner) == 1 else value
    if origin is typing.Literal:
        if value not in args:
            problems.append(f"{key or 'value'}: {value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            problems.append(f"{key}: expected a list, got {value!r}")
            return []
        item_type = args[0] if args else Any
        items = [convert(item_type, v, f"{key}[{i}]", problems) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{key}: expected a mapping, got {value!r}")
            return {}
        value_type = args[1] if args else Any
        return {k: convert(value_type, v, f"{key}.{k}", problems) for k, v in value.items()}
    return _convert_scalar(tp, value, key, problems)


def _convert_scalar(tp: Any, value: Any, key: str, problems: list[str]) -> Any:
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # YAML 1.1 reads "3e-3" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    numeric_bool = tp in (int, float) and isinstance(value, bool)
    if not isinstance(tp, type) or not isinstance(value, tp) or numeric_bool:
        name = getattr(tp, "__name__", str(tp))
        problems.append(f"{key}: expected {name}, got {value!r}")
    return value


def _convert_dataclass(cls: type, value: Any, key: str, problems: list[str]) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.append(f"{key or 'config'}: expected a mapping, got {value!r}")
        return None
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for name in sorted(set(value) - set(known)):
        problems.append(f"{_join(key, str(name))}: unknown key (known: {', '.join(sorted(known))})")
    kwargs = {}
    missing = False
    for name, f in known.items():
        if name in value:
            kwargs[name] = convert(hints[name], value[name], _join(key, name), problems)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(f"{_join(key, name)}: required key is missing")
            missing = True
    if missing:
        problems.extend(_checks_without(cls, kwargs, key))
        return None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        problems.append(f"{key or 'config'}: {err}")
        return None


def _checks_without(cls: type, kwargs: dict[str, Any], key: str) -> list[str]:
    """The value checks a config with missing keys would fail too, so that one run names
    every problem: the checks run on a stand-in whose missing keys are None (a check that
    reads one of them is skipped)."""
    stand_in = object.__new__(cls)
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        value = kwargs.get(f.name, None if default is dataclasses.MISSING else default)
        object.__setattr__(stand_in, f.name, value)
    return _cross_checks(stand_in, key)


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain data (for saving the resolved config)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


# Comments that are tool directives, not a field's meaning.
_DIRECTIVES = ("fmt:", "type:", "noqa", "pragma")


def _comments(source: str) -> dict[int, str]:
    """The text of each `#` comment by line (1-based), tool directives left out."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    found = {}
    for tok in tokens:
        text = tok.string.lstrip("#").strip()
        if tok.type == tokenize.COMMENT and not text.startswith(_DIRECTIVES):
            found[tok.start[0]] = text
    return found


def _source_docs(cls: type) -> dict[str, str]:
    """Field docs from the class source: the string literal right after a field (an
    attribute docstring), else the comment ending its line, else the comment lines just
    above it."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines, comments = source.splitlines(), _comments(source)
    body = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)).body
    docs = {}
    for index, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        after = body[index + 1] if index + 1 < len(body) else None
        if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            docs[node.target.id] = " ".join(str(after.value.value).split())
        elif (end := node.end_lineno or node.lineno) in comments:
            docs[node.target.id] = comments[end]
        else:
            above, line = [], node.lineno - 1
            while line in comments and lines[line - 1].lstrip().startswith("#"):
                above.insert(0, comments[line])
                line -= 1
            if above:
                docs[node.target.id] = " ".join(above)
    return docs


def field_docs(cls: type) -> dict[str, str]:
    """Each documented field's meaning, `metadata={"doc": ...}` winning over the source."""
    docs = _source_docs(cls)
    docs.update({f.name: f.metadata["doc"] for f in dataclasses.fields(cls) if "doc" in f.metadata})
    return docs


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    return json.dumps(to_dict(value), ensure_ascii=False)


def settings(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, meaning) of every setting; a field whose type is a
    dataclass is listed by its own fields."""
    hints, docs, rows = typing.get_type_hints(cls), field_docs(cls), []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            rows += settings(tp, f"{key}.")
            continue
        shown = f.type if isinstance(f.type, str) else getattr(tp, "__name__", str(tp))
        rows.append((key, shown, _default(f), docs.get(f.name, "")))
    return rows


def settings_table(cls: type) -> str:
    """The settings as a Markdown table."""
    out = ["| setting | type | default | meaning |", "|---|---|---|---|"]
    for row in settings(cls):
        cells = [c.replace("|", "\\|") for c in row]
        out.append(f"| `{cells[0]}` | `{cells[1]}` | `{cells[2]}` | {cells[3]} |")
    return "\n".join(out)


def load_class(target: str) -> type:
    """`module:Class` -> the dataclass."""
    module, _, name = target.partition(":")
    cls = getattr(importlib.import_module(module), name, None) if name else None
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ConfigError(target, ["expected module:Class naming a dataclass config"])
    return cls


def main(argv: list[str] | None = None) -> None:
    cli = argparse.ArgumentParser(
        prog="python -m core.typed_config", description="List every setting of a typed config."
    )
    cli.add_argument("--list", nargs="+", required=True, metavar="MODULE:CLASS",
                     help="e.g. eval.config:EvalConfig data_prep.recipe:Recipe")  # fmt: skip
    args = cli.parse_args(argv)
    try:
        tables = [settings_table(load_class(target)) for target in args.list]
    except ConfigError as err:
        cli.exit(2, f"error: {err}\n")
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
