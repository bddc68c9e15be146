"""core.typed_config: typed dataclasses from YAML plus overrides; all problems at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from core.typed_config import (
    ConfigError,
    apply_overrides,
    load_config,
    parse_override,
    to_dict,
)


@dataclass
class Inner:
    n: int = 1
    ratio: float = 0.5
    mode: Literal["fast", "slow"] = "fast"
    flag: bool = False

    def problems(self, key: str) -> list[str]:
        return [f"{key}.n: must be >= 0"] if self.n < 0 else []


@dataclass
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)
    limit: int | None = None
    weights: dict[str, float] = field(default_factory=dict)

    def problems(self, key: str) -> list[str]:
        return [f"{key}: name {self.name!r} is reserved"] if self.name == "reserved" else []


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str, overrides: list[str] | None = None) -> list[str]:
    """The problems of the one ConfigError that loading `text` must raise."""
    path = config_file(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(Outer, path, overrides)
    message = str(err.value)
    assert message.startswith(f"{path}: {len(err.value.problems)} config problem(s):")
    for problem in err.value.problems:
        assert f"  - {problem}" in message
    return err.value.problems


def test_nested_dataclass_from_yaml(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        "name: demo\ninner:\n  n: 4\n  ratio: 2\n  mode: slow\ntags: [a, b]\n"
        "weights: {mt: 1, align: 0.5}\n",
    )
    loaded = load_config(Outer, path)
    assert loaded == Outer(
        name="demo",
        inner=Inner(n=4, ratio=2.0, mode="slow"),
        tags=["a", "b"],
        weights={"mt": 1.0, "align": 0.5},
    )
    assert isinstance(loaded.inner.ratio, float)  # an int given for a float becomes a float
    assert isinstance(loaded.weights["mt"], float)


def test_defaults_fill_missing_sections(tmp_path: Path) -> None:
    assert load_config(Outer, config_file(tmp_path, "name: x\ninner:\n")) == Outer(name="x")


def test_parse_override_reads_yaml_scalars() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("ratio=0.25") == (["ratio"], 0.25)
    assert parse_override("flag=true") == (["flag"], True)
    assert parse_override("limit=null") == (["limit"], None)
    assert parse_override("tags=[x, y]") == (["tags"], ["x", "y"])
    assert parse_override("path=data/train.de") == (["path"], "data/train.de")
    assert parse_override("pair=de=en") == (["pair"], "de=en")  # only the first '=' splits
    assert parse_override("name=") == (["name"], "")


@pytest.mark.parametrize("item", ["no_equals_sign", "=3", "  =x"])
def test_malformed_override_is_a_config_error(item: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_override(item)
    assert err.value.problems == [f"override {item!r}: expected key=value"]


def test_apply_overrides_creates_nested_mappings() -> None:
    data = {"inner": None, "name": "x"}
    assert apply_overrides(data, ["inner.n=3", "deep.er.key=on", "name=y"]) == {
        "inner": {"n": 3},
        "name": "y",
        "deep": {"er": {"key": True}},
    }


def test_overrides_apply_on_top_of_the_file(tmp_path: Path) -> None:
    path = config_file(tmp_path, "name: demo\ninner: {n: 4, mode: slow}\n")
    loaded = load_config(
        Outer, path, ["inner.n=3", "inner.ratio=1.5", "tags=[a]", "limit=7", "name=other"]
    )
    assert loaded == Outer(
        name="other", inner=Inner(n=3, ratio=1.5, mode="slow"), tags=["a"], limit=7
    )


def test_overrides_without_a_file() -> None:
    assert load_config(Outer, None, ["name=x", "inner.flag=yes"]) == Outer(
        name="x", inner=Inner(flag=True)
    )


def test_unknown_keys_at_two_levels_in_one_error(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "name: x\nbogus: 1\ninner: {n: 2, zzz: 3}\n")
    assert len(problems) == 2
    assert problems[0].startswith("bogus: unknown key")
    assert "known: inner, limit, name, tags, weights" in problems[0]
    assert problems[1].startswith("inner.zzz: unknown key")
    assert "known: flag, mode, n, ratio" in problems[1]


def test_unknown_key_from_an_override(tmp_path: Path) -> None:
    """The header names the override, not the file that never said it."""
    path = config_file(tmp_path, "name: x\n")
    with pytest.raises(ConfigError) as err:
        load_config(Outer, path, ["inner.nn=3"])
    assert str(err.value).startswith("override 'inner.nn=3': 1 config problem(s):")
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith("inner.nn: unknown key")


def test_header_names_the_file_and_the_overrides_with_problems(tmp_path: Path) -> None:
    path = config_file(tmp_path, "name: x\nlimit: 1.5\n")
    with pytest.raises(ConfigError) as err:
        load_config(Outer, path, ["inner.n=-1", "name=y"])
    assert str(err.value).startswith(f"{path} and override 'inner.n=-1': 2 config problem(s)")


def test_wrong_types_are_reported_together(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        "name: x\ninner: {n: '3', ratio: true, flag: 1}\nlimit: true\ntags: a\n"
        "weights: {mt: high}\n",
    )
    assert sorted(problems) == sorted(
        [
            "inner.n: expected int, got '3'",
            "inner.ratio: expected float, got True",
            "inner.flag: expected bool, got 1",
            "limit: expected int, got True",
            "tags: expected a list, got 'a'",
            "weights.mt: expected float, got 'high'",
        ]
    )


def test_bool_is_not_an_int(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "name: x\ninner: {n: false}\n") == [
        "inner.n: expected int, got False"
    ]


def test_float_is_not_an_int(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "name: x\nlimit: 1.5\n") == ["limit: expected int, got 1.5"]


def test_number_for_a_str_field_becomes_the_string(tmp_path: Path) -> None:
    assert load_config(Outer, config_file(tmp_path, "name: 2024\n")).name == "2024"


def test_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "name: x\ninner: 5\n") == ["inner: expected a mapping, got 5"]


def test_literal_violation_names_key_and_choices(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "name: x\ninner: {mode: medium}\n") == [
        "inner.mode: 'medium' is not one of ['fast', 'slow']"
    ]


def test_missing_required_key_is_reported(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "inner: {n: 2}\n")
    assert "name: required key is missing" in problems


def test_missing_required_key_is_reported_once(tmp_path: Path) -> None:
    # One mistake, one problem: not a second one quoting the dataclass constructor.
    assert problems_of(tmp_path, "inner: {n: 2}\n") == ["name: required key is missing"]


def test_value_problems_are_reported_with_a_missing_key(tmp_path: Path) -> None:
    # Every problem in one run: a missing key does not hide a bad value beside it.
    assert problems_of(tmp_path, "inner: {n: -1}\n") == [
        "name: required key is missing",
        "inner.n: must be >= 0",
    ]


def test_cross_checks_run_with_keys(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "name: reserved\ninner: {n: -1}\n") == [
        "inner.n: must be >= 0",
        "config: name 'reserved' is reserved",
    ]


def test_cross_checks_of_dataclasses_in_lists() -> None:
    @dataclass
    class Many:
        items: list[Inner] = field(default_factory=list)

    with pytest.raises(ConfigError) as err:
        load_config(Many, None, ["items=[{n: 1}, {n: -2}]"])
    assert err.value.problems == ["items[1].n: must be >= 0"]


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as err:
        load_config(Outer, missing)
    assert err.value.problems == [f"file not found: {missing}"]
    assert str(missing) in str(err.value)


def test_invalid_yaml(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "name: [unclosed\n")
    assert len(problems) == 1
    assert problems[0].startswith("not valid YAML")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "- a\n- b\n") == ["top level must be a mapping, got list"]


def test_to_dict_round_trips(tmp_path: Path) -> None:
    original = Outer(
        name="x", inner=Inner(n=2, mode="slow"), tags=["t"], limit=3, weights={"a": 0.5}
    )
    path = config_file(tmp_path, yaml.safe_dump(to_dict(original)))
    assert load_config(Outer, path) == original


@dataclass(frozen=True)
class _Inner:
    depth: int = 3
    """How deep,
    in levels."""


@dataclass(frozen=True)
class _Listed:
    name: str
    rate: float = field(default=0.5, metadata={"doc": "from metadata"})
    size: int | None = None  # from the trailing comment
    # from the comment
    # above it
    tags: list[str] = field(default_factory=lambda: ["a"])
    inner: _Inner = field(default_factory=_Inner)
    plain: bool = True  # fmt: skip


def test_settings_list_every_field_with_type_default_and_meaning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from core.typed_config import main, settings

    assert settings(_Listed) == [
        ("name", "str", "required", ""),
        ("rate", "float", "0.5", "from metadata"),
        ("size", "int | None", "null", "from the trailing comment"),
        ("tags", "list[str]", '["a"]', "from the comment above it"),
        ("inner.depth", "int", "3", "How deep, in levels."),
        ("plain", "bool", "true", ""),
    ]
    main(["--list", f"{__name__}:_Listed"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| setting | type | default | meaning |"
    assert "| `size` | `int \\| None` | `null` | from the trailing comment |" in out
    with pytest.raises(SystemExit) as err:
        main(["--list", "core.typed_config:nothing"])
    assert err.value.code == 2
    assert "expected module:Class naming a dataclass config" in capsys.readouterr().err
