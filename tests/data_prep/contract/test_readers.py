"""data_prep.contract.readers: OPUS-100 layout, file pairs, TSV, HF datasets on disk."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from data_prep.contract.readers import (
    UTF8_BOM,
    CorpusError,
    CorpusSpec,
    RawPair,
    corpus_files,
    count_lines,
    decode_line,
    decode_utf8,
    opus100_files,
    read_file_pair,
    read_lines,
    read_pairs,
    read_tsv,
)

SPLITS = ("train", "dev", "test")


def write(path: Path, data: bytes | str) -> Path:
    """Write `data` (bytes as is, str as UTF-8), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def opus_line(split: str, lang: str, index: int) -> str:
    return f"{split} {lang} sentence {index}"


@pytest.fixture
def opus_root(tmp_path: Path) -> Path:
    """A tiny OPUS-100 release tree: supervised de-en (3 splits), zeroshot de-nl (test)."""
    root = tmp_path / "opus-100-corpus"
    supervised = root / "v1.0" / "supervised" / "de-en"
    for split in SPLITS:
        for lang in ("de", "en"):
            lines = [opus_line(split, lang, i) for i in range(1, 4)]
            write(supervised / f"opus.de-en-{split}.{lang}", "\n".join(lines) + "\n")
    zeroshot = root / "v1.0" / "zeroshot" / "de-nl"
    for lang in ("de", "nl"):
        write(zeroshot / f"opus.de-nl-test.{lang}", f"zeroshot {lang} 1\nzeroshot {lang} 2\n")
    return root


# --- OPUS-100 -------------------------------------------------------------------------


def test_opus100_en_de_request_reads_the_alphabetical_de_en_folder(opus_root: Path) -> None:
    src_file, tgt_file = opus100_files(opus_root, "en", "de", "train")
    folder = opus_root / "v1.0" / "supervised" / "de-en"
    assert src_file == folder / "opus.de-en-train.en"
    assert tgt_file == folder / "opus.de-en-train.de"
    pairs = list(read_pairs(CorpusSpec("opus100", str(opus_root)), "en", "de", "train"))
    assert pairs == [
        RawPair(i, opus_line("train", "en", i).encode(), opus_line("train", "de", i).encode())
        for i in range(1, 4)
    ]


@pytest.mark.parametrize("split", SPLITS)
def test_opus100_reads_each_split(opus_root: Path, split: str) -> None:
    pairs = list(read_pairs(CorpusSpec("opus100", str(opus_root)), "de", "en", split))
    assert [(p.src, p.tgt) for p in pairs] == [
        (opus_line(split, "de", i).encode(), opus_line(split, "en", i).encode())
        for i in range(1, 4)
    ]


def test_opus100_root_may_be_the_v1_folder_itself(opus_root: Path) -> None:
    from_release = list(read_pairs(CorpusSpec("opus100", str(opus_root)), "de", "en", "dev"))
    v1 = opus_root / "v1.0"
    from_v1 = list(read_pairs(CorpusSpec("opus100", str(v1)), "de", "en", "dev"))
    assert from_v1 == from_release
    assert len(from_v1) == 3
    assert opus100_files(v1, "de", "en", "dev") == opus100_files(opus_root, "de", "en", "dev")


def test_opus100_zeroshot_pair_without_english(opus_root: Path) -> None:
    folder = opus_root / "v1.0" / "zeroshot" / "de-nl"
    assert opus100_files(opus_root, "nl", "de", "test") == (
        folder / "opus.de-nl-test.nl",
        folder / "opus.de-nl-test.de",
    )
    pairs = list(read_pairs(CorpusSpec("opus100", str(opus_root)), "nl", "de", "test"))
    assert pairs == [
        RawPair(1, b"zeroshot nl 1", b"zeroshot de 1"),
        RawPair(2, b"zeroshot nl 2", b"zeroshot de 2"),
    ]


def test_opus100_missing_split_names_the_missing_file(opus_root: Path) -> None:
    # Zero-shot pairs only have a test split.
    expected = opus_root / "v1.0" / "zeroshot" / "de-nl" / "opus.de-nl-train.de"
    with pytest.raises(CorpusError, match="no such file") as err:
        list(read_pairs(CorpusSpec("opus100", str(opus_root)), "de", "nl", "train"))
    assert str(expected) in str(err.value)


# --- line-aligned file pairs ----------------------------------------------------------


