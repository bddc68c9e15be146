"""`python -m eval run/score/report` end to end on the FreeDict test split: hypotheses,
scores equal to the sacrebleu command line, resume after a kill, 2 ranks, report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

MINI = REPO_ROOT / "tests" / "assets" / "opus-100-mini"


def eval_cli(*args: str | Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eval", *map(str, args)], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=timeout, check=False, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip


def grid_args(corpus: Path, sentences: int = 60) -> list[str]:
    return ["--grid", "freedict", f"corpus.path={corpus}/", f"max_sentences={sentences}"]


@pytest.fixture(scope="module")
def evaluated(
    trained_model: Path, freedict_corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("eval") / "run"
    result = eval_cli("run", *grid_args(freedict_corpus), "--model", trained_model, "--out", out,
                      "--max-new-tokens", "40")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_outputs_and_averages(evaluated: Path, trained_model: Path) -> None:
    scores = json.loads((evaluated / "scores.json").read_text())
    resolved = json.loads((evaluated / "eval_config.json").read_text())  # beside the scores
    assert resolved["eval"]["model"] == str(trained_model)
    assert resolved["eval"]["decode"]["max_new_tokens"] == 40
    assert resolved["grid"]["max_sentences"] == 60 and resolved["grid"]["name"] == "freedict"
    assert set(scores["directions"]) == {"de-en", "en-de"}
    assert scores["directions"]["de-en"]["group"] == "X->en"
    assert scores["averages"]["all"]["directions"] == 2
    for name in ("de-en", "en-de"):
        hyps = (evaluated / "hyps" / f"{name}.txt").read_text(encoding="utf-8").splitlines()
        assert len(hyps) == 60 and all("\n" not in h for h in hyps)
    for name in ("de-en", "en-de"):  # the share cut at their new-token budget, per direction
        record = json.loads((evaluated / "hyps" / f"{name}.limits.json").read_text())
        share = scores["directions"][name]["hit_max_new_tokens"]
        assert 0 <= share <= 1 and share == round(record["hit_limit"] / 60, 4)
    assert "| de-en | X->en |" in (evaluated / "scores.md").read_text()
    header = "direction,group,sentences,bleu,chrf,off_target"
    assert (evaluated / "scores.csv").read_text().startswith(header)


def test_off_target_rates_beside_the_scores(evaluated: Path) -> None:
    scores = json.loads((evaluated / "scores.json").read_text())
    assert scores["off_target_identifier"]["model"] == "fastText lid.176.ftz (bundled)"
    for name, tgt in (("de-en", "en"), ("en-de", "de")):
        entry = scores["directions"][name]
        assert 0 <= entry["off_target"] <= 100 and sum(entry["identified"].values()) <= 60
        on_target = entry["identified"].get(tgt, 0)
        if len(entry["identified"]) < 5:  # all labels listed: the rate follows from them
            assert entry["off_target"] == round(100 * (60 - on_target) / 60, 2)
    rates = [scores["directions"][d]["off_target"] for d in ("de-en", "en-de")]
    assert scores["averages"]["all"]["off_target"] == round(sum(rates) / 2, 2)
    assert "off-target %" in (evaluated / "scores.md").read_text()


def test_scores_equal_the_sacrebleu_command_line(
    evaluated: Path, freedict_corpus: Path, tmp_path: Path
) -> None:
    """en-de: one reference per sentence, as the command line reads it. (de-en has
    alternative references, which the command line cannot take for some lines only.)"""
    scores = json.loads((evaluated / "scores.json").read_text())["directions"]
    for name, tgt in (("en-de", "de"),):
        refs = (freedict_corpus / f"test.{tgt}").read_text(encoding="utf-8").splitlines()[:60]
        ref = tmp_path / f"ref.{tgt}"
        ref.write_text("\n".join(refs) + "\n", encoding="utf-8")
        cli = Path(sys.executable).with_name("sacrebleu")
        out = subprocess.run(
            [cli, str(ref), "-i", str(evaluated / "hyps" / f"{name}.txt"), "-m", "bleu", "chrf",
             "--chrf-word-order", "2", "-tok", "13a", "-b", "-w", "2", "-f", "text"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        bleu, chrf = (float(x) for x in out.stdout.split())
        assert scores[name]["bleu"] == bleu and scores[name]["chrf"] == chrf
        assert "tok:13a" in scores[name]["signatures"]["bleu"]


def test_alternative_references_are_scored(evaluated: Path, freedict_corpus: Path) -> None:
    """de-en: FreeDict's alternative translations (test.en.alt) are references too."""
    from sacrebleu.metrics import BLEU, CHRF

    from eval.scoring import reference_streams

    entry = json.loads((evaluated / "scores.json").read_text())["directions"]["de-en"]
    refs = (freedict_corpus / "test.en").read_text(encoding="utf-8").splitlines()[:60]
    lines = (freedict_corpus / "test.en.alt").read_text(encoding="utf-8").splitlines()[:60]
    alts = [line.split("\t") if line else [] for line in lines]
    assert sum(map(bool, alts)) == 3 and entry["references"] == 2
    hyps = (evaluated / "hyps" / "de-en.txt").read_text(encoding="utf-8").splitlines()
    streams = reference_streams(refs, alts)
    assert entry["bleu"] == round(BLEU().corpus_score(hyps, streams).score, 2)
    assert entry["chrf"] == round(CHRF(word_order=2).corpus_score(hyps, streams).score, 2)
    assert "nrefs:var" in entry["signatures"]["bleu"]
    assert (evaluated / "refs" / "de-en.alt.txt").read_text(encoding="utf-8").splitlines() == lines
    assert not (evaluated / "refs" / "en-de.alt.txt").exists()


