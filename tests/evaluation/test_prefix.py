"""The shared few-shot prefix cache (lirefs.evaluation.prefix) against the full-prompt path.

The fast path must give the same tokens as generating every full prompt: exactly plain HF
``generate`` on left-padded prompts at alpha 0, and ``evaluate(..., reuse_prefix=False)`` under
every steering mode, on prompts of different lengths (padding between prefix and question).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import lirefs
from lirefs.batching import pad_left, tokenize
from lirefs.evaluation.prefix import (
    SharedPrefix,
    prefix_generate,
    prefix_gold_logprobs,
    shared_prefix,
    shared_prefix_length,
)

PREFIX = (
    "Q: Sam has 3 apples and buys 4 more. How many apples does he have?\nA: The final answer "
    "is 7.\n\nQ: A box holds 6 pens. How many pens are in 5 boxes?\nA: The final answer is 30."
    "\n\n"
)
QUESTIONS = [
    "Q: What is 2 + 2?\nA: ",
    "Q: A train travels 60 km each hour for 3 hours, then 20 km more. How far did it go?\nA: ",
    "Q: Ann is 9 and Bob is twice as old. How old is Bob?\nA: ",
]
PROMPTS = [PREFIX + q for q in QUESTIONS]
SETTINGS = [
    ("project", (0.0,)),
    ("project", (0.1, -0.1)),
    ("add", (4.0,)),
    ("ablate", (-1.0,)),
]


def test_shared_prefix_length_leaves_every_row_a_token() -> None:
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 9], [1, 2, 3, 4, 5]]) == 3
    assert shared_prefix_length([[1, 2], [1, 2, 3]]) == 1  # the shorter row keeps one token
    assert shared_prefix_length([[5, 6, 7]]) == 2
    assert shared_prefix_length([]) == 0


def test_alpha0_equals_plain_hf_generate(make_tiny: Any) -> None:
    model = make_tiny("llama")
    ids = tokenize(model, PROMPTS)
    p = shared_prefix_length(ids)
    assert p > 20 and len({len(x) for x in ids}) == 3  # a real prefix, and padding
    with shared_prefix(model, ids[0][:p], None) as shared:
        got = prefix_generate(shared, ids, max_new_tokens=10)
    hf = model._module
    inputs = pad_left(ids, model.tokenizer.pad_token_id)
    with torch.no_grad():
        ref = hf.generate(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            max_new_tokens=10,
            do_sample=False,
            pad_token_id=model.tokenizer.pad_token_id,
        )
    t = inputs["input_ids"].shape[1]
    eos = hf.generation_config.eos_token_id
    for r, row in enumerate(ref[:, t:].tolist()):
        cut = row.index(eos) if eos in row else len(row)
        assert got.token_ids[r] == row[:cut]


@pytest.mark.parametrize(("mode", "alphas"), SETTINGS)
def test_evaluate_tokens_equal_the_full_prompt_path(
    make_tiny: Any, mode: str, alphas: tuple[float, ...]
) -> None:
    model = make_tiny("llama")
    torch.manual_seed(3)
    d = model.config.hidden_size
    liref = lirefs.Direction.from_activations(
        torch.randn(6, 4, d) + 0.5, torch.randn(6, 4, d), model=model, settings={"best_layer": 2}
    )
    kw: dict[str, Any] = {"direction": liref, "mode": mode, "limit": 4, "max_new_tokens": 6}
    if mode == "ablate":
        alphas = (0.0, *alphas)
    fast = lirefs.evaluate(model, "builtin-arithmetic", alphas=alphas, batch_size=4, **kw)
    plain = lirefs.evaluate(
        model, "builtin-arithmetic", alphas=alphas, batch_size=4, reuse_prefix=False, **kw
    )
    assert fast.metadata["settings"]["prefix_cache"]["shared_tokens"] > 500
    assert plain.metadata["settings"]["prefix_cache"] is None
    assert len({len(r["prompt"]) for r in fast.records}) > 1  # items of different lengths
    for a, b in zip(fast.records, plain.records, strict=True):
        assert (a["alpha"], a["id"]) == (b["alpha"], b["id"])
        assert a["n_tokens"] == b["n_tokens"] and a["output"] == b["output"]
        assert a["gold_logprob"] == pytest.approx(b["gold_logprob"], rel=1e-4, abs=1e-4)


def test_gold_logprobs_equal_a_plain_forward(make_tiny: Any) -> None:
    model = make_tiny("llama")
    golds = [" The final answer is 4.", " The final answer is 200.", " 18"]
    ids = tokenize(model, PROMPTS)
    p = shared_prefix_length(ids)
    with shared_prefix(model, ids[0][:p], None) as shared:
        got = prefix_gold_logprobs(shared, ids, golds)
    hf = model._module
    for r, gold in enumerate(golds):
        g = model.tokenizer(gold, add_special_tokens=False).input_ids
        x = torch.tensor([ids[r] + g])
        with torch.no_grad():
            logp = torch.log_softmax(hf(x).logits[0].double(), dim=-1)
        want = sum(float(logp[len(ids[r]) - 1 + k, t]) for k, t in enumerate(g))
        assert got[r] == pytest.approx(want, abs=1e-4)


def test_steered_copy_is_dropped_after_the_run(make_tiny: Any) -> None:
    model = make_tiny("llama")
    ids = tokenize(model, PROMPTS)
    p = shared_prefix_length(ids)
    steering = {"direction": torch.ones(model.config.hidden_size), "layer": 1, "alpha": 0.5}
    with shared_prefix(model, ids[0][:p], steering) as shared:
        assert isinstance(shared, SharedPrefix) and shared.model is not model
        prefix_generate(shared, ids, max_new_tokens=2)
    again = lirefs.generate(model, PROMPTS[:1], max_new_tokens=6)
    with shared_prefix(model, ids[0][:p], None) as plain:
        assert prefix_generate(plain, ids[:1], max_new_tokens=6).token_ids == again.token_ids


@pytest.mark.slow
def test_smollm2_fast_path_equals_the_plain_path(smollm2: Any) -> None:
    torch.manual_seed(0)
    d = smollm2.config.hidden_size
    liref = lirefs.Direction.from_activations(
        torch.randn(4, 31, d) + 0.2, torch.randn(4, 31, d), model=smollm2,
        settings={"best_layer": 15},
    )  # fmt: skip
    kw: dict[str, Any] = {"direction": liref, "alphas": (0.0, 0.1), "limit": 4}
    fast = lirefs.evaluate(smollm2, "builtin-arithmetic", max_new_tokens=24, batch_size=4, **kw)
    plain = lirefs.evaluate(smollm2, "builtin-arithmetic", max_new_tokens=24, batch_size=4,
                            reuse_prefix=False, **kw)  # fmt: skip
    assert [r["output"] for r in fast.records] == [r["output"] for r in plain.records]
    for a, b in zip(fast.records, plain.records, strict=True):
        assert a["gold_logprob"] == pytest.approx(b["gold_logprob"], abs=1e-3)
        # the answer after the model's own working: the same rows reach the marker on both paths
        assert (a.get("answer_logprob") is None) == (b.get("answer_logprob") is None)
        if a.get("answer_logprob") is not None:
            assert a["answer_logprob"] == pytest.approx(b["answer_logprob"], abs=1e-3)
    assert any(r.get("answer_logprob") is not None for r in fast.records)


@pytest.mark.parametrize("family", ["gemma3_text", "gemma2"])
def test_windowed_attention_takes_the_full_prompt_path_and_says_why(
    make_tiny: Any, family: str
) -> None:
    # a window of 16 positions: the padding between a cached prefix and the question would fall
    # inside it, so the cache cannot stand in for the full prompts
    model = make_tiny(family)
    kw: dict[str, Any] = {"alphas": (0.0,), "limit": 2, "max_new_tokens": 3, "batch_size": 2}
    fast = lirefs.evaluate(model, "builtin-arithmetic", **kw)
    plain = lirefs.evaluate(model, "builtin-arithmetic", reuse_prefix=False, **kw)
    setting = fast.metadata["settings"]["prefix_cache"]
    assert setting["shared_tokens"] is None and "window" in setting["skipped"]
    assert plain.metadata["settings"]["prefix_cache"] is None
    assert [r["output"] for r in fast.records] == [r["output"] for r in plain.records]


def test_full_attention_models_keep_the_prefix_path(make_tiny: Any) -> None:
    from lirefs.evaluation.prefix import prefix_unsupported

    assert prefix_unsupported(make_tiny("llama")) is None
    assert prefix_unsupported(make_tiny("mistral")) is None  # sliding_window None


def test_grouped_exemplars_get_one_prefix_per_group(make_tiny: Any) -> None:
    """The ladder's rungs each have their own exemplars: the plan orders the sampled items rung
    by rung, every batch stays within one rung, and the tokens equal the full-prompt path's."""
    model = make_tiny("llama")
    torch.manual_seed(5)
    d = model.config.hidden_size
    liref = lirefs.Direction.from_activations(
        torch.randn(6, 4, d) + 0.5, torch.randn(6, 4, d), model=model, settings={"best_layer": 2}
    )
    kw: dict[str, Any] = {
        "direction": liref,
        "limit": 10,
        "max_new_tokens": 5,
        "batch_size": 2,
        "prompt_baselines": ("Let's think step by step.",),
    }
    fast = lirefs.evaluate(model, "builtin-ladder", alphas=(0.0, 0.1), **kw)
    plain = lirefs.evaluate(model, "builtin-ladder", alphas=(0.0, 0.1), reuse_prefix=False, **kw)
    setting = fast.metadata["settings"]["prefix_cache"]
    assert setting["prefixes"] == 7 and setting["shared_tokens"] > 100  # seven rungs
    batches: dict[tuple[int, int], set[str]] = {}
    for r in fast.records:
        batches.setdefault(tuple(r["batch"]), set()).add(r["group"])
    assert all(len(groups) == 1 for groups in batches.values())
    def by_key(result: Any) -> dict[tuple[Any, ...], dict[str, Any]]:
        baseline = [r for b in result.prompt_baselines.values() for r in b.records]
        rows = [(r, None) for r in result.records] + [(r, "baseline") for r in baseline]
        return {(r["alpha"], tag, r["id"]): r for r, tag in rows}

    fast_by, plain_by = by_key(fast), by_key(plain)
    assert fast_by.keys() == plain_by.keys() and len(fast_by) == 30
    for k, a in fast_by.items():
        b = plain_by[k]
        assert a["output"] == b["output"] and a["n_tokens"] == b["n_tokens"]
        assert a["gold_logprob"] == pytest.approx(b["gold_logprob"], rel=1e-4, abs=1e-4)