def test_files_prefix_reads_split_files(tmp_path: Path) -> None:
    write(tmp_path / "data" / "train.de", "Hallo Welt.\nGuten Tag.\n")
    write(tmp_path / "data" / "train.en", "Hello world.\nGood day.\n")
    spec = CorpusSpec("files", f"{tmp_path / 'data'}/")
    assert corpus_files(spec, "de", "en", "train") == [
        tmp_path / "data" / "train.de",
        tmp_path / "data" / "train.en",
    ]
    assert list(read_pairs(spec, "de", "en", "train")) == [
        RawPair(1, b"Hallo Welt.", b"Hello world."),
        RawPair(2, b"Guten Tag.", b"Good day."),
    ]
    # The direction only swaps which file is the source.
    assert next(read_pairs(spec, "en", "de", "train")) == RawPair(
        1, b"Hello world.", b"Hallo Welt."
    )


def test_files_explicit_src_and_tgt_files(tmp_path: Path) -> None:
    src = write(tmp_path / "corpus.source", "eins\r\nzwei\r\n")
    tgt = write(tmp_path / "corpus.target", "one\ntwo")  # no newline after the last line
    spec = CorpusSpec("files", "", src_file=str(src), tgt_file=str(tgt))
    assert spec.problems("corpus") == []
    assert list(read_pairs(spec, "de", "en", "train")) == [
        RawPair(1, b"eins", b"one"),
        RawPair(2, b"zwei", b"two"),
    ]


def test_line_count_mismatch_names_both_files_and_counts(tmp_path: Path) -> None:
    src = write(tmp_path / "a.de", "eins\nzwei\ndrei\n")
    tgt = write(tmp_path / "a.en", "one\ntwo\n")
    pairs = read_file_pair(src, tgt)
    with pytest.raises(CorpusError) as err:
        next(pairs)  # raised before the first pair, not after two
    message = str(err.value)
    assert f"{src} has 3 lines" in message
    assert f"{tgt} has 2" in message


def test_count_lines_counts_a_last_line_without_newline(tmp_path: Path) -> None:
    assert count_lines(write(tmp_path / "empty", b"")) == 0
    assert count_lines(write(tmp_path / "one", b"x\n")) == 1
    assert count_lines(write(tmp_path / "two", b"x\ny")) == 2
    assert count_lines(write(tmp_path / "blank", b"\n\n")) == 2


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    src = write(tmp_path / "a.de", "eins\n")
    missing = tmp_path / "a.en"
    with pytest.raises(CorpusError) as err:
        list(read_file_pair(src, missing))
    assert str(missing) in str(err.value)
    spec = CorpusSpec("files", f"{tmp_path}/nowhere/")
    with pytest.raises(CorpusError) as err:
        list(read_pairs(spec, "de", "en", "dev"))
    assert str(tmp_path / "nowhere" / "dev.de") in str(err.value)


def test_invalid_utf8_is_passed_through_as_bytes(tmp_path: Path) -> None:
    src = write(tmp_path / "a.de", b"caf\xe9\nK\xc3\xa4se\n")
    tgt = write(tmp_path / "a.en", b"cafe\n\xff\xfe\n")
    assert list(read_file_pair(src, tgt)) == [
        RawPair(1, b"caf\xe9", b"cafe"),
        RawPair(2, "Käse".encode(), b"\xff\xfe"),
    ]


# --- TSV --------------------------------------------------------------------------------


def test_tsv_reads_pairs_and_replaces_split(tmp_path: Path) -> None:
    write(tmp_path / "dev.tsv", "Hallo\tHello\nca\xe7a\tx\n".encode("latin-1"))
    spec = CorpusSpec("tsv", str(tmp_path / "{split}.tsv"), columns=("de", "en"))
    assert corpus_files(spec, "de", "en", "dev") == [tmp_path / "dev.tsv"]
    assert list(read_pairs(spec, "de", "en", "dev")) == [
        RawPair(1, b"Hallo", b"Hello"),
        RawPair(2, b"ca\xe7a", b"x"),
    ]


@pytest.mark.parametrize(
    ("bad_line", "found"), [("a\tb\tc", 3), ("only one column", 1)], ids=["three", "one"]
)
def test_tsv_wrong_column_count_names_file_and_line(
    tmp_path: Path, bad_line: str, found: int
) -> None:
    path = write(tmp_path / "pairs.tsv", f"eins\tone\nzwei\ttwo\n{bad_line}\nvier\tfour\n")
    reader = read_tsv(path)
    assert [next(reader), next(reader)] == [
        RawPair(1, b"eins", b"one"),
        RawPair(2, b"zwei", b"two"),
    ]
    with pytest.raises(CorpusError) as err:
        next(reader)
    assert f"{path}:3:" in str(err.value)
    assert f"found {found}" in str(err.value)


