"""`python -m data_prep COMMAND`: the data-prep command line.

    python -m data_prep freedict --out data/freedict          # real de-en corpus (Debian)
    python -m data_prep tokenizer --out tok data/freedict/train.de data/freedict/train.en
    python -m data_prep clean --src a.de --tgt a.en --out clean/a
    python -m data_prep split --pair hu-en --src all.hu --tgt all.en --out data/hu-en --test 1000
    python -m data_prep align --src a.de --tgt a.en --out a.links [--lexicon lex.tsv]
    python -m data_prep build freedict --out runs/shards [key=value ...]
    python -m data_prep inspect runs/shards
    python -m data_prep demo --out runs/demo                  # all of the above on FreeDict

User mistakes (bad recipe, missing or malformed files) exit with status 2 and one
message naming the file, line or key; they never end in a traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from core.fileio import write_json, write_lines
from core.lock import LockError, hold
from core.typed_config import ConfigError, parse_args_with_overrides
from data_prep.align import ALIGNERS, SYMMETRIZATIONS, AlignConfig, align, format_pharaoh
from data_prep.align_quality import lexicon_precision, load_lexicon
from data_prep.build import BuildError, build, default_cache_dir
from data_prep.cleaning import CleanConfig, CleanReport, clean
from data_prep.contract.languages import pair_codes
from data_prep.contract.readers import CorpusError, CorpusSpec, read_file_pair, read_lines
from data_prep.freedict import FreeDictError, build_corpus, fetch_deb
from data_prep.inspect_shards import InspectError, inspect
from data_prep.mixing import format_summary
from data_prep.output import OutputError, check_output_dir, check_output_file, disk_full_message
from data_prep.recipe import load_recipe
from data_prep.split import SplitError, SplitSpec, parse_size, split_corpus
from data_prep.tokenizer import TokenizerError, train_tokenizer

USER_ERRORS = (
    ConfigError,
    CorpusError,
    BuildError,
    FreeDictError,
    InspectError,
    OutputError,
    SplitError,
    FileNotFoundError,
    FileExistsError,
    LockError,
    TokenizerError,
)


def _freedict(args: argparse.Namespace) -> None:
    deb = (
        Path(args.deb)
        if args.deb
        else fetch_deb(Path(args.cache or default_cache_dir()) / "freedict")
    )
    summary = build_corpus(deb, Path(args.out))
    print(json.dumps(summary, indent=2))


def _tokenizer(args: argparse.Namespace) -> None:
    out = train_tokenizer(
        args.files, args.out, vocab_size=args.vocab_size, allow_smaller=args.allow_smaller_vocab
    )
    print(f"tokenizer written to {out}")


def _clean(args: argparse.Namespace) -> None:
    config = CleanConfig(
        max_chars=args.max_chars, max_length_ratio=args.max_ratio, dedup=args.dedup
    )
    report = CleanReport()
    suffix_src, suffix_tgt = Path(args.src).suffix, Path(args.tgt).suffix
    if suffix_src == suffix_tgt:
        raise CorpusError(
            f"{args.src} and {args.tgt} have the same extension {suffix_src!r}: outputs are "
            "named PREFIX.<extension>, so give the files language extensions (a.de, a.en)"
        )
    for suffix in (suffix_src, suffix_tgt, ".report.json"):
        check_output_file(f"{args.out}{suffix}")
    langs = (suffix_src[1:], suffix_tgt[1:])  # the extensions name the languages
    kept = list(clean(read_file_pair(Path(args.src), Path(args.tgt)), config, report, langs))
    write_lines(f"{args.out}{suffix_src}", (s for s, _ in kept))
    write_lines(f"{args.out}{suffix_tgt}", (t for _, t in kept))
    write_json(f"{args.out}.report.json", report.as_dict())
    print(json.dumps(report.as_dict(), indent=2))


def _alignable(
    src: list[str], tgt: list[str], args: argparse.Namespace
) -> tuple[list[str], list[str]]:
    """The pairs the aligner is given: a pair over `--max-chars` on either side (what
    `build` drops as too_long; a 1 MB line exhausts the aligner's memory) is blanked and
    gets an empty line of links, so the output stays line-aligned with the input. No pair
    with words on both sides is an error: there is nothing to align."""
    if len(src) != len(tgt):
        raise CorpusError(
            f"{args.src} has {len(src)} lines and {args.tgt} {len(tgt)}; align needs "
            "line-aligned files"
        )
    long = [
        i
        for i, (s, t) in enumerate(zip(src, tgt, strict=True))
        if max(len(s), len(t)) > args.max_chars
    ]
    if long:
        shown = ", ".join(str(i + 1) for i in long[:10]) + (" ..." if len(long) > 10 else "")
        print(
            f"warning: {len(long)} pair(s) longer than --max-chars={args.max_chars} characters "
            f"(lines {shown}) left without links, as build drops them (too_long)",
            file=sys.stderr,
        )
        blank = set(long)
        src = ["" if i in blank else s for i, s in enumerate(src)]
        tgt = ["" if i in blank else t for i, t in enumerate(tgt)]
    if not any(s.strip() and t.strip() for s, t in zip(src, tgt, strict=True)):
        raise CorpusError(
            f"{args.src} and {args.tgt}: no pair with text on both sides "
            f"({len(src)} line(s){', after dropping over-long pairs' if long else ''}); "
            "nothing to align"
        )
    return src, tgt


def _align(args: argparse.Namespace) -> None:
    check_output_file(args.out)
    src, tgt = _alignable(read_lines(args.src), read_lines(args.tgt), args)
    config = AlignConfig(aligner=args.aligner, symmetrization=args.symmetrization)
    # A language-code extension (a.th) selects the script's word segmentation.
    langs = (Path(args.src).suffix[1:] or None, Path(args.tgt).suffix[1:] or None)
    alignment = align(src, tgt, config, Path(args.cache or default_cache_dir()) / "align", langs)
    links = alignment.symmetrized(src, tgt, args.symmetrization, langs)
    write_lines(args.out, (format_pharaoh(line) for line in links))
    print(f"wrote {len(links)} lines of {args.symmetrization} links to {args.out}")
    if args.lexicon:
        precision = lexicon_precision(src, tgt, links, load_lexicon(args.lexicon))
        print(
            f"lexicon precision {precision.value:.3f} "
            f"({precision.confirmed}/{precision.judged} judged links, {precision.links} links)"
        )


def _split(args: argparse.Namespace) -> None:
    codes = pair_codes(args.pair)
    if codes is None:
        raise SplitError(f"--pair: {args.pair!r} is not of the form src-tgt (e.g. hu-en)")
    files = (args.src, args.tgt)
    if (args.tsv and any(files)) or (not args.tsv and not all(files)):
        raise SplitError("give either --src and --tgt (line-aligned files) or --tsv")
    if args.tsv:
        corpus = CorpusSpec("tsv", args.tsv, columns=tuple(args.columns or ()))
    else:
        corpus = CorpusSpec("files", "", src_file=args.src, tgt_file=args.tgt)
    if problems := corpus.problems("--columns") or corpus.pair_problems("--columns", *codes):
        raise SplitError(problems[0].replace("--columns.columns:", "--columns:"))
    dev, test = parse_size(args.dev, "dev"), parse_size(args.test, "test")
    spec = SplitSpec(corpus, codes[0], codes[1], dev=dev, test=test, seed=args.seed)
    summary = split_corpus(spec, args.out, overwrite=args.overwrite)
    print(json.dumps(summary, indent=2))


def _build(args: argparse.Namespace) -> None:
    recipe = load_recipe(args.recipe, args.overrides)
    hold(args.out, "data_prep build")  # a second build into the same --out is refused
    manifest = build(recipe, args.out, cache_dir=args.cache, overwrite=args.overwrite)
    for stage in manifest["stages"]:
        print(
            f"{stage['name']}: {stage['samples']} samples, {stage['tokens']} tokens "
            f"({stage['tokens_per_second']} tokens/s)"
        )
        print("  pairs mixed: " + format_summary(stage["name"], stage["mixing"]))
    print(f"manifest: {Path(args.out) / 'manifest.json'}")


def _inspect(args: argparse.Namespace) -> None:
    print(inspect(args.dir, samples=args.samples, tokenizer_path=args.tokenizer))


def _demo(args: argparse.Namespace) -> None:
    """The built-in default: real FreeDict de-en data, a locally trained tokenizer, CPU."""
    out = Path(args.out)
    check_output_dir(out, overwrite=True, marker=None)
    cache = Path(args.cache or default_cache_dir())
    corpus = out / "corpus"
    if not (corpus / "train.de").exists():
        deb = Path(args.deb) if args.deb else fetch_deb(cache / "freedict")
        print(json.dumps(build_corpus(deb, corpus), indent=2))
    tokenizer = out / "tokenizer"
    if not (tokenizer / "tokenizer.json").exists():
        train_tokenizer([corpus / "train.de", corpus / "train.en"], tokenizer, vocab_size=4000)
    overrides = [f"corpus.path={corpus}/", f"tokenizer={tokenizer}", *args.overrides]
    recipe = load_recipe("freedict", overrides)
    build(recipe, out / "shards", cache_dir=cache, overwrite=True)
    print(inspect(out / "shards", samples=2))


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m data_prep", description=__doc__.split("\n")[0])
    main.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = main.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "freedict", help="fetch Debian's dict-freedict-deu-eng and write a de-en split"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--deb", help="use this .deb instead of running apt-get download")
    p.add_argument("--cache", help="where downloads are kept (default ~/.cache/aligninstruct)")
    p.set_defaults(run=_freedict)

    p = sub.add_parser("tokenizer", help="train a small byte-level BPE tokenizer on text files")
    p.add_argument("--out", required=True)
    p.add_argument("--vocab-size", type=int, default=4000)
    p.add_argument(
        "--allow-smaller-vocab", action="store_true",
        help="keep the vocabulary the text gives when it is smaller than --vocab-size (a warning)",
    )  # fmt: skip
    p.add_argument("files", nargs="+")
    p.set_defaults(run=_tokenizer)

    p = sub.add_parser("clean", help="filter a line-aligned file pair and report drops")
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    p.add_argument("--out", required=True, help="output prefix: PREFIX.{src ext,tgt ext}")
    p.add_argument("--max-chars", type=int, default=CleanConfig.max_chars)
    p.add_argument("--max-ratio", type=float, default=CleanConfig.max_length_ratio)
    p.add_argument("--dedup", action="store_true")
    p.set_defaults(run=_clean)

    p = sub.add_parser("split", help="split one parallel corpus into train/dev/test files")
    p.add_argument("--pair", required=True, help="src-tgt codes, e.g. hu-en (file extensions)")
    p.add_argument("--src", help="source-language file (line-aligned with --tgt)")
    p.add_argument("--tgt", help="target-language file")
    p.add_argument("--tsv", help="or: one file of tab-separated pairs (give --columns)")
    p.add_argument("--columns", nargs=2, metavar="LANG", help="the tsv's column languages")
    p.add_argument("--out", required=True, help="folder: OUT/{train,dev,test}.{src,tgt}")
    p.add_argument("--dev", default="0.05", help="pairs (e.g. 500) or a fraction (0.05)")
    p.add_argument("--test", default="0.05", help="pairs (e.g. 500) or a fraction (0.05)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=_split)

    p = sub.add_parser("align", help="word-align a file pair; write symmetrised Pharaoh links")
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--aligner", default="eflomal", choices=ALIGNERS)
    p.add_argument("--symmetrization", default="grow-diag-final-and", choices=SYMMETRIZATIONS)
    p.add_argument("--lexicon", help="headword<TAB>translations file: report link precision")
    p.add_argument(
        "--max-chars", type=int, default=CleanConfig.max_chars,
        help="pairs with a longer side get no links (build's too_long limit)",
    )  # fmt: skip
    p.add_argument("--cache", help="cache root (default ~/.cache/aligninstruct)")
    p.set_defaults(run=_align)

    p = sub.add_parser("build", help="build instruction shards from a recipe")
    p.add_argument("recipe", help="recipe YAML, or a shipped recipe name (freedict, ...)")
    p.add_argument(
        "overrides", nargs="*", help="key=value overrides, e.g. align.aligner=fast_align"
    )
    p.add_argument("--out", required=True)
    p.add_argument("--cache", help="alignment cache root (default ~/.cache/aligninstruct)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=_build)

    p = sub.add_parser("inspect", help="print a build's manifest and decoded samples")
    p.add_argument("dir")
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--tokenizer", help="tokenizer to decode with (default: the manifest's)")
    p.set_defaults(run=_inspect)

    p = sub.add_parser("demo", help="the built-in default: FreeDict de-en to shards")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--deb")
    p.add_argument("--cache")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(run=_demo)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parse_args_with_overrides(parser(), argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("megatron").setLevel(logging.WARNING)
    try:
        args.run(args)
    except USER_ERRORS as err:
        _error(str(err))
        return 2
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        out = Path(getattr(args, "out", None) or ".")
        left = "the file being written was removed (finished files stay)"
        _error(disk_full_message(out, err, left=left))
        return 2
    return 0


def _error(message: str) -> None:
    # tqdm.write clears a progress bar left mid-line, so the message starts its own line.
    tqdm.write(f"error: {message}", file=sys.stderr)
