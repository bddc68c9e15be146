"""`python -m eval COMMAND`: decode and score a grid, re-score, compare runs.

    python -m eval run --grid freedict corpus.path=runs/demo/corpus/ \
        --model runs/demo/train/export/model --out runs/demo/train/eval
    python -m eval run --config eval.yaml decode.num_beams=4      # typed config (eval.config)
    python -m eval score --grid freedict corpus.path=... --out runs/demo/train/eval
    python -m eval report runs/a runs/b --baseline a --out reports/a-vs-b
    python -m eval align --data runs/demo/shards --model runs/demo/train/export/model \
        --out runs/demo/train/eval
    python -m eval align --config eval.yaml align.data=runs/demo/shards  # typed config

User mistakes exit with status 2 and one message naming the file or key, printed once
(by rank 0 when launched on several ranks), before anything is decoded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.dist import launched_rank
from core.hub import prefer_offline
from core.lock import LockError, hold
from core.typed_config import ConfigError, load_config, parse_args_with_overrides
from data_prep.contract.readers import CorpusError
from data_prep.contract.templates import load_templates
from eval.config import EvalConfig, flag_overrides, load_eval_config
from eval.directions import GridConfig


def _print_scores(result: dict | None) -> None:
    if result is None:
        return
    for name, entry in result["directions"].items():
        if "warning" in entry:
            print(f"warning: {name}: {entry['warning']}; its scores say nothing about the "
                  "translations", file=sys.stderr)  # fmt: skip
    for group, values in result["averages"].items():
        metrics = "  ".join(f"{k} {v:.2f}" for k, v in values.items() if k != "directions")
        print(f"{group:>10} ({values['directions']} directions): {metrics}")


def _config(args: argparse.Namespace) -> tuple[EvalConfig, GridConfig]:
    return load_eval_config(args.config, [*flag_overrides(args), *args.overrides])


def _hold_out(config: EvalConfig, command: str) -> None:
    """One writer per --out (after the inputs were checked); on several ranks rank 0
    holds it, and the launcher stops the other ranks when it is refused."""
    if launched_rank() == 0 and config.out:
        hold(config.out, f"eval {command}")


def _run(args: argparse.Namespace) -> None:
    prefer_offline()  # before transformers reads the hub settings
    from eval.run import prepare, run

    config, grid = _config(args)
    found, test_sets = prepare(config, grid, decoding=True)
    _hold_out(config, "run")
    _print_scores(run(config, grid, found, test_sets))


def _score(args: argparse.Namespace) -> None:
    from eval.provenance import stale_problems
    from eval.run import prepare, score_all

    config, grid = _config(args)
    found, test_sets = prepare(config, grid, decoding=False)
    _hold_out(config, "score")
    if stale := stale_problems(Path(config.out or "."), found, test_sets):
        raise ConfigError(f"eval score {config.out}", stale)
    _print_scores(score_all(config, grid, found, test_sets))


def _report(args: argparse.Namespace) -> None:
    from eval.report import report
    from eval.significance import PairedSettings

    settings = PairedSettings(args.paired, args.resamples, args.seed, correction=args.correction)
    print(report(args.runs, args.out, args.baseline, settings, args.labels, args.sanity))


def _align(args: argparse.Namespace) -> None:
    from eval.align_eval import run

    config = load_config(EvalConfig, args.config, [*flag_overrides(args), *args.overrides])
    problems = (
        [] if config.align.data else ["align.data: required (--data BUILD or align.data=BUILD)"]
    )
    if not config.model:
        problems.append("model: required (--model NAME or model=NAME)")
    if problems:
        raise ConfigError(str(args.config) if args.config else "eval align", problems)
    templates = load_templates(config.templates)
    assert config.align.data and config.model and config.out  # checked above and by EvalConfig
    result = run(config.align.data, config.model, config.adapter, config.out, templates,
                 config.align.batch_size, config.align.max_samples)  # fmt: skip
    precision, recall = result["precision_true"], result["recall_true"]
    print(
        f"AlignInstruct accuracy {result['accuracy']:.3f} on {result['samples']} samples "
        f"({result['true_share']:.0%} True); precision of True "
        f"{'n/a' if precision is None else f'{precision:.3f}'}, recall "
        f"{'n/a' if recall is None else f'{recall:.3f}'} -> {Path(config.out) / 'align.json'}"
    )


def _config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="eval config YAML (eval.config.EvalConfig)")
    p.add_argument("--grid", help="grid YAML or shipped name (freedict, opus100); key grid")
    p.add_argument("--out", help="eval folder; key out")
    p.add_argument("--comet", help="COMET checkpoint (.ckpt), e.g. wmt22-comet-da's; key comet")
    p.add_argument("overrides", nargs="*", help="eval or grid key=value overrides")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m eval", description=__doc__.split("\n")[0])
    sub = main.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="decode every direction of a grid, then score")
    _config_flags(p)
    p.add_argument("--model", help="model folder or hub name (base model with --adapter)")
    p.add_argument("--adapter", help="LoRA adapter folder, merged into --model")
    p.add_argument("--batch-size", type=int, help="key decode.batch_size (default 64)")
    p.add_argument("--beams", type=int, help="key decode.num_beams (default 1: greedy)")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        help="key decode.max_new_tokens: the cap of each sentence's budget, min(cap, "
        "ceil(decode.length_ratio x source tokens) + decode.length_slack) (default 512)",
    )
    p.add_argument("--templates", help="template overrides (YAML), as used for the training data")
    p.add_argument(
        "--chat-template", action="store_true", default=None,
        help="prompts in the tokenizer's chat template, as the training data "
        "(recipe chat_template: true); key chat_template",
    )  # fmt: skip
    p.set_defaults(run=_run)
    p = sub.add_parser("score", help="score the hypotheses already in --out")
    _config_flags(p)
    p.set_defaults(run=_score)
    p = sub.add_parser("report", help="compare evaluated runs")
    p.add_argument("runs", nargs="+", help="run folders (with eval/) or eval folders")
    p.add_argument("--baseline", help="label of the baseline run; default the first")
    p.add_argument("--labels", help="comma-separated labels, one per run (default: folder names)")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--paired",
        choices=("bs", "ar"),
        default="bs",
        help="paired bootstrap resampling or approximate randomization (sacreBLEU)",
    )
    p.add_argument(
        "--resamples",
        type=int,
        default=0,
        help="bootstrap resamples / AR trials (default 1000 / 10000, as sacrebleu)",
    )
    p.add_argument("--seed", type=int, default=12345, help="seed of the resampling (>= 1)")
    p.add_argument(
        "--correction",
        choices=("holm", "bonferroni", "none"),
        default="holm",
        help="multiple-comparison correction over the directions (default holm)",
    )
    p.add_argument(
        "--sanity",
        help="eval folder of a memorisation run (trained on its own test pairs): its BLEU "
        "opens the report as a check that the chain can learn",
    )
    p.set_defaults(run=_report)
    p = sub.add_parser("align", help="AlignInstruct accuracy on the build's dev samples")
    p.add_argument("--config", help="eval config YAML (eval.config.EvalConfig; keys align.*)")
    p.add_argument("--data", help="data-prep build folder (dev/align.jsonl); key align.data")
    p.add_argument("--model", help="model folder (base model with --adapter); key model")
    p.add_argument("--adapter", help="LoRA adapter folder, merged into --model; key adapter")
    p.add_argument("--out", help="folder for align.json (e.g. the run's eval/); key out")
    p.add_argument("--templates", help="template overrides (YAML), as used for the training data")
    p.add_argument("--batch-size", dest="align_batch_size", type=int,
                   help="key align.batch_size (default 32)")  # fmt: skip
    p.add_argument("--max-samples", type=int, help="score only the first N; key align.max_samples")
    p.add_argument("overrides", nargs="*", help="eval key=value overrides (align.*, model, ...)")
    p.set_defaults(run=_align)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parse_args_with_overrides(parser(), argv)
    try:
        args.run(args)
    except (ConfigError, CorpusError, FileNotFoundError, LockError) as err:
        if launched_rank() == 0:  # every rank checks the same inputs: one message
            print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
