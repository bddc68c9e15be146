"""core.hub: local folders and hub names are checked before anything is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.hub import looks_like_path, model_source_problems


def test_missing_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    assert model_source_problems(str(missing), "model.name") == [
        f"model.name: {str(missing)!r}: no such folder"
    ]


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    (problem,) = model_source_problems(str(tmp_path), "model.name")
    assert "has no config.json" in problem


def test_saved_folder_passes(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert model_source_problems(str(tmp_path), "model.name") == []


def test_uncached_hub_name_offline_fails_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    (problem,) = model_source_problems("bigscience/bloomz-560m", "model.name")
    assert "not in the local cache" in problem


@pytest.mark.parametrize(
    ("name", "is_path"),
    [("/abs/model", True), ("./m", True), ("runs/demo/export/model", True), ("org/name", False)],
)
def test_path_or_hub_name(name: str, is_path: bool) -> None:
    assert looks_like_path(name) is is_path