def _windowed(tokenizer: Any, family: str, window: int) -> Any:
    from copy import deepcopy

    from tiny_models import tiny_config
    from transformers import AutoModelForCausalLM

    config = tiny_config(family)
    config.sliding_window = window
    config.max_position_embeddings = 4096  # the whole 8-shot prompt: a long shared prefix
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    return lirefs.wrap(hf, deepcopy(tokenizer), name=f"tiny-{family}-w{window}")


@pytest.mark.parametrize("family", ["gemma3_text", "gemma2"])
def test_windowed_attention_keeps_the_prefix_path_when_every_sequence_fits(
    tokenizer: Any, family: str
) -> None:
    # Every sequence the run forms (longest prompt + generated + scored gold tokens) inside the
    # window: both layouts see every position, so the cache must give the full-prompt tokens.
    def run(model: Any, **kw: Any) -> Any:
        torch.manual_seed(3)
        liref = lirefs.Direction.from_activations(
            torch.randn(6, 4, 64) + 0.5, torch.randn(6, 4, 64), settings={"best_layer": 2},
            model=model,
        )  # fmt: skip
        return lirefs.evaluate(model, "builtin-arithmetic", direction=liref, alphas=(0.0, 0.1),
                               limit=4, max_new_tokens=6, batch_size=4, **kw)  # fmt: skip

    wide = run(_windowed(tokenizer, family, 4096))
    setting = wide.metadata["settings"]["prefix_cache"]
    assert setting["shared_tokens"] > 500 and setting["window"]["positions"] == 4096
    longest = setting["window"]["longest"]
    prompt_tokens = max(len(tokenize(_windowed(tokenizer, family, 16), [r["prompt"]])[0])
                        for r in wide.records)  # fmt: skip
    assert prompt_tokens + 6 < longest < prompt_tokens + 6 + 40
    # a window of exactly the longest sequence still fits: the same tokens as the full prompts
    tight_model = _windowed(tokenizer, family, longest)
    tight, plain = run(tight_model), run(tight_model, reuse_prefix=False)
    assert tight.metadata["settings"]["prefix_cache"]["window"]["positions"] == longest
    assert plain.metadata["settings"]["prefix_cache"] is None
    assert len({len(r["prompt"]) for r in tight.records}) > 1  # padding between the parts
    for a, b in zip(tight.records, plain.records, strict=True):
        assert (a["alpha"], a["id"], a["output"]) == (b["alpha"], b["id"], b["output"])
        assert a["gold_logprob"] == pytest.approx(b["gold_logprob"], rel=1e-4, abs=1e-4)
    # one position less and the cache is refused, naming the window and the reach
    short = run(_windowed(tokenizer, family, longest - 1))
    skipped = short.metadata["settings"]["prefix_cache"]
    assert skipped["shared_tokens"] is None
    assert f"is {longest - 1} positions" in skipped["skipped"]
    assert f"reach {longest} tokens" in skipped["skipped"]


def test_a_batch_beyond_the_window_is_refused_not_run_on_another_context(tokenizer: Any) -> None:
    from lirefs.errors import DataError

    model = _windowed(tokenizer, "gemma3_text", 4096)
    ids = tokenize(model, PROMPTS)
    p = shared_prefix_length(ids)
    width = max(len(x) for x in ids)
    with shared_prefix(model, ids[0][:p], None) as shared:
        assert shared.window == 4096
        prefix_generate(shared, ids, max_new_tokens=4)  # fits
        shared.window = width + 3
        with pytest.raises(DataError, match="beyond the model's attention window"):
            prefix_generate(shared, ids, max_new_tokens=4)
        short, long = [" 4.", " 200.", " 18."], [" The final answer is 4."] * 3
        from lirefs.evaluation.outcomes import gold_token_ids

        shared.window = width + max(len(g) for g in gold_token_ids(model, short))
        prefix_gold_logprobs(shared, ids, short)  # exactly the window: fits
        with pytest.raises(DataError, match=r"--no-prefix-cache"):
            prefix_gold_logprobs(shared, ids, long)
