"""Proof that what is trained, exported, decoded and scored fits together: a small model
memorises a few dozen sentence pairs through the real command chain

    python -m data_prep build -> deepspeed training/train.py (2 ranks, ZeRO-3)
    -> export -> python -m eval run / python -m eval align

and then translates those pairs back (BLEU >= 95 both ways) and judges the AlignInstruct
assertions it was trained on (accuracy >= 0.95); a 2-rank LoRA run from that model then
learns the same sentences re-paired (BLEU >= 95, from under 20). The prompts eval decodes
are checked against the training prompts token for token. A toy model's held-out scores cannot
tell a working chain from one whose decode prompt differs from the training prompt by a
character, whose labels are shifted by one, or that never learns to stop (EOS): a
memorised training set can, because each of those makes the decoded text differ from
what was memorised.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.contract.languages import language_name
from data_prep.contract.manifest import read_manifest
from data_prep.contract.tokenizer import load_tokenizer
from data_prep.inspect_shards import ANSWER_CLOSE, ANSWER_OPEN, decode_sample
from tests.conftest import REPO_ROOT
from tests.training.conftest import run_training
from training.data import load_stages

PAIRS = 32  # sentence pairs to memorise (train = test)
# A global batch of 16 (8 per rank), 80 epochs of the ~95 samples: about 400 steps, with
# the LR decaying linearly to zero over them.
MEMORISE = (
    "model.tiny_hidden=128", "model.tiny_layers=2", "model.tiny_heads=4", "micro_batch_size=8",
    "grad_accum=1", "lr=3e-3", "warmup_ratio=0.02", "weight_decay=0.0", "save_every=100000",
    "log_every=20",
)  # fmt: skip


# LoRA on every linear layer of the tiny BLOOM, at a rank that can hold a new mapping.
LORA = (
    "finetune=lora", "lora.rank=64", "lora.alpha=128", "lora.dropout=0.0", "lr=1e-2",
    "lora.target_modules=[query_key_value,dense,dense_h_to_4h,dense_4h_to_h]",
)  # fmt: skip


def cli(module: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=900, check=False, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip


def small_corpus(freedict: Path, out: Path, pairs: int = PAIRS, skip: int = 0) -> Path:
    """`pairs` short FreeDict training pairs as train, dev and test split alike."""
    de = (freedict / "train.de").read_text(encoding="utf-8").splitlines()
    en = (freedict / "train.en").read_text(encoding="utf-8").splitlines()
    short = [(d, e) for d, e in zip(de, en, strict=True) if len(d.split()) <= 7][skip:]
    chosen = short[:pairs]
    out.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        for lang, column in (("de", 0), ("en", 1)):
            lines = "".join(pair[column] + "\n" for pair in chosen)
            (out / f"{split}.{lang}").write_text(lines, encoding="utf-8")
    return out


def build(corpus: Path, tokenizer: Path, out: Path, curriculum: str) -> Path:
    result = cli("data_prep", "build", "freedict", f"corpus.path={corpus}/",
                 f"tokenizer={tokenizer}", f"curriculum={curriculum}", "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def trained_assertions(shards: Path, out: Path) -> Path:
    """A folder `eval align --data` reads, whose samples are the AlignInstruct assertions
    of the training shards, decoded back to text (the prompt exactly as it was tokenised)."""
    manifest = read_manifest(shards)
    tokenizer = load_tokenizer(manifest["tokenizer"]["name_or_path"])
    names = {language_name(code): code for pair in manifest["corpora"] for code in pair.split("-")}
    rows = []
    for stage in load_stages(shards):
        for index in range(len(stage)):
            text = decode_sample(tokenizer, *stage[index])
            prompt, answer = text.split(ANSWER_OPEN)
            answer = answer.removesuffix(ANSWER_CLOSE).replace(tokenizer.eos_token, "").strip()
            if answer not in ("True", "False"):
                continue  # an MT sample
            l1, l2 = prompt.split(" between ", 1)[1].split(", judge")[0].split(" and ")
            rows.append({"src": names[l1], "tgt": names[l2], "prompt": prompt, "answer": answer})
    assert len(rows) >= PAIRS // 2, f"only {len(rows)} AlignInstruct samples in the build"
    out.mkdir(parents=True)
    (out / "trained.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    manifest["dev"] = {**(manifest.get("dev") or {}), "align_samples": "trained.jsonl"}
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return out


def bleu(scores: Path) -> dict[str, float]:
    directions = json.loads(scores.read_text())["directions"]
    return {name: entry["bleu"] for name, entry in directions.items()}


@pytest.fixture(scope="module")
def memorised(
    freedict_corpus: Path, tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Full fine-tuning of a tiny random model on 32 pairs, MT and AlignInstruct mixed."""
    root = tmp_path_factory.mktemp("memorise")
    corpus = small_corpus(freedict_corpus, root / "corpus")
    shards = build(corpus, tokenizer_dir, root / "shards", "MT+Align")
    run = root / "full"
    result = run_training(f"data={shards}", f"run_dir={run}", *MEMORISE, "epochs_per_stage=[80]",
                          timeout=1800)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return {"corpus": corpus, "shards": shards, "model": run / "export" / "model",
            "tokenizer": tokenizer_dir}  # fmt: skip