def test_tsv_missing_file_names_the_path(tmp_path: Path) -> None:
    spec = CorpusSpec("tsv", str(tmp_path / "{split}.tsv"), columns=("de", "en"))
    with pytest.raises(CorpusError) as err:
        list(read_pairs(spec, "de", "en", "test"))
    assert str(tmp_path / "test.tsv") in str(err.value)


HU_EN_TSV = "Kvittek vagyunk!\tWe are now square!\nIgen.\tYes, indeed.\n"


@pytest.mark.parametrize("columns", [("hu", "en"), ("en", "hu")])
def test_tsv_direction_follows_columns_whatever_their_order(
    tmp_path: Path, columns: tuple[str, str]
) -> None:
    """Hungarian and English lines differ, so a reversed read cannot pass."""
    hu_first = HU_EN_TSV
    en_first = "".join(
        "\t".join(reversed(line.split("\t"))) + "\n" for line in HU_EN_TSV.splitlines()
    )
    path = write(tmp_path / "pairs.tsv", hu_first if columns == ("hu", "en") else en_first)
    spec = CorpusSpec("tsv", str(path), columns=columns)
    assert list(read_pairs(spec, "en", "hu", "test")) == [
        RawPair(1, b"We are now square!", b"Kvittek vagyunk!"),
        RawPair(2, b"Yes, indeed.", b"Igen."),
    ]
    assert list(read_pairs(spec, "hu", "en", "test")) == [
        RawPair(1, b"Kvittek vagyunk!", b"We are now square!"),
        RawPair(2, b"Igen.", b"Yes, indeed."),
    ]


def test_tsv_without_columns_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.tsv", HU_EN_TSV)
    spec = CorpusSpec("tsv", str(path))
    assert spec.problems("corpora.hu-en") == [
        f"corpora.hu-en.columns: is missing; a tsv corpus ({path}) must name the language of "
        "each of its two columns: [SRC, TGT] in file order, e.g. [hu, en]"
    ]
    with pytest.raises(CorpusError, match=r"corpus\.columns: is missing") as err:
        list(read_pairs(spec, "en", "hu", "test"))
    assert "[en, hu] in file order" in str(err.value)


def test_tsv_columns_must_hold_both_languages(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.tsv", HU_EN_TSV)
    spec = CorpusSpec("tsv", str(path), columns=("hu", "de"))
    assert spec.problems("corpus") == []
    assert spec.pair_problems("corpus", "hu", "en") == [
        f"corpus.columns: is ['hu', 'de']; a tsv corpus ({path}) must name the language of "
        "each of its two columns: [hu, en] in file order"
    ]
    with pytest.raises(CorpusError, match=r"corpus\.columns: is \['hu', 'de'\]"):
        list(read_pairs(spec, "hu", "en", "test"))
    assert CorpusSpec("tsv", str(path), columns=("hu",)).problems("corpus")
    assert CorpusSpec("files", "d/", columns=("hu", "en")).problems("corpus") == [
        "corpus.columns: only for format 'tsv' (this corpus is 'files')"
    ]


# --- UTF-8: one decoding path, BOM removed ---------------------------------------------


def test_bom_at_file_start_never_reaches_the_text(tmp_path: Path) -> None:
    src = write(tmp_path / "a.de", UTF8_BOM + b"Ich trau' mich nicht.\nJa.\n")
    tgt = write(tmp_path / "a.en", UTF8_BOM + b"I daren't.\nYes.\n")
    assert list(read_file_pair(src, tgt)) == [
        RawPair(1, b"Ich trau' mich nicht.", b"I daren't."),
        RawPair(2, b"Ja.", b"Yes."),
    ]
    tsv = write(tmp_path / "a.tsv", UTF8_BOM + b"Ja.\tYes.\n")
    spec = CorpusSpec("tsv", str(tsv), columns=("de", "en"))
    assert list(read_pairs(spec, "en", "de", "train")) == [RawPair(1, b"Yes.", b"Ja.")]
    assert read_lines(src) == ["Ich trau' mich nicht.", "Ja."]
    # Only a mark at the start of the file is a BOM; elsewhere it is text (U+FEFF).
    inner = write(tmp_path / "b.de", b"Ja.\n" + UTF8_BOM + b"Nein.\n")
    assert read_lines(inner) == ["Ja.", "\ufeffNein."]


def test_decoding_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "hyps.txt", b"gut\ncaf\xe9\n")
    with pytest.raises(CorpusError, match=rf"^{re.escape(str(path))}:2: not valid UTF-8"):
        read_lines(path)
    assert decode_utf8(b"caf\xe9") is None
    assert decode_utf8("Käse".encode()) == decode_line("Käse".encode(), path, 1) == "Käse"
    with pytest.raises(CorpusError, match=r"x\.de:7: not valid UTF-8"):
        decode_line(b"\xff", "x.de", 7)
    # A lone carriage return stays inside its line: line numbers agree with count_lines.
    odd = write(tmp_path / "cr.txt", b"a\rb\r\nc\n")
    assert read_lines(odd) == ["a\rb", "c"] and count_lines(odd) == 2


