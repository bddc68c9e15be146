"""Fine-tuning on prepared shards with DeepSpeed; one module per concern:

- `train.py`: the entry script, setup -> stages -> steps.
- `config.py`: the typed run config and the filled DeepSpeed JSON.
- `checks.py`: up-front input checks (shard sha256s, model source, tokenizer, dev split).
- `data.py`: reading shards and length-grouped distributed batch plans.
- `schedule.py`: steps per stage and the per-stage LR schedule.
- `model.py`: models, LoRA, the answer-only loss, parameter counts.
- `engine.py`: the model source and the DeepSpeed engine.
- `checkpoints.py`: atomic saves, verified resume with fallback, `ResumePosition`.
- `devloss.py`: the rank-shared dev loss.
- `logs.py`: metrics.jsonl, TensorBoard, progress, summary.json.
- `export.py`: gathered exports (model, adapter, merged).
"""
