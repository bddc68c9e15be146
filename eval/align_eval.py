"""AlignInstruct accuracy: did the model learn the discriminator task?

    python -m eval align --data runs/demo/shards --model runs/demo/full-mt-align/export/model \
        --out runs/demo/full-mt-align/eval

Reads the held-out AlignInstruct samples that data prep built from the dev split
(`manifest["dev"]["align_samples"]`, default `dev/align.jsonl`: positives and negatives,
both directions, same aligner and templates as training). Each is scored as training
sees it: prompt (with the tokenizer's special tokens) + answer (`templates.align_true` /
`align_false`, e.g. " True") + EOS; the model answers True when the True answer's
log-likelihood (its tokens and EOS, given the prompt) is the higher one. Writes
`align.json`: accuracy, precision and recall of True, the share of True in the set (a
model that always answers the majority reaches max(share, 1 - share)), per direction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from core.devices import model_device
from core.families import backbone, softcap_logits
from core.fileio import write_json
from core.typed_config import ConfigError
from data_prep.contract.chat import ChatFormat, PromptFormat, template_problems
from data_prep.contract.manifest import read_manifest
from data_prep.contract.readers import CorpusError
from data_prep.contract.templates import Templates

ANSWERS = {"True": True, "False": False}
KEYS = ("src", "tgt", "prompt", "answer")


@dataclass(frozen=True)
class AlignSample:
    src: str
    tgt: str
    prompt: str
    label: bool


def samples_path(data: str | Path, templates: Templates) -> Path:
    """The build's AlignInstruct dev file; checks the build used the same templates."""
    folder = Path(data)
    relative = "dev/align.jsonl"
    if (folder / "manifest.json").is_file():
        manifest = read_manifest(folder)
        relative = (manifest.get("dev") or {}).get("align_samples") or relative
        built = manifest.get("template_version")
        if built and built != templates.version:
            raise ConfigError("--templates", [
                f"{folder}/manifest.json: the data was built with templates {built}, these are "
                f"{templates.version}; pass the build's --templates file"
            ])  # fmt: skip
    path = folder / relative
    if not path.is_file():
        raise ConfigError("--data", [
            f"{path}: no AlignInstruct dev samples; build the data with a dev split and "
            "Align in the curriculum (data prep writes dev/align.jsonl)"
        ])  # fmt: skip
    return path


def read_samples(path: Path) -> list[AlignSample]:
    """Every sample of a JSONL file; all bad lines are reported at once."""
    samples, problems = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                problems.append(f"{path}:{number}: not JSON ({err.msg})")
                continue
            missing = [k for k in KEYS if not isinstance(row, dict) or k not in row]
            if missing or row["answer"] not in ANSWERS:
                problems.append(
                    f"{path}:{number}: expected {{src, tgt, prompt, answer: True|False}}, "
                    f"got {line.strip()[:80]}"
                )
                continue
            samples.append(
                AlignSample(row["src"], row["tgt"], row["prompt"], ANSWERS[row["answer"]])
            )
    if problems:
        raise CorpusError("\n".join(problems[:20]) + (" ..." if len(problems) > 20 else ""))
    if not samples:
        raise CorpusError(f"{path}: no samples")
    return samples


def _batch_logprobs(
    model: Any, rows: list[tuple[list[int], int]], pad: int, device: torch.device
) -> torch.Tensor:
    """Summed log-probability of each row's tokens from `start` on, given those before,
    on `device` (the model's). Rows are right-padded; the LM head runs only at the scored
    positions."""
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    select = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (ids, start) in enumerate(rows):  # built on the CPU, then moved in one copy each
        input_ids[i, : len(ids)] = torch.tensor(ids)
        mask[i, : len(ids)] = 1
        select[i, start - 1 : len(ids) - 1] = True  # positions that predict the answer
    input_ids, mask, select = input_ids.to(device), mask.to(device), select.to(device)
    hidden = backbone(model)(input_ids=input_ids, attention_mask=mask)[0]
    targets = input_ids[:, 1:][select[:, :-1]]
    logits = softcap_logits(model, model.get_output_embeddings()(hidden[select]).float())
    token_lp = logits.log_softmax(-1).gather(1, targets[:, None])[:, 0]
    row_of = select.nonzero()[:, 0]
    return torch.zeros(len(rows), device=device).index_add_(0, row_of, token_lp)