def deranged(corpus: Path, out: Path) -> Path:
    """The memorised pairs re-paired: each German sentence with the next pair's English.
    A mapping the base has not learned, over words it has learned to write (a LoRA cannot
    teach a frozen, tied output layer to write a token it never wrote)."""
    out.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        shutil.copy(corpus / f"{split}.de", out / f"{split}.de")
        english = (corpus / f"{split}.en").read_text(encoding="utf-8").splitlines(keepends=True)
        (out / f"{split}.en").write_text("".join(english[1:] + english[:1]), encoding="utf-8")
    return out


def test_full_finetuning_memorises_through_the_cli_chain(
    memorised: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    result = cli("eval", "run", "--grid", "freedict", f"corpus.path={memorised['corpus']}/",
                 "--model", memorised["model"], "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    scores = bleu(out / "scores.json")
    assert set(scores) == {"de-en", "en-de"}
    assert min(scores.values()) >= 95, scores


def test_alignment_assertions_are_memorised(memorised: dict[str, Path], tmp_path: Path) -> None:
    data = trained_assertions(memorised["shards"], tmp_path / "assertions")
    out = tmp_path / "eval"
    result = cli("eval", "align", "--data", data, "--model", memorised["model"], "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    align = json.loads((out / "align.json").read_text())
    assert align["samples"] >= PAIRS // 2 and 0 < align["true_share"] < 1
    assert align["accuracy"] >= 0.95, align


def test_decode_prompts_are_the_training_prompts_token_for_token(
    memorised: dict[str, Path],
) -> None:
    """What `eval run` feeds the model (eval's prompts, tokenized by its translator's
    PromptFormat) is, for every test sentence, a prompt the model was trained on, token
    for token: a change of one character on either side fails here, even one (inside the
    instruction) that a memorised model would shrug off."""
    from data_prep.contract.chat import PromptFormat
    from data_prep.contract.templates import DEFAULT_TEMPLATES
    from eval.directions import directions, load_grid, read_test_sets
    from eval.run import direction_prompts

    manifest = read_manifest(memorised["shards"])
    tokenizer = load_tokenizer(manifest["tokenizer"]["name_or_path"])
    trained = set()
    for stage in load_stages(memorised["shards"]):
        for index in range(len(stage)):
            ids, mask = stage[index]
            trained.add(tuple(int(t) for t in ids[: int(mask.argmax())]))
    grid = load_grid("freedict", [f"corpus.path={memorised['corpus']}/"])
    found = directions(grid)
    test_sets = read_test_sets(found)
    tokens = PromptFormat(tokenizer)
    decoded = {
        tuple(row)
        for direction in found
        for row in tokens.prompt_ids(
            direction_prompts(direction, test_sets[direction.name], DEFAULT_TEMPLATES)
        )
    }
    assert len(decoded) == 2 * PAIRS
    assert decoded <= trained, len(decoded - trained)


def test_lora_memorises_a_new_mapping_through_the_cli_chain(
    memorised: dict[str, Path], tmp_path: Path
) -> None:
    """A 2-rank ZeRO-3 LoRA run from the memorised model learns the re-paired set, which
    the base gets wrong: the adapter is trained, gathered, exported and merged at eval."""
    corpus = deranged(memorised["corpus"], tmp_path / "corpus")
    shards = build(corpus, memorised["tokenizer"], tmp_path / "shards", "MT")
    grid = ["--grid", "freedict", f"corpus.path={corpus}/", "--model", memorised["model"]]
    result = cli("eval", "run", *grid, "--out", tmp_path / "base")
    assert result.returncode == 0, result.stderr[-3000:]
    assert max(bleu(tmp_path / "base" / "scores.json").values()) < 20  # not yet known
    run = tmp_path / "lora"
    settings = [item for item in MEMORISE if not item.startswith(("model.", "lr="))]
    result = run_training(f"data={shards}", f"run_dir={run}", "model.tiny=false",
                          f"model.name={memorised['model']}", *settings, *LORA,
                          "epochs_per_stage=[30]", timeout=1800)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "eval"
    result = cli("eval", "run", *grid, "--adapter", run / "export" / "adapter", "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    scores = bleu(out / "scores.json")
    assert set(scores) == {"de-en", "en-de"} and min(scores.values()) >= 95, scores
