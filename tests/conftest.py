"""Shared fixtures: tiny random models of each supported family, and the real SmolLM2 model.

The dequantized SmolLM2 folder is cached once per test run (under ``LIREFS_CACHE_DIR``, which CI
points at a fresh folder per run); tiny models are built in-process from configs and reuse its
tokenizer (vocabulary 49152), so nothing needs the network.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("LIREFS_CACHE_DIR", str(Path(tempfile.gettempdir()) / "lirefs-test-cache"))
os.environ.setdefault("LIREFS_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

import lirefs  # noqa: E402
from lirefs.models import smollm2_folder  # noqa: E402

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


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The dequantized SmolLM2-135M-Instruct HF folder (made once per cache dir)."""
    return smollm2_folder()


@pytest.fixture(scope="session")
def tokenizer(smollm2_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.fixture(scope="session")
def make_tiny(tokenizer: Any) -> Callable[[str], Any]:
    """``make_tiny(family)`` -> a wrapped tiny random model (seeded, float32, eval mode)."""
    cache: dict[str, Any] = {}

    def build(family: str) -> Any:
        if family not in cache:
            from copy import deepcopy

            from transformers import AutoModelForCausalLM

            torch.manual_seed(0)
            hf = AutoModelForCausalLM.from_config(tiny_config(family), dtype=torch.float32).eval()
            cache[family] = lirefs.wrap(hf, deepcopy(tokenizer), name=f"tiny-{family}")
        return cache[family]

    return build


@pytest.fixture(scope="session")
def smollm2() -> Any:
    """The real SmolLM2-135M-Instruct model through ``lirefs.load_model`` (loaded once)."""
    return lirefs.load_model("smollm2-135m", device="cpu")


PROMPTS = [
    "Q: What is the capital of France?\nA: ",
    "Q: A shop sells pens at 3 dollars each. Tom buys 4 pens and pays with a 20 dollar bill. "
    "How much change does he get?\nA: ",
    "Q: Which element has the symbol Fe?\nA: ",
    "Q: 12 workers build a wall in 6 days. How long would 8 workers take?\nA: ",
    "Q: Who wrote Hamlet?\nA: ",
]


@pytest.fixture
def prompts() -> list[str]:
    """Prompts of different lengths (so batches carry left padding)."""
    return list(PROMPTS)
