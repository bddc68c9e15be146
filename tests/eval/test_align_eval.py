"""`python -m eval align`: a tiny BLOOM trained on AlignInstruct samples only (tokenized by
data prep's own `encode_batch`, loss on answer + EOS as in training) judges held-out
assertions better than its untrained init; batching does not change the scores; bad
input is reported by file and line."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data_prep.contract.templates import DEFAULT_TEMPLATES, Templates
from eval.align_eval import AlignSample, align_metrics, answer_logprobs, evaluate
from tests.conftest import REPO_ROOT

# A toy lexicon: German -> English, one word each way.
LEXICON = {
    "hund": "dog", "katze": "cat", "haus": "house", "baum": "tree", "wasser": "water",
    "brot": "bread", "stadt": "city", "nacht": "night", "fluss": "river", "garten": "garden",
}  # fmt: skip
NAMES = {"de": "German", "en": "English"}


FILLERS = {"de": ["und", "der", "ist", "sehr"], "en": ["and", "the", "is", "very"]}


def make_samples(n: int, seed: int, true_share: float) -> list[dict[str, str]]:
    """AlignInstruct samples in the format of dev/align.jsonl, both directions. Each side
    has one unaligned function word; a positive pairs a word with its translation, a
    negative with the function word of the other side (as data prep's negatives: a word
    of y not linked to x's word), which a tiny model learns to spot in seconds."""
    rng = random.Random(seed)
    labels = [i < round(n * true_share) for i in range(n)]
    rng.shuffle(labels)
    rows = []
    for label in labels:
        de = rng.sample(sorted(LEXICON), rng.randint(3, 5))
        en = [LEXICON[w] for w in de]
        rng.shuffle(en)
        fill_de, fill_en = rng.choice(FILLERS["de"]), rng.choice(FILLERS["en"])
        xw = rng.choice(de)
        yw = LEXICON[xw] if label else fill_en
        de.insert(rng.randint(0, len(de)), fill_de)
        en.insert(rng.randint(0, len(en)), fill_en)
        src, tgt, x, y = "de", "en", " ".join(de), " ".join(en)
        if rng.random() < 0.5:  # the other direction
            xw, yw = (yw, xw) if label else (LEXICON[xw], fill_de)
            src, tgt, x, y = "en", "de", y, x
        prompt, _ = DEFAULT_TEMPLATES.align(NAMES[src], NAMES[tgt], x, y, xw, yw, label)
        rows.append({"src": src, "tgt": tgt, "prompt": prompt, "answer": str(label)})
    return rows


def to_samples(rows: list[dict[str, str]]) -> list[AlignSample]:
    return [AlignSample(r["src"], r["tgt"], r["prompt"], r["answer"] == "True") for r in rows]


def write_build(folder: Path, rows: list[dict[str, str]], template_version: str) -> Path:
    (folder / "dev").mkdir(parents=True)
    (folder / "dev" / "align.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = {"template_version": template_version, "dev": {"align_samples": "dev/align.jsonl"}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def train(model_dir: Path, rows: list[dict[str, str]], steps: int, seed: int) -> None:
    """Plain-PyTorch fine-tuning on (prompt, answer) pairs encoded as the shards are."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from data_prep.shards import encode_batch

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    answers = {True: DEFAULT_TEMPLATES.align_true, False: DEFAULT_TEMPLATES.align_false}
    pairs = [(r["prompt"], answers[r["answer"] == "True"]) for r in rows]
    enc = encode_batch(tokenizer, pairs, max_len=512)
    starts = enc.lengths.cumsum() - enc.lengths
    examples = [
        (enc.ids[s : s + n].tolist(), int(p))
        for s, n, p in zip(starts, enc.lengths, enc.prompt_lengths, strict=True)
    ]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model.train()
    for _ in range(steps):
        batch = rng.sample(examples, 32)
        width = max(len(ids) for ids, _ in batch)
        ids = torch.full((32, width), tokenizer.pad_token_id)
        labels = torch.full((32, width), -100)
        mask = torch.zeros((32, width), dtype=torch.long)
        for i, (tokens, prompt_len) in enumerate(batch):
            ids[i, : len(tokens)] = torch.tensor(tokens)
            labels[i, prompt_len : len(tokens)] = torch.tensor(tokens[prompt_len:])
            mask[i, : len(tokens)] = 1
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(model_dir, safe_serialization=True)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from data_prep.tokenizer import train_tokenizer
    from training.model import build_tiny_bloom

    root = tmp_path_factory.mktemp("align-eval")
    text = root / "text.txt"
    text.write_text("\n".join(r["prompt"] + " True False" for r in make_samples(400, 9, 0.5)))
    tokenizer = train_tokenizer([text], root / "tok", vocab_size=400)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        init = build_tiny_bloom(tok, root / "init", hidden=64, layers=2, heads=4, seed=5)
        trained = build_tiny_bloom(tok, root / "trained", hidden=64, layers=2, heads=4, seed=5)
        train(trained, make_samples(1500, seed=1, true_share=0.5), steps=120, seed=2)
    finally:
        torch.set_num_threads(threads)
    return {"init": init, "trained": trained, "root": root}


def eval_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eval", *map(str, args)], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=600, check=False, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip


@pytest.mark.integration
def test_trained_model_beats_its_untrained_init(models: dict[str, Path], tmp_path: Path) -> None:
    # held out: other sentences (seed), and more True than False (asymmetric balance)
    build = write_build(
        tmp_path / "build", make_samples(300, seed=77, true_share=0.6), DEFAULT_TEMPLATES.version
    )
    results = {}
    for name in ("init", "trained"):
        out = tmp_path / name
        result = eval_cli("align", "--data", build, "--model", models[name], "--out", out,
                          "--batch-size", "16")  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        results[name] = json.loads((out / "align.json").read_text())
    init, trained = results["init"], results["trained"]
    assert init["samples"] == trained["samples"] == 300
    assert init["true_share"] == trained["true_share"] == 0.6
    # learned beyond the majority answer (0.6) and beyond the init
    assert trained["accuracy"] > max(init["accuracy"], trained["true_share"]) + 0.1
    assert set(trained["directions"]) == {"de-en", "en-de"}
    assert trained["template_version"] == DEFAULT_TEMPLATES.version


@pytest.mark.integration
def test_typed_config_gives_the_scores_of_the_flags(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """`eval align --config eval.yaml key=value` scores as the old flags do."""
    import yaml

    from eval.align_eval import run

    build = write_build(tmp_path / "b", make_samples(40, seed=78, true_share=0.5),
                        DEFAULT_TEMPLATES.version)  # fmt: skip
    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump({"model": str(models["trained"]), "out": str(tmp_path / "o"),
                                      "align": {"data": str(build), "batch_size": 7}}))  # fmt: skip
    result = eval_cli("align", "--config", config, "align.max_samples=25")
    assert result.returncode == 0, result.stderr[-3000:]
    typed = json.loads((tmp_path / "o" / "align.json").read_text())
    flags = run(str(build), str(models["trained"]), None, tmp_path / "f", DEFAULT_TEMPLATES,
                batch_size=7, max_samples=25)  # fmt: skip
    assert typed["samples"] == 25 and typed == flags


def test_batching_does_not_change_the_scores(models: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(models["trained"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(models["trained"])
    prompts = [r["prompt"] for r in make_samples(9, seed=3, true_share=0.5)]
    answers = [" True", " False"]
    one = answer_logprobs(model, tokenizer, prompts, answers, batch_size=1)
    batched = answer_logprobs(model, tokenizer, prompts, answers, batch_size=7)
    torch.testing.assert_close(one, batched, rtol=1e-4, atol=1e-4)
    # and equal to the model's own loss on prompt + answer + EOS
    ids = tokenizer(prompts[0])["input_ids"]
    answer = tokenizer(" False", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    labels = [-100] * len(ids) + answer
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([ids + answer]), labels=torch.tensor([labels])).loss
    assert float(one[0, 1]) == pytest.approx(-float(loss) * len(answer), rel=1e-4)


def test_templates_decide_the_answers(models: dict[str, Path]) -> None:
    """Swapping the two answer strings swaps every prediction."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(models["trained"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(models["trained"])
    samples = to_samples(make_samples(40, seed=4, true_share=0.5))
    swapped = Templates(align_true=" False", align_false=" True")
    a = evaluate(model, tokenizer, samples, DEFAULT_TEMPLATES, show=False)
    b = evaluate(model, tokenizer, samples, swapped, show=False)
    assert a["predicted_true_share"] == pytest.approx(1 - b["predicted_true_share"])


def test_metrics_of_true() -> None:
    samples = [AlignSample("de", "en", "p", y) for y in (True, True, True, False, False)]
    samples += [AlignSample("en", "de", "p", False)]
    predicted = [True, True, False, True, False, False]
    m = align_metrics(samples, predicted)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision_true"] == pytest.approx(2 / 3) and m["recall_true"] == pytest.approx(2 / 3)
    assert m["true_share"] == 0.5 and m["predicted_true_share"] == 0.5
    assert m["directions"]["en-de"] == {
        "samples": 1, "accuracy": 1.0, "precision_true": None, "recall_true": None,
        "true_share": 0.0, "predicted_true_share": 0.0,
    }  # fmt: skip


@pytest.mark.integration
def test_bad_input_names_file_and_line(models: dict[str, Path], tmp_path: Path) -> None:
    rows = make_samples(3, seed=5, true_share=0.5)
    build = write_build(tmp_path / "b", rows, DEFAULT_TEMPLATES.version)
    path = build / "dev" / "align.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = json.dumps({**rows[1], "answer": "yes"})
    path.write_text("\n".join([*lines, "{not json"]) + "\n")
    result = eval_cli("align", "--data", build, "--model", models["init"], "--out", tmp_path / "o")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}:2: expected" in result.stderr and f"{path}:4: not JSON" in result.stderr
    other = write_build(tmp_path / "c", rows, "tpl-000000000000")
    result = eval_cli("align", "--data", other, "--model", models["init"], "--out", tmp_path / "o")
    assert result.returncode == 2 and "built with templates tpl-000000000000" in result.stderr
    result = eval_cli("align", "--data", tmp_path, "--model", models["init"], "--out", tmp_path)
    assert result.returncode == 2 and "no AlignInstruct dev samples" in result.stderr
    assert not (tmp_path / "o").exists()
