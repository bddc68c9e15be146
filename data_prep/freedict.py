"""Rebuild the FreeDict German-English sentence pairs and lexicon from the Debian package.

Source: Debian's `dict-freedict-deu-eng` (GPL-3+), which ships the dictionary in dictd
format: `usr/share/dictd/freedict-deu-eng.dict.dz` (gzip text) and `.index` (lines
`headword<TAB>offset<TAB>length`, numbers in dictd's base64). Entries are cut out of the
text with the index. A sentence entry is one whose German headword is a whole sentence,
with the English translation on the next line::

    Ich trau' mich nicht nach Hause. /(IPA)/
    I daren't go home., I'm scared to go home.

The published split (docs/data-prep.md, "FreeDict") was, despite its notes, read as
blank-line separated blocks: an entry that follows another without a blank line in
between was glued to it and lost, with its pairs and its lexicon translations ("Haus"
there lacks "house", "Hund" lacks "dog"). Its lexicon also cut headwords at the first
slash, so "Wasser/Luft usw. umwälzen" gave "Wasser: circulate". `as_published=True`, the
default, keeps both quirks and the published split's shuffle, and reproduces the
published pairs and files (see below for the English side); `False` reads every entry,
takes the whole headword and splits with `data_prep split`'s leak-free grouping.

An English line may join alternative translations with ", " ("I daren't go home., I'm
scared to go home."). Each split keeps them apart: `{split}.en` holds the first,
`{split}.en.alt` the others of the same line (tab-separated; an empty line where there are
none), the layout `eval` reads as alternative references (data_prep.contract.readers).
Training reads `{split}.en`, so it learns from the first alternative only. Joined again
with ", ", the two files give the published English lines byte for byte.
"""

from __future__ import annotations

import gzip
import random
import re
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from core.fileio import sha256_file, write_lines
from data_prep.contract.readers import ALTERNATIVES_SEPARATOR
from data_prep.output import check_output_dir
from data_prep.split import assign, groups

DEFAULT_PACKAGE = "dict-freedict-deu-eng"
DEFAULT_SEED = 20261128

Entry = tuple[str, str]
Pair = tuple[str, str]

_DICTD_DIR = "usr/share/dictd"
_B64 = {
    c: v for v, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}
_METADATA_PREFIXES = ("00database", "00-database")

_TRAILING_TAGS = re.compile(r"(?:\s*<[^<>]*>)+\s*$")
_TRAILING_PRON = re.compile(r"\s/[^/]*/$")
_TRAILING_NOTE = re.compile(r"\s\((?:[^()]|\([^()]*\))*\)$")
_SENTENCE_END = (".", "!", "?")
_MIN_SENTENCE_WORDS = 4
_PLACEHOLDER = re.compile(r"\b(?:etw|jd[mns]?|sth|sb)\.|\b(?:sth|sb)'s\b")
_BRACES = re.compile(r"[{}]")
_STACKED_LABELS = re.compile(r"\]\s+\[")
_LEADING_LABEL = re.compile(r"^\s*\[[^\]]*\]\s*")
_TAG = re.compile(r"<[^<>]*>")
_GERMAN_WORD = re.compile(r"[A-Za-zÄÖÜäöüß-]+")
_ENGLISH_WORD = re.compile(r"[A-Za-z'-]+")
# ", " after a sentence end, before what starts a sentence: the next alternative. Not
# "In 776 B.C., the first ..." nor "I'll meet you …, ok?".
_ALTERNATIVE = re.compile(r"(?<=[.!?…]), (?=[A-Z0-9\[\"'“‘])")


class FreeDictError(RuntimeError):
    """The FreeDict package could not be fetched, unpacked or read."""


