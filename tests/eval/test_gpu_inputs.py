"""Decoding and AlignInstruct scoring against a model on a (fake) CUDA device
(tests/support/fake_cuda.py): every input, mask, index and cache tensor must be built on
the model's device, as on a GPU, where one left on the CPU raises; the outputs are those
of the same model on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from data_prep.contract.templates import DEFAULT_TEMPLATES
from eval.align_eval import answer_logprobs
from eval.decode import DecodeConfig, Translator
from tests.support.fake_cuda import fake_cuda, to_fake_cuda


@pytest.fixture(scope="module")
def models(trained_model: Path, freedict_corpus: Path):
    tokenizer = AutoTokenizer.from_pretrained(trained_model)
    cpu = AutoModelForCausalLM.from_pretrained(trained_model).eval()
    gpu = to_fake_cuda(AutoModelForCausalLM.from_pretrained(trained_model).eval())
    sources = (freedict_corpus / "test.de").read_text(encoding="utf-8").splitlines()[:16]
    prompts = [DEFAULT_TEMPLATES.mt("German", "English", s)[0] for s in sources]
    return cpu, gpu, tokenizer, prompts


def test_the_fake_device_rejects_a_cpu_input(models) -> None:
    _, gpu, tokenizer, prompts = models
    ids = torch.tensor([tokenizer(prompts[0])["input_ids"]])
    assert next(gpu.parameters()).device == torch.device("cuda", 0)
    with fake_cuda(), pytest.raises(RuntimeError, match="Expected all tensors to be on the same"):
        gpu(input_ids=ids)


@pytest.mark.parametrize("beams", [1, 2])
def test_decoding_builds_its_tensors_on_the_model_device(models, beams: int) -> None:
    cpu, gpu, tokenizer, prompts = models
    # A batch smaller than the prompts: rows leave, new ones are prefilled and merged.
    config = DecodeConfig(batch_size=4, num_beams=beams, max_new_tokens=20)
    chosen = prompts if beams == 1 else prompts[:6]
    expected = Translator(cpu, tokenizer, config).translate(chosen)
    with fake_cuda():
        translator = Translator(gpu, tokenizer, config)
        assert translator.device == torch.device("cuda", 0)
        assert translator.translate(chosen) == expected
    assert sum(1 for text in expected if text) > len(chosen) // 2


def test_align_scoring_puts_its_inputs_on_the_model_device(models) -> None:
    cpu, gpu, tokenizer, prompts = models
    answers = [" True", " False"]
    expected = answer_logprobs(cpu, tokenizer, prompts[:6], answers, batch_size=4)
    with fake_cuda():
        scores = answer_logprobs(gpu, tokenizer, prompts[:6], answers, batch_size=4)
    assert scores.device.type == "cpu" and torch.allclose(scores, expected, atol=1e-4)
    assert len(set(expected[:, 0].tolist())) > 1  # the model tells the prompts apart
