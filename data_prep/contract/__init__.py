"""data_prep's documented contract with training and eval: what they may import.

- `templates`: the prompt templates of every instruction type (prompts in eval are
  the ones the training data was built with);
- `languages`: language codes and the names printed in prompts;
- `readers`: parallel-corpus readers (OPUS-100 layout, file pairs, TSV, HF datasets);
- `manifest`: reading a build's `manifest.json`;
- `shards`: the on-disk shard format and reading it (megatron-core indexed datasets);
- `tokenizer`: loading a tokenizer and its identity (fingerprint).

The stages (cleaning, alignment, instruction building, shard writing) sit beside this
package in `data_prep/` and are never imported by training or eval.
"""
