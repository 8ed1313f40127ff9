"""Tiny random model configs and sample prompts shared by the tests (importable by name).

Kept out of conftest.py so that test modules can import them without depending on which
conftest module Python resolves first.
"""

from __future__ import annotations

from typing import Any

FAMILIES = ["llama", "gpt2", "gemma2", "gpt_neox", "qwen2"]

VOCAB = 49152


def tiny_config(family: str) -> Any:
    """A 3-block random model config of ``family`` with d_model 64 and the SmolLM2 vocabulary."""
    import transformers as tf

    common: dict[str, Any] = {
        "vocab_size": VOCAB,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
    }
    if family == "llama":
        return tf.LlamaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            **common,
        )
    if family == "qwen2":
        return tf.Qwen2Config(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            **common,
        )
    if family == "gemma2":
        return tf.Gemma2Config(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            sliding_window=16,
            **common,
        )
    if family == "gpt2":
        return tf.GPT2Config(n_embd=64, n_layer=3, n_head=4, n_positions=256, **common)
    if family == "gpt_neox":
        return tf.GPTNeoXConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=3,
            num_attention_heads=4,
            max_position_embeddings=256,
            **common,
        )
    raise ValueError(family)


PROMPTS = [
    "Q: What is the capital of France?\nA: ",
    "Q: A shop sells pens at 3 dollars each. Tom buys 4 pens and pays with a 20 dollar bill. "
    "How much change does he get?\nA: ",
    "Q: Which element has the symbol Fe?\nA: ",
    "Q: 12 workers build a wall in 6 days. How long would 8 workers take?\nA: ",
    "Q: Who wrote Hamlet?\nA: ",
]