@torch.inference_mode()
def answer_logprobs(
    model: Any, tokenizer: Any, prompts: Sequence[str], answers: Sequence[str],
    batch_size: int = 32, progress: Callable[[int], None] | None = None,
    chat: ChatFormat | None = None,
) -> torch.Tensor:  # fmt: skip
    """[len(prompts), len(answers)]: log p(answer + its end | prompt), tokenized as data
    prep builds training samples (`PromptFormat`: plain, or in the `chat` template)."""
    tokens = PromptFormat(tokenizer, chat or False)
    prompt_ids, answer_ids = tokens.prompt_ids(prompts), tokens.answer_ids(answers)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = [(p + a, len(p)) for p in prompt_ids for a in answer_ids]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    device = model_device(model)
    scores = torch.empty(len(rows), device=device)  # read back once, at the end
    done = 0
    for begin in range(0, len(order), batch_size):
        chunk = order[begin : begin + batch_size]
        index = torch.tensor(chunk, device=device)
        scores[index] = _batch_logprobs(model, [rows[i] for i in chunk], pad, device)
        if progress is not None:
            finished = (begin + len(chunk)) // len(answer_ids)
            progress(finished - done)
            done = finished
    return scores.view(len(prompt_ids), len(answer_ids)).cpu()


def _counts(labels: Sequence[bool], predictions: Sequence[bool]) -> dict[str, Any]:
    pairs = list(zip(labels, predictions, strict=True))
    tp = sum(1 for y, p in pairs if y and p)
    fp = sum(1 for y, p in pairs if not y and p)
    fn = sum(1 for y, p in pairs if y and not p)
    n = len(pairs)
    return {
        "samples": n,
        "accuracy": sum(1 for y, p in pairs if y == p) / n,
        "precision_true": tp / (tp + fp) if tp + fp else None,
        "recall_true": tp / (tp + fn) if tp + fn else None,
        "true_share": sum(labels) / n,
        "predicted_true_share": sum(predictions) / n,
    }


def align_metrics(samples: Sequence[AlignSample], predictions: Sequence[bool]) -> dict[str, Any]:
    """Overall and per-direction accuracy, precision and recall of True, and balance."""
    result = _counts([s.label for s in samples], predictions)
    by_direction: dict[str, list[int]] = {}
    for i, sample in enumerate(samples):
        by_direction.setdefault(f"{sample.src}-{sample.tgt}", []).append(i)
    result["directions"] = {
        name: _counts([samples[i].label for i in rows], [predictions[i] for i in rows])
        for name, rows in sorted(by_direction.items())
    }
    return result


def evaluate(
    model: Any, tokenizer: Any, samples: Sequence[AlignSample], templates: Templates,
    batch_size: int = 32, show: bool = True, chat: ChatFormat | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Predict True or False for each sample by likelihood; metrics (see module doc)."""
    answers = [templates.align_true, templates.align_false]
    prompts = [s.prompt for s in samples]
    with tqdm(total=len(samples), desc="align", unit="sample", disable=not show) as bar:
        scores = answer_logprobs(model, tokenizer, prompts, answers, batch_size, bar.update, chat)
    predictions = (scores[:, 0] > scores[:, 1]).tolist()  # a tie counts as False
    result = align_metrics(samples, predictions)
    result["mean_margin"] = float((scores[:, 0] - scores[:, 1]).mean())
    return result


def run(
    data: str, model: str, adapter: str | None, out: str | Path, templates: Templates,
    batch_size: int = 32, max_samples: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    from core.hub import model_source_problems, prefer_offline
    from eval.run import load_model

    path = samples_path(data, templates)
    samples = read_samples(path)[:max_samples]
    prefer_offline()
    problems = model_source_problems(model, "--model")
    problems += (
        model_source_problems(adapter, "--adapter", "adapter_config.json") if adapter else []
    )
    if problems:
        raise ConfigError("eval align", problems)
    lm, tokenizer = load_model(model, adapter)
    recorded = (
        read_manifest(data).get("prompt_format")
        if (Path(data) / "manifest.json").is_file()
        else None
    )
    tokens = PromptFormat(tokenizer, bool(recorded and recorded.get("chat_template")))
    if problems := template_problems(recorded, tokens, "--model"):
        raise ConfigError("eval align", problems)
    result = evaluate(lm, tokenizer, samples, templates, batch_size, chat=tokens.chat)
    result.update({"data": str(path), "model": model, "adapter": adapter,
                   "template_version": templates.version})  # fmt: skip
    write_json(Path(out) / "align.json", result)
    return result