def fetch_deb(cache_dir: Path, package: str = DEFAULT_PACKAGE) -> Path:
    """Return `{package}_*.deb` from `cache_dir` (the last by name), else apt-get download it."""
    cache_dir = Path(cache_dir)
    if found := _cached_debs(cache_dir, package):
        return found[-1]
    if shutil.which("apt-get") is None:
        raise FreeDictError(
            f"no {package}_*.deb in {cache_dir} and apt-get is not installed; "
            f"download the package elsewhere and pass --deb PATH"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    command = ["apt-get", "download", package]
    proc = subprocess.run(command, cwd=cache_dir, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise FreeDictError(
            f"`{' '.join(command)}` in {cache_dir} failed (exit {proc.returncode}): "
            f"{proc.stderr.strip() or proc.stdout.strip()}\n"
            f"Run `apt-get update` first, or pass --deb PATH to a downloaded {package}_*.deb."
        )
    if found := _cached_debs(cache_dir, package):
        return found[-1]
    raise FreeDictError(
        f"`{' '.join(command)}` succeeded but left no {package}_*.deb in {cache_dir}"
    )


def _cached_debs(cache_dir: Path, package: str) -> list[Path]:
    """The `{package}_*.deb` files in `cache_dir`, sorted by name."""
    return sorted(cache_dir.glob(f"{package}_*.deb")) if cache_dir.is_dir() else []


def extract_dict(deb: Path, dest: Path) -> tuple[Path, Path]:
    """Unpack `deb` into `dest` with `dpkg-deb -x`; return its (.dict.dz, .index) paths."""
    deb = Path(deb)
    if not deb.is_file():
        raise FreeDictError(f"{deb}: no such file (expected a {DEFAULT_PACKAGE}_*.deb)")
    if shutil.which("dpkg-deb") is None:
        raise FreeDictError(
            f"cannot unpack {deb}: dpkg-deb is not installed (apt-get install dpkg)"
        )
    command = ["dpkg-deb", "-x", str(deb), str(dest)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise FreeDictError(
            f"{deb} is not a readable Debian package: `{' '.join(command)}` failed "
            f"(exit {proc.returncode}): {proc.stderr.strip()}"
        )
    return _dictd_files(deb, Path(dest) / _DICTD_DIR)


def _dictd_files(deb: Path, dictd: Path) -> tuple[Path, Path]:
    """The single `*.dict.dz` in `dictd` and the `.index` beside it."""
    dicts = sorted(dictd.glob("*.dict.dz"))
    if len(dicts) != 1:
        raise FreeDictError(
            f"{deb}: expected exactly one {_DICTD_DIR}/*.dict.dz, found {len(dicts)}"
        )
    index = dicts[0].with_name(dicts[0].name.removesuffix(".dict.dz") + ".index")
    if not index.is_file():
        raise FreeDictError(f"{deb}: {_DICTD_DIR}/{index.name} missing beside {dicts[0].name}")
    return dicts[0], index


def iter_entries(dict_dz: Path, index: Path) -> Iterator[Entry]:
    """Yield (index headword, entry text) in dictionary (byte offset) order.

    The headword is the index's folded form (lower case, no punctuation); the entry's own
    first line holds the real one. dictd's `00-database-*` metadata entries are skipped, and
    index lines that point at the same text yield it once.
    """
    spans = _read_index(index)
    text = _read_dict(dict_dz)
    for offset, length, headword in spans:
        if offset + length > len(text):
            raise FreeDictError(
                f"{index}: entry {headword!r} points past the end of {dict_dz} "
                f"({offset}+{length} > {len(text)} bytes)"
            )
        yield headword, text[offset : offset + length].decode("utf-8")


def _read_index(index: Path) -> list[tuple[int, int, str]]:
    """(offset, length, headword) of each non-metadata entry, sorted, one per text span."""
    spans: dict[tuple[int, int], str] = {}
    with open(index, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                raise FreeDictError(
                    f"{index}:{number}: expected headword<TAB>offset<TAB>length, got {line!r}"
                )
            headword, offset, length = fields
            if not headword.startswith(_METADATA_PREFIXES):
                span = (_b64(offset, index, number), _b64(length, index, number))
                spans.setdefault(span, headword)
    return sorted((offset, length, head) for (offset, length), head in spans.items())


def _b64(digits: str, index: Path, number: int) -> int:
    """Decode one dictd base64 number (A-Za-z0-9+/, most significant digit first)."""
    value = 0
    try:
        for char in digits:
            value = value * 64 + _B64[char]
    except KeyError as err:
        raise FreeDictError(f"{index}:{number}: {digits!r} is not a dictd base64 number") from err
    return value


def _read_dict(dict_dz: Path) -> bytes:
    """The decompressed bytes of a dictzip (gzip-compatible) file."""
    try:
        with gzip.open(dict_dz, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as err:
        raise FreeDictError(f"{dict_dz}: not a gzip/dictzip file ({err})") from err


def block_heads(entries: Iterable[Entry]) -> Iterator[Entry]:
    """Yield the entries that open a blank-line separated block of the dictionary text.

    This is how the published split read the text: an entry that follows another without
    a blank line in between (and the first entry, glued to the dictd header) went unseen.
    """
    previous = ""
    for entry in entries:
        if previous.endswith("\n\n"):
            yield entry
        previous = entry[1]


def _selected(entries: Iterable[Entry], as_published: bool) -> Iterable[Entry]:
    """Only the block heads, as the published split saw them, or all entries."""
    return block_heads(entries) if as_published else entries


def sentence_pairs(entries: Iterable[Entry], *, as_published: bool = True) -> list[Pair]:
    """Clean (German, English) sentence pairs, one per German sentence, in dictionary order.

    A sentence entry's headword (pronunciation and grammar tags stripped) and the English
    line below it both end in . ! or ?. The first entry for a German sentence decides its
    translation; the pair is then dropped if the German has fewer than 4 words or either
    side holds a placeholder (etw., jdn., jdm., jds., sth., sb., ...), a slash or a brace,
    or the English is marked with stacked labels ("[Ös.] [ugs.] ..."). Dictionary order is
    fixed by the byte offsets, not the index's line order, so the result is deterministic.
    `as_published` reads only the entries the published split saw (see the module doc).
    """
    seen: set[str] = set()
    pairs: list[Pair] = []
    for _, text in _selected(entries, as_published):
        pair = _sentence_entry(text)
        if pair is None or pair[0] in seen:
            continue
        seen.add(pair[0])
        if _is_clean(*pair):
            pairs.append(pair)
    return pairs


def _sentence_entry(text: str) -> Pair | None:
    """(German, English) if the entry's headword and translation are both sentences."""
    lines = text.split("\n", 2)
    if len(lines) < 2 or not lines[1].rstrip().endswith((*_SENTENCE_END, ">")):
        return None
    german = _headword(lines[0])
    english = _normalise(_TRAILING_TAGS.sub("", lines[1]))
    if german.endswith(_SENTENCE_END) and english.endswith(_SENTENCE_END):
        return german, english
    return None


def _headword(line: str, *, notes: bool = False) -> str:
    """An entry's first line less grammar tags and pronunciation.

    With `notes`, a trailing parenthesised note such as "(Abs. /aps/)" or "([+ gen])" goes too.
    """
    line = _TRAILING_TAGS.sub("", line)
    if notes:
        line = _TRAILING_NOTE.sub("", line)
    return _normalise(_TRAILING_PRON.sub("", line))


def _normalise(text: str) -> str:
    """Collapse all whitespace (tabs, newlines included) to single spaces."""
    return " ".join(text.split())


def alternatives(english: str) -> list[str]:
    """The alternative translations of one English line, in order (one when not joined)."""
    return _ALTERNATIVE.split(english)


def _is_clean(german: str, english: str) -> bool:
    """Whether a sentence pair is free of dictionary notation."""
    both = f"{german} {english}"
    return (
        len(german.split()) >= _MIN_SENTENCE_WORDS
        and not _PLACEHOLDER.search(both)
        and "/" not in both
        and not _BRACES.search(both)
        and not _STACKED_LABELS.search(english)
    )


def lexicon(entries: Iterable[Entry], *, as_published: bool = True) -> dict[str, list[str]]:
    """Map single-word German headwords to their single-word English translations.

    Headwords keep the dictionary's case and come in order of first appearance; with
    `as_published` a headword is the first line up to any slash, else the line less tags,
    pronunciation and a trailing note. Translations are the comma/semicolon separated items
    of the line below, less one leading usage label and grammar tags, that are one plain
    ASCII word; each headword lists them once, sorted.
    """
    found: dict[str, set[str]] = {}
    for _, text in _selected(entries, as_published):
        lines = text.split("\n", 2)
        if len(lines) < 2:
            continue
        headword = _lexicon_headword(lines[0], as_published)
        if _GERMAN_WORD.fullmatch(headword) and (words := _single_words(lines[1])):
            found.setdefault(headword, set()).update(words)
    return {headword: sorted(words) for headword, words in found.items()}


def _lexicon_headword(line: str, as_published: bool) -> str:
    """The lexicon key of an entry's first line."""
    return line.split("/", 1)[0].strip() if as_published else _headword(line, notes=True)


def _single_words(line: str) -> list[str]:
    """The one-word translations on an English line."""
    items = re.split(r"[,;]", _LEADING_LABEL.sub("", line))
    words = (_TAG.sub(" ", item).strip() for item in items)
    return [word for word in words if _ENGLISH_WORD.fullmatch(word)]


def split_pairs(
    pairs: Iterable[Pair],
    seed: int = DEFAULT_SEED,
    dev: int = 500,
    test: int = 500,
    *,
    as_published: bool = True,
) -> dict[str, list[Pair]]:
    """Train, dev and test pairs. `as_published=False` uses `data_prep split`'s leak-free
    grouping (data_prep.split): pairs sharing a German or an English sentence land in one
    split, in dictionary order; a group too big for what is left of test or dev goes to
    train, so those two may come out a little short."""
    items = list(pairs)
    if len(items) < dev + test:
        raise ValueError(f"{len(items)} pairs cannot fill dev={dev} and test={test}")
    if not as_published:
        chosen = assign(groups(items), {"dev": dev, "test": test}, seed)
        return {name: [items[index] for index in lines] for name, lines in chosen.items()}
    # The published split was made by this shuffle, and its files list the pairs in the
    # shuffled order; the grouping above would move the pairs whose English recurs and
    # reorder every file, so reproducing the published bytes needs exactly this code.
    random.Random(seed).shuffle(items)
    return {"train": items[test + dev :], "dev": items[test : test + dev], "test": items[:test]}


def build_corpus(
    deb: Path,
    out_dir: Path,
    seed: int = DEFAULT_SEED,
    dev: int = 500,
    test: int = 500,
    *,
    as_published: bool = True,
) -> dict[str, Any]:
    """Write `{train,dev,test}.{de,en}`, `{train,dev,test}.en.alt` (the further
    alternatives of each English line) and `lexicon.tsv` to `out_dir`; return a summary.

    Every file is written atomically. With the defaults the pairs are those of the
    published split (docs/data-prep.md, "FreeDict"), whose English lines are `.en` and
    `.en.alt` joined with ", ".
    """
    deb, out_dir = Path(deb), Path(out_dir)
    check_output_dir(out_dir, overwrite=True, marker=None)
    with tempfile.TemporaryDirectory(prefix="freedict-") as tmp:
        dict_dz, index = extract_dict(deb, Path(tmp))
        entries = list(iter_entries(dict_dz, index))
    pairs = sentence_pairs(entries, as_published=as_published)
    words = lexicon(entries, as_published=as_published)
    del entries
    splits = split_pairs(pairs, seed=seed, dev=dev, test=test, as_published=as_published)
    with_alternatives = {}
    for name, items in splits.items():
        english = [alternatives(line) for _, line in items]
        write_lines(out_dir / f"{name}.de", (german for german, _ in items))
        write_lines(out_dir / f"{name}.en", (alts[0] for alts in english))
        write_lines(
            out_dir / f"{name}.en.alt", (ALTERNATIVES_SEPARATOR.join(alts[1:]) for alts in english)
        )
        with_alternatives[name] = sum(len(alts) > 1 for alts in english)
    write_lines(out_dir / "lexicon.tsv", (f"{de}\t{' '.join(en)}" for de, en in words.items()))
    return {
        "package": deb.name,
        "sha256": sha256_file(deb),
        "seed": seed,
        "as_published": as_published,
        "pairs": len(pairs),
        "splits": {name: len(items) for name, items in splits.items()},
        "with_alternatives": with_alternatives,
        "lexicon": len(words),
    }
