"""`data_prep split`: seeded train/dev/test files in the `files` layout, no leaks, direction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_prep.contract.readers import CorpusSpec, read_pairs
from data_prep.output import OutputError
from data_prep.split import SplitError, SplitSpec, parse_size, split_corpus
from tests.data_prep.test_cli import assert_user_error, data_prep


def corpus_lines() -> list[tuple[str, str]]:
    """120 Hungarian-English pairs: sources repeat with other targets (2 or 3 times), and
    the target 'Yes.' has 4 different sources."""
    pairs = [(f"Magyar mondat {i}.", f"English sentence {i}.") for i in range(100)]
    pairs += [(f"Magyar mondat {i % 10}.", f"Another rendering {i}.") for i in range(20)]
    for k, i in enumerate((100, 101, 102, 103)):
        pairs[i % 100] = (f"Igen {k}.", "Yes.")
    return pairs


@pytest.fixture
def tsv(tmp_path: Path) -> Path:
    """English first, Hungarian second: the reverse of the pair's direction."""
    path = tmp_path / "all.tsv"
    path.write_text("".join(f"{en}\t{hu}\n" for hu, en in corpus_lines()), encoding="utf-8")
    return path


def split(tsv: Path, out: Path, seed: int = 1, overwrite: bool = False) -> dict:
    corpus = CorpusSpec("tsv", str(tsv), columns=("en", "hu"))
    spec = SplitSpec(corpus, "hu", "en", dev=0.1, test=20, seed=seed)
    return split_corpus(spec, out, overwrite=overwrite)


def read_split(out: Path, name: str) -> list[tuple[str, str]]:
    hu = (out / f"{name}.hu").read_text(encoding="utf-8").splitlines()
    en = (out / f"{name}.en").read_text(encoding="utf-8").splitlines()
    assert len(hu) == len(en)
    return list(zip(hu, en, strict=True))


def test_split_keeps_direction_and_every_pair(tsv: Path, tmp_path: Path) -> None:
    summary = split(tsv, tmp_path / "out")
    assert summary["sizes"] == {"train": 88, "dev": 12, "test": 20}
    assert summary["requested"] == {"dev": 12, "test": 20}
    found = [p for name in ("train", "dev", "test") for p in read_split(tmp_path / "out", name)]
    assert sorted(found) == sorted(corpus_lines())  # hu files hold Hungarian, en English
    assert json.loads((tmp_path / "out" / "split.json").read_text()) == summary
    # The `files` reader reads the layout back, in either direction.
    spec = CorpusSpec("files", f"{tmp_path / 'out'}/")
    test = read_split(tmp_path / "out", "test")
    assert [(p.src.decode(), p.tgt.decode()) for p in read_pairs(spec, "en", "hu", "test")] == [
        (en, hu) for hu, en in test
    ]


def test_no_sentence_of_dev_or_test_occurs_in_train(tsv: Path, tmp_path: Path) -> None:
    for seed in range(1, 6):
        out = tmp_path / f"s{seed}"
        split(tsv, out, seed=seed)
        train = read_split(out, "train")
        for name in ("dev", "test"):
            held = read_split(out, name)
            for side in (0, 1):
                assert not {p[side] for p in held} & {p[side] for p in train}, (seed, name)


def test_split_is_deterministic_and_seeded(tsv: Path, tmp_path: Path) -> None:
    split(tsv, tmp_path / "a")
    split(tsv, tmp_path / "b")
    split(tsv, tmp_path / "c", seed=2)
    for name in ("train.hu", "dev.en", "test.hu", "split.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "test.hu").read_bytes() != (tmp_path / "c" / "test.hu").read_bytes()


def test_split_output_is_replaced_only_with_overwrite(tsv: Path, tmp_path: Path) -> None:
    split(tsv, tmp_path / "out")
    with pytest.raises(OutputError, match="already exists"):
        split(tsv, tmp_path / "out", seed=2)
    split(tsv, tmp_path / "out", seed=2, overwrite=True)
    assert json.loads((tmp_path / "out" / "split.json").read_text())["seed"] == 2


def test_sizes_are_counts_or_fractions() -> None:
    assert parse_size("500", "dev") == 500
    assert parse_size("0.05", "dev") == 0.05
    for bad in ("1.5", "-1", "many"):
        with pytest.raises(SplitError, match="--test"):
            parse_size(bad, "test")


def test_split_that_leaves_no_training_data(tsv: Path, tmp_path: Path) -> None:
    corpus = CorpusSpec("tsv", str(tsv), columns=("en", "hu"))
    with pytest.raises(SplitError, match="dev 60 \\+ test 60 pairs leave nothing to train on"):
        split_corpus(SplitSpec(corpus, "hu", "en", dev=60, test=0.5), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
def test_cli_split_file_pair(tmp_path: Path) -> None:
    pairs = corpus_lines()
    (tmp_path / "all.hu").write_text("".join(f"{hu}\n" for hu, _ in pairs), encoding="utf-8")
    (tmp_path / "all.en").write_text("".join(f"{en}\n" for _, en in pairs), encoding="utf-8")
    args = ["split", "--pair", "hu-en", "--src", "all.hu", "--tgt", "all.en", "--out", "data"]
    result = data_prep(*args, "--dev", "10", "--test", "0.1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sizes"] == {"train": 98, "dev": 10, "test": 12}
    found = [p for name in ("train", "dev", "test") for p in read_split(tmp_path / "data", name)]
    assert sorted(found) == sorted(pairs)


@pytest.mark.integration
def test_cli_split_tsv_without_columns(tsv: Path, tmp_path: Path) -> None:
    result = data_prep("split", "--pair", "hu-en", "--tsv", tsv, "--out", "data", cwd=tmp_path)
    assert_user_error(result, "--columns")
    result = data_prep(
        "split", "--pair", "hu-en", "--tsv", tsv, "--columns", "de", "en", "--out", "d",
        cwd=tmp_path,
    )  # fmt: skip
    assert_user_error(result, "--columns: is ['de', 'en']")
    assert not (tmp_path / "data").exists() and not (tmp_path / "d").exists()
