"""Gold-answer log-probabilities and next-token distributions, steered and not.

Checked against an independent reference (tests/reference_hooks.py): one unpadded
plain-transformers forward per item, with raw forward hooks for the steered modes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from reference_hooks import install_hooks, reference_gold_logprobs

import lirefs
from lirefs.errors import DataError, LayerError
from lirefs.evaluation.outcomes import gold_logprobs, next_token_logprobs
from lirefs.steer import SteeringError

FAMILIES = ["llama", "gpt2", "gemma2", "gpt_neox"]

GOLDS = [" Paris.", " He gets 8 dollars back.", " Iron (Fe).", " 9 days.", " William Shakespeare."]


def _direction(model: Any, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(lirefs.model_info(model).d_model, generator=g, dtype=torch.float64)


def _close(got: list[float], want: list[float], tol: float = 2e-4) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert abs(a - b) <= tol * max(1.0, abs(b)), (got, want)


# --------------------------------------------------------------------------------------------
# gold log-probability against the plain-transformers reference


@pytest.mark.parametrize("family", FAMILIES)
def test_unsteered_matches_teacher_forced_reference(
    make_tiny: Callable[[str], Any], prompts: list[str], family: str
) -> None:
    model = make_tiny(family)
    got = gold_logprobs(model, prompts, GOLDS, batch_size=len(prompts))
    want = reference_gold_logprobs(model._module, model.tokenizer, prompts, GOLDS)
    _close(got, want)
    assert all(v < 0 for v in got)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("mode", "alpha"), [("project", 0.5), ("project", -0.3), ("ablate", 0.0)])
def test_projection_steering_matches_hook_reference(
    make_tiny: Callable[[str], Any], prompts: list[str], family: str, mode: str, alpha: float
) -> None:
    model = make_tiny(family)
    r = _direction(model)
    steering = {"direction": r, "alpha": alpha, "mode": mode}
    got = gold_logprobs(model, prompts, GOLDS, steering=steering, batch_size=2)
    want = reference_gold_logprobs(
        model._module, model.tokenizer, prompts, GOLDS, vector=r, alpha=alpha, mode=mode
    )
    _close(got, want)
    plain = reference_gold_logprobs(model._module, model.tokenizer, prompts, GOLDS)
    assert max(abs(a - b) for a, b in zip(got, plain, strict=True)) > 1e-3


@pytest.mark.parametrize("layer", [1, 3])
def test_add_steering_matches_hook_reference(
    make_tiny: Callable[[str], Any], prompts: list[str], layer: int
) -> None:
    model = make_tiny("llama")
    r = _direction(model)
    steering = {"direction": r, "alpha": 6.0, "mode": "add", "layer": layer}
    got = gold_logprobs(model, prompts, GOLDS, steering=steering)
    want = reference_gold_logprobs(
        model._module, model.tokenizer, prompts, GOLDS, vector=r, alpha=6.0, mode="add", layer=layer
    )
    _close(got, want)


def test_blocks_subset_matches_hook_reference(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    r = _direction(model)
    steering = {"direction": r, "alpha": 0.8, "blocks": [0, 2]}
    got = gold_logprobs(model, prompts, GOLDS, steering=steering)
    want = reference_gold_logprobs(
        model._module, model.tokenizer, prompts, GOLDS, vector=r, alpha=0.8, blocks=[0, 2]
    )
    _close(got, want)


def test_alpha_zero_is_the_plain_forward(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    r = _direction(model)
    plain = gold_logprobs(model, prompts, GOLDS)
    zero = gold_logprobs(model, prompts, GOLDS, steering={"direction": r, "alpha": 0.0})
    assert zero == plain


def test_order_and_batching_do_not_change_values(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    one = gold_logprobs(model, prompts, GOLDS, batch_size=1)
    budget = gold_logprobs(model, prompts, GOLDS, batch_size=None, token_budget=64)
    _close(budget, one, tol=1e-5)


def test_remote_local_path_gives_the_same_values(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    r = _direction(model)
    steering = {"direction": r, "alpha": 0.5}
    local = gold_logprobs(model, prompts[:3], GOLDS[:3], steering=steering, batch_size=2)
    via = gold_logprobs(
        model, prompts[:3], GOLDS[:3], steering=steering, batch_size=2, remote="local"
    )
    _close(via, local, tol=1e-9)


@pytest.mark.slow
def test_smollm2_matches_reference_steered(smollm2: Any) -> None:
    prompts = ["Q: What is the capital of France?\nA: ", "Q: What is 7 times 6?\nA: "]
    golds = [" Paris", " The final answer is 42."]
    r = _direction(smollm2, seed=3)
    for steering in (None, {"direction": r, "alpha": 0.1}):
        got = gold_logprobs(smollm2, prompts, golds, steering=steering)
        kw: dict[str, Any] = {} if steering is None else {"vector": r, "alpha": 0.1}
        want = reference_gold_logprobs(smollm2._module, smollm2.tokenizer, prompts, golds, **kw)
        _close(got, want, tol=1e-3)


@pytest.mark.parametrize("steered", [False, True])
def test_next_token_logprobs_match_hook_reference(
    make_tiny: Callable[[str], Any], prompts: list[str], steered: bool
) -> None:
    model = make_tiny("llama")
    r = _direction(model)
    steering = {"direction": r, "alpha": 0.5} if steered else None
    got = next_token_logprobs(model, prompts, steering=steering, batch_size=2)
    hf, tok = model._module, model.tokenizer
    for i, prompt in enumerate(prompts):
        vector = r if steered else None
        handles = install_hooks(hf, vector=vector, alpha=0.5, mode="project")
        try:
            with torch.inference_mode():
                ids = torch.tensor([tok(prompt)["input_ids"]])
                want = torch.log_softmax(hf(input_ids=ids).logits[0, -1].float(), dim=-1)
        finally:
            for h in handles:
                h.remove()
        assert torch.allclose(got[i], want, atol=1e-4), float((got[i] - want).abs().max())


# --------------------------------------------------------------------------------------------
# bad input


def test_bad_input_is_a_clear_error(make_tiny: Callable[[str], Any], prompts: list[str]) -> None:
    model = make_tiny("llama")
    with pytest.raises(DataError, match="gold texts"):
        gold_logprobs(model, prompts, GOLDS[:2])
    with pytest.raises(DataError, match="non-empty strings"):
        gold_logprobs(model, prompts[:1], [""])
    with pytest.raises(SteeringError, match="needs direction"):
        gold_logprobs(model, prompts[:1], GOLDS[:1], steering={"alpha": 0.1})
    with pytest.raises(SteeringError, match="unknown keys"):
        gold_logprobs(model, prompts[:1], GOLDS[:1], steering={"alfa": 0.1})
    with pytest.raises(SteeringError, match="positions"):
        r = _direction(model)
        gold_logprobs(
            model,
            prompts[:1],
            GOLDS[:1],
            steering={"direction": r, "alpha": 1.0, "positions": [-1]},
        )
    with pytest.raises(LayerError, match="out of range"):
        r = _direction(model)
        gold_logprobs(
            model, prompts[:1], GOLDS[:1], steering={"direction": r, "alpha": 1.0, "layer": 9}
        )
