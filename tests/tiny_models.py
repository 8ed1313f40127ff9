"""Tiny random model configs and sample prompts shared by the tests (importable by name).

Kept out of conftest.py so that test modules can import them without depending on which
conftest module Python resolves first.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

FAMILIES = ["llama", "gpt2", "gemma2", "gpt_neox", "qwen2"]

#: Further families, each with its own tiny config below (tests/test_families.py checks them all).
#: ``falcon`` has parallel attention + MLP (``parallel_attn=True``, the 7B/40B default) and
#: ``falcon-sequential`` the sequential variant; ``gpt_neox-sequential`` turns off NeoX's parallel
#: residual (the first families' ``gpt_neox`` keeps the parallel default).
MORE_FAMILIES = [
    "bloom",
    "cohere",
    "cohere2",
    "falcon",
    "falcon-sequential",
    "gemma",
    "gemma3_text",
    "gpt_neox-sequential",
    "gptj",
    "mistral",
    "mixtral",
    "olmo",
    "olmo2",
    "olmo3",
    "olmoe",
    "opt",
    "phi",
    "phi3",
    "qwen3",
    "qwen3_moe",
    "smollm3",
]

#: Families whose blocks run attention and MLP in parallel on the same block input.
PARALLEL_FAMILIES = ["cohere", "cohere2", "falcon", "gpt_neox", "gptj", "phi"]

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
    return _more_config(family, common)


def _more_config(family: str, common: dict[str, Any]) -> Any:
    """Tiny configs of ``MORE_FAMILIES``: 3 blocks, d_model 64, 4 heads (2 key/value heads)."""
    import transformers as tf

    decoder: dict[str, Any] = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        **common,
    }
    moe = {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}
    if family == "bloom":
        return tf.BloomConfig(hidden_size=64, n_layer=3, n_head=4, **common)
    if family == "cohere":
        return tf.CohereConfig(**decoder)
    if family == "cohere2":
        return tf.Cohere2Config(sliding_window=16, **decoder)
    if family in ("falcon", "falcon-sequential"):
        return tf.FalconConfig(
            hidden_size=64,
            num_hidden_layers=3,
            num_attention_heads=4,
            parallel_attn=family == "falcon",
            new_decoder_architecture=False,
            multi_query=True,
            max_position_embeddings=256,
            **common,
        )
    if family == "gemma":
        return tf.GemmaConfig(head_dim=16, **decoder)
    if family == "gemma3_text":
        return tf.Gemma3TextConfig(head_dim=16, sliding_window=16, **decoder)
    if family == "gpt_neox-sequential":
        return tf.GPTNeoXConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=3,
            num_attention_heads=4,
            max_position_embeddings=256,
            use_parallel_residual=False,
            **common,
        )
    if family == "gptj":
        return tf.GPTJConfig(
            n_embd=64, n_layer=3, n_head=4, rotary_dim=8, n_positions=256, **common
        )
    if family == "mistral":
        return tf.MistralConfig(sliding_window=None, **decoder)
    if family == "mixtral":
        return tf.MixtralConfig(num_local_experts=4, num_experts_per_tok=2, **decoder)
    if family == "olmo":
        return tf.OlmoConfig(**decoder)
    if family == "olmo2":
        return tf.Olmo2Config(**decoder)
    if family == "olmo3":
        return tf.Olmo3Config(sliding_window=16, **decoder)
    if family == "olmoe":
        return tf.OlmoeConfig(num_experts=4, num_experts_per_tok=2, **decoder)
    if family == "opt":
        return tf.OPTConfig(
            hidden_size=64,
            ffn_dim=128,
            num_hidden_layers=3,
            num_attention_heads=4,
            word_embed_proj_dim=64,
            max_position_embeddings=256,
            **common,
        )
    if family == "phi":
        return tf.PhiConfig(**decoder)
    if family == "phi3":
        return tf.Phi3Config(**decoder)
    if family == "qwen3":
        return tf.Qwen3Config(head_dim=16, **decoder)
    if family == "qwen3_moe":
        return tf.Qwen3MoeConfig(head_dim=16, decoder_sparse_step=1, **moe, **decoder)
    if family == "smollm3":
        return tf.SmolLM3Config(**decoder)
    raise ValueError(f"no tiny config for family {family!r}")


PROMPTS = [
    "Q: What is the capital of France?\nA: ",
    "Q: A shop sells pens at 3 dollars each. Tom buys 4 pens and pays with a 20 dollar bill. "
    "How much change does he get?\nA: ",
    "Q: Which element has the symbol Fe?\nA: ",
    "Q: 12 workers build a wall in 6 days. How long would 8 workers take?\nA: ",
    "Q: Who wrote Hamlet?\nA: ",
]


#: SmolLM2-135M-Instruct's tokenizer files, shipped so that tiny-model tests need no model wheel.
TOKENIZER_DIR = Path(__file__).resolve().parent / "data" / "tokenizer"


def shipped_tokenizer(folder: Path) -> Path:
    """Lay SmolLM2's shipped tokenizer out in ``folder`` (tokenizer.json unzipped) and return it."""
    for name in ("tokenizer_config.json", "chat_template.jinja"):
        shutil.copyfile(TOKENIZER_DIR / name, folder / name)
    with (
        gzip.open(TOKENIZER_DIR / "tokenizer.json.gz", "rb") as gz,
        open(folder / "tokenizer.json", "wb") as out,
    ):
        shutil.copyfileobj(gz, out)
    return folder