# --- Hugging Face datasets on disk ----------------------------------------------------


@pytest.fixture
def hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The `datasets` module, with its cache (used by parquet loading) inside tmp_path."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    return datasets


TRANSLATIONS = [
    {"de": "Hallo Welt.", "en": "Hello world."},
    {"de": "Guten Morgen.", "en": "Good morning."},
]


def test_hf_saved_dataset_with_translation_column(hf, tmp_path: Path) -> None:
    hf.Dataset.from_dict({"translation": TRANSLATIONS}).save_to_disk(str(tmp_path / "ds"))
    spec = CorpusSpec("hf", str(tmp_path / "ds"))
    assert list(read_pairs(spec, "en", "de", "train")) == [
        RawPair(1, "Hello world.", "Hallo Welt."),
        RawPair(2, "Good morning.", "Guten Morgen."),
    ]


def test_hf_dataset_dict_maps_dev_to_validation(hf, tmp_path: Path) -> None:
    splits = hf.DatasetDict(
        train=hf.Dataset.from_dict({"translation": TRANSLATIONS}),
        validation=hf.Dataset.from_dict({"translation": [{"de": "Ja.", "en": "Yes."}]}),
    )
    splits.save_to_disk(str(tmp_path / "dd"))
    spec = CorpusSpec("hf", str(tmp_path / "dd"))
    assert list(read_pairs(spec, "de", "en", "dev")) == [RawPair(1, "Ja.", "Yes.")]
    assert [p.src for p in read_pairs(spec, "de", "en", "train")] == [
        "Hallo Welt.",
        "Guten Morgen.",
    ]
    with pytest.raises(CorpusError) as err:
        list(read_pairs(spec, "de", "en", "test"))
    assert "'test'" in str(err.value)
    assert str(tmp_path / "dd") in str(err.value)


@pytest.mark.integration
def test_hf_parquet_file_with_split_placeholder(hf, tmp_path: Path) -> None:
    hf.Dataset.from_dict({"translation": TRANSLATIONS}).to_parquet(str(tmp_path / "train.parquet"))
    spec = CorpusSpec("hf", str(tmp_path / "{split}.parquet"))
    assert list(read_pairs(spec, "de", "en", "train")) == [
        RawPair(1, "Hallo Welt.", "Hello world."),
        RawPair(2, "Guten Morgen.", "Good morning."),
    ]
    with pytest.raises(CorpusError) as err:
        list(read_pairs(spec, "de", "en", "dev"))
    assert str(tmp_path / "dev.parquet") in str(err.value)


def test_hf_one_column_per_language(hf, tmp_path: Path) -> None:
    columns = {"de": ["Eins.", "Zwei."], "en": ["One.", "Two."], "id": [1, 2]}
    hf.Dataset.from_dict(columns).save_to_disk(str(tmp_path / "cols"))
    spec = CorpusSpec("hf", str(tmp_path / "cols"))
    assert list(read_pairs(spec, "de", "en", "train")) == [
        RawPair(1, "Eins.", "One."),
        RawPair(2, "Zwei.", "Two."),
    ]
    with pytest.raises(CorpusError) as err:
        list(read_pairs(spec, "fr", "en", "train"))
    assert "'fr'" in str(err.value)
    assert str(tmp_path / "cols") in str(err.value)


def test_hf_missing_language_in_translation_names_the_keys(hf, tmp_path: Path) -> None:
    hf.Dataset.from_dict({"translation": TRANSLATIONS}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(CorpusError) as err:
        list(read_pairs(CorpusSpec("hf", str(tmp_path / "ds")), "nl", "en", "train"))
    assert "'nl'" in str(err.value)
    assert "['de', 'en']" in str(err.value)


def test_hf_missing_path_names_it(hf, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dataset"
    with pytest.raises(CorpusError) as err:
        list(read_pairs(CorpusSpec("hf", str(missing)), "de", "en", "train"))
    assert str(missing) in str(err.value)


# --- spec validation --------------------------------------------------------------------


def test_spec_problems_name_the_key() -> None:
    assert CorpusSpec("files", "data/").problems("corpus") == []
    assert CorpusSpec("files", "").problems("corpora.de-en") == [
        "corpora.de-en.path: required for format 'files'"
    ]
    assert CorpusSpec("xml", "data/").problems("corpus")[0].startswith("corpus.format: 'xml'")  # type: ignore[arg-type]