def test_finished_directions_are_not_decoded_again(
    evaluated: Path, trained_model: Path, freedict_corpus: Path
) -> None:
    stamps = {p.name: p.stat().st_mtime_ns for p in (evaluated / "hyps").iterdir()}
    model = ["--model", trained_model, "--max-new-tokens", "40"]
    result = eval_cli("run", *grid_args(freedict_corpus), *model, "--out", evaluated)
    assert result.returncode == 0, result.stderr[-2000:]
    assert {p.name: p.stat().st_mtime_ns for p in (evaluated / "hyps").iterdir()} == stamps


def test_killed_run_resumes_without_partial_files(
    evaluated: Path, trained_model: Path, freedict_corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "eval", "run", *grid_args(freedict_corpus, 200), "--model",
               str(trained_model), "--out", str(out), "--max-new-tokens", "40",
               "--batch-size", "4"]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 600
    while not (out / "hyps" / "de-en.txt").exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before the kill"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "hyps" / "en-de.txt").exists()  # the unfinished direction left nothing
    first = (out / "hyps" / "de-en.txt").stat().st_mtime_ns
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "hyps" / "de-en.txt").stat().st_mtime_ns == first
    assert len((out / "hyps" / "en-de.txt").read_text().splitlines()) == 200


def test_two_ranks_share_by_cost_and_outlast_a_short_group_timeout(
    evaluated: Path, trained_model: Path, freedict_corpus: Path, tiny_ckpt: Path, tmp_path: Path
) -> None:
    """Each rank decodes and scores (COMET included) its own share: COMET that takes twice
    the process group's timeout longer on rank 1 does not stop the run (rank 0 waits for
    its scores outside any collective), and hypotheses and BLEU/chrF++ are those of one
    rank."""
    from tests.training.conftest import TORCHRUN, free_port

    out = tmp_path / "ranks"
    env = dict(os.environ, OMP_NUM_THREADS="1", ALIGNINSTRUCT_DIST_TIMEOUT_S="3")
    env["SLOW_COMET_S"] = "0,6"  # rank 1 scores twice the timeout after rank 0
    result = subprocess.run(
        [TORCHRUN, "--nproc_per_node", "2", "--master_port", str(free_port()), "-m",
         "tests.support.slow_comet_eval", "run", *grid_args(freedict_corpus), "--model",
         str(trained_model), "--out", str(out), "--max-new-tokens", "40", "--comet",
         str(tiny_ckpt)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank 0: 1 directions" in result.stdout and "rank 1: 1 directions" in result.stdout
    for name in ("de-en.txt", "en-de.txt"):
        assert (out / "hyps" / name).read_text() == (evaluated / "hyps" / name).read_text()
    scores = json.loads((out / "scores.json").read_text())
    alone = json.loads((evaluated / "scores.json").read_text())
    for metric in ("bleu", "chrf"):
        assert scores["averages"]["all"][metric] == alone["averages"]["all"][metric]
    assert all(-100 < scores["directions"][d]["comet"] < 200 for d in ("de-en", "en-de"))
    assert {p.name for p in (out / "scores").iterdir()} == {"de-en.json", "en-de.json"}


def test_directions_are_shared_by_cost_not_round_robin() -> None:
    from data_prep.contract.readers import CorpusSpec
    from eval.directions import Direction, TestSet
    from eval.run import direction_cost, split_by_cost

    spec = CorpusSpec("files", "unused")
    sizes = {
        "a-en": (400, 30),
        "b-en": (100, 30),
        "c-en": (300, 30),
        "d-en": (200, 30),
        "e-en": (200, 10),
    }  # fmt: skip  (sentences, characters per sentence)
    found = [Direction(*name.split("-"), "X->en", spec, "test", "A", "B") for name in sizes]
    sets = {name: TestSet(["x" * chars] * n, ["y"] * n) for name, (n, chars) in sizes.items()}
    shares = split_by_cost(found, sets, 2)
    costs = [sum(direction_cost(sets[d.name]) for d in share) for share in shares]
    assert [[d.name for d in share] for share in shares] == [["a-en", "b-en", "e-en"],
                                                             ["c-en", "d-en"]]  # fmt: skip
    assert max(costs) - min(costs) <= 31 * 200  # round robin (a, c, e | b, d): 14,600 apart
    assert split_by_cost(found, sets, 1) == [found]
    assert split_by_cost(found, sets, 7)[5:] == [[], []]


def test_missing_test_files_listed_at_once(trained_model: Path, tmp_path: Path) -> None:
    result = eval_cli(
        "run",
        "--grid",
        "opus100",
        f"corpus.path={MINI}",
        "--model",
        trained_model,
        "--out",
        tmp_path / "o",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # 39 language pairs x 2 files (both directions of a pair share them), each listed
    # once, less the 4 the mini tree has (en-af and de-nl)
    assert "74 test file(s) missing" in result.stderr
    assert result.stderr.count("supervised/am-en/opus.am-en-test.am\n") == 1
    assert not (tmp_path / "o").exists()


def test_hypothesis_reference_mismatch_names_the_files(
    evaluated: Path, freedict_corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "broken"
    shutil.copytree(evaluated, out)
    hyp = out / "hyps" / "de-en.txt"
    hyp.write_text("\n".join(hyp.read_text().splitlines()[:-1]) + "\n")
    result = eval_cli("score", *grid_args(freedict_corpus), "--out", out)
    assert result.returncode == 2, result.stderr[-2000:]
    assert str(hyp) in result.stderr and "has 59 lines" in result.stderr and "60" in result.stderr


def test_report_compares_runs_with_cost(evaluated: Path, tmp_path: Path) -> None:
    runs = {}
    for label, shift, tokens in (("mt", 0.0, 1000), ("mt+align", 1.5, 1600)):
        run = tmp_path / label
        shutil.copytree(evaluated, run / "eval")
        scores = json.loads((run / "eval" / "scores.json").read_text())
        for entry in [*scores["directions"].values(), *scores["averages"].values()]:
            for metric in ("bleu", "chrf"):
                entry[metric] = round(entry[metric] + shift, 2)
        (run / "eval" / "scores.json").write_text(json.dumps(scores))
        summary = {"finetune": "full", "trainable_parameters": 356224, "tokens": tokens,
                   "tokens_per_second": 5000.0, "peak_memory_mb": 600.0,
                   "wall_seconds": tokens / 100}  # fmt: skip
        (run / "summary.json").write_text(json.dumps(summary))
        runs[label] = run
    out = tmp_path / "report"
    result = eval_cli("report", runs["mt"], runs["mt+align"], "--baseline", "mt", "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    text = (out / "report.md").read_text()
    assert "**mt+align** vs mt: bleu:" in text and "all +1.50" in text
    assert "1.60x the tokens" in text and "| mt+align | full | 356,224 | 1,600 |" in text
    for png in ("bleu_directions.png", "chrf_directions.png", "averages.png"):
        assert (out / png).stat().st_size > 1000
    bad = eval_cli("report", runs["mt"], "--baseline", "nope", "--out", out)
    assert bad.returncode == 2 and "'nope' is not one of the runs" in bad.stderr


def test_comet_scores_with_a_local_checkpoint(
    evaluated: Path, freedict_corpus: Path, tiny_ckpt: Path, tmp_path: Path
) -> None:
    out = tmp_path / "comet"
    shutil.copytree(evaluated, out)
    result = eval_cli("score", *grid_args(freedict_corpus), "--out", out, "--comet", tiny_ckpt)
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads((out / "scores.json").read_text())
    values = [scores["directions"][d]["comet"] for d in ("de-en", "en-de")]
    assert all(-100 < v < 200 for v in values)
    assert scores["averages"]["all"]["comet"] == round(sum(values) / 2, 2)
    assert scores["comet_checkpoint"] == str(tiny_ckpt)
    assert "COMET" in (out / "scores.md").read_text()
    # de and en are XLM-R languages: covered, averaged, no mark
    assert all(scores["directions"][d]["comet_covered"] for d in ("de-en", "en-de"))
    assert "†" not in (out / "scores.md").read_text()


def test_second_eval_into_one_out_is_refused(
    evaluated: Path, freedict_corpus: Path, tmp_path: Path
) -> None:
    from tests.support.lock_holder import start_holder

    out = tmp_path / "busy"
    shutil.copytree(evaluated, out)
    scores = (out / "scores.json").read_text()
    holder = start_holder(out)  # another process owns --out (as a running eval does)
    try:
        result = eval_cli("score", *grid_args(freedict_corpus), "--out", out)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"{out}: already being written by another process" in result.stderr
    assert f"pid {holder.pid}" in result.stderr
    assert (out / "scores.json").read_text() == scores
    # Its owner gone, the lock goes with it.
    again = eval_cli("score", *grid_args(freedict_corpus), "--out", out)
    assert again.returncode == 0, again.stderr[-2000:]


def test_a_model_trained_on_other_prompts_is_refused_up_front(
    trained_model: Path, freedict_corpus: Path, tmp_path: Path
) -> None:
    """prompt_format.json (written by training beside the export) against eval's templates
    and --chat-template: a mismatch is named before any sentence is decoded."""
    from data_prep.contract.templates import DEFAULT_TEMPLATES

    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    record = {"template_version": DEFAULT_TEMPLATES.version, "chat_template": True,
              "template_sha256": "0123456789abcdef", "turn_end": "<|im_end|>"}  # fmt: skip
    (model / "prompt_format.json").write_text(json.dumps(record))
    args = ["run", *grid_args(freedict_corpus, 4), "--model", model]
    result = eval_cli(*args, "--out", tmp_path / "a")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "trained on prompts in its tokenizer's chat template; pass --chat-template" in (
        result.stderr
    )
    assert not (tmp_path / "a" / "hyps").exists()
    # With the flag: this tokenizer has no chat template to match the record's.
    result = eval_cli(*args, "--chat-template", "--out", tmp_path / "b")
    assert result.returncode == 2 and "has no chat template" in result.stderr
    plain = {**record, "chat_template": False, "template_version": "tpl-other"}
    (model / "prompt_format.json").write_text(json.dumps(plain))
    result = eval_cli(*args, "--out", tmp_path / "c")
    assert result.returncode == 2
    assert "trained with templates tpl-other" in result.stderr
