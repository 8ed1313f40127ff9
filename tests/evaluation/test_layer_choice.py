"""Causal layer choice: per-layer steering effects on held-out questions, with a KL damage filter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from reference_hooks import reference_gold_logprobs

import lirefs
from lirefs.data import QuestionSets, format_prompt
from lirefs.errors import DataError
from lirefs.evaluation.layer_choice import CAUSAL_RULE, causal_layer_choice


@pytest.fixture(scope="module")
def setup(make_tiny: Callable[[str], Any]) -> tuple[Any, lirefs.Direction, QuestionSets]:
    model = make_tiny("llama")
    sets = lirefs.data.load("builtin").subset(12, seed=0)
    train, test = sets.split(test_fraction=0.5, seed=0)
    r = lirefs.collect_activations(model, train.reasoning_prompts())
    m = lirefs.collect_activations(model, train.memory_prompts())
    return model, lirefs.Direction.from_activations(r, m, model=model), test


def test_choice_is_the_best_eligible_score(setup: Any) -> None:
    model, direction, test = setup
    choice = causal_layer_choice(model, direction, test, alpha=2.0, limit=4, max_kl=10.0)
    assert choice.layers == [1, 2, 3]
    eligible = [i for i, ok in enumerate(choice.eligible) if ok]
    best = max(eligible, key=lambda i: (choice.score[i], -i))
    assert choice.best_layer == choice.layers[best]
    assert all(k >= 0 for k in choice.kl)


def test_deltas_match_the_hook_reference(setup: Any) -> None:
    model, direction, test = setup
    choice = causal_layer_choice(model, direction, test, alpha=2.0, limit=3, layers=[2])
    qs = [q for q in test.reasoning if q.answer][:3]
    prompts, golds = [format_prompt(q.text) for q in qs], [q.answer for q in qs]
    hf, tok = model._module, model.tokenizer
    base = reference_gold_logprobs(hf, tok, prompts, golds)
    vec = direction.vector(2)
    steered = reference_gold_logprobs(hf, tok, prompts, golds, vector=vec, alpha=2.0)
    want = sum(s - b for s, b in zip(steered, base, strict=True)) / len(qs)
    assert choice.delta_reasoning[0] == pytest.approx(want, rel=1e-3, abs=1e-3)
    assert choice.score[0] == pytest.approx(choice.delta_reasoning[0] - choice.delta_memory[0])


def test_damage_filter_refuses_when_every_layer_is_too_damaging(setup: Any) -> None:
    model, direction, test = setup
    with pytest.raises(DataError, match="KL"):
        causal_layer_choice(model, direction, test, alpha=2.0, limit=2, max_kl=0.0)


def test_annotate_records_the_rule(setup: Any) -> None:
    model, direction, test = setup
    choice = causal_layer_choice(
        model, direction, test, alpha=2.0, limit=2, layers=[1, 3], max_kl=10
    )
    marked = choice.annotate(direction)
    settings = marked.metadata["settings"]
    assert marked.chosen_layer == choice.best_layer and settings["layer_rule"] == CAUSAL_RULE
    assert [r["layer"] for r in settings["causal_layer_choice"]["layers"]] == [1, 3]
    assert "layer_rule" not in (direction.metadata.get("settings") or {})
    assert torch.equal(marked.vectors, direction.vectors)


def test_bad_alpha_is_a_clear_error(setup: Any) -> None:
    model, direction, test = setup
    with pytest.raises(DataError, match="alpha=0"):
        causal_layer_choice(model, direction, test, alpha=0.0)


def test_cli_layer_rule_causal_records_the_rule(
    make_tiny: Callable[[str], Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib
    import json

    from click.testing import CliRunner

    from lirefs.cli import main
    from lirefs.pipeline import collect_split

    model = make_tiny("llama")
    rows = [q for q in lirefs.data.load("builtin").subset(20, seed=1).reasoning] + [
        q for q in lirefs.data.load("builtin").subset(20, seed=1).memory
    ]
    data = tmp_path / "qs.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"question": q.text, "label": q.label, "answer": q.answer, "group": q.group})
            for q in rows
        )
    )
    split = collect_split(model, lirefs.data.load(data), test_fraction=0.5)
    acts = split.save(tmp_path / "acts.safetensors")
    monkeypatch.setattr(importlib.import_module("lirefs.cli._common"), "load", lambda *a: model)
    out = tmp_path / "liref.safetensors"
    args = ["direction", str(acts), "--out", str(out), "--layer-rule", "causal", "--set", str(data)]
    args += ["--causal-alpha", "2", "--max-kl", "100", "--causal-limit", "2", "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    saved = lirefs.Direction.load(out)
    assert saved.metadata["settings"]["layer_rule"] == "causal"
    assert saved.chosen_layer == payload["best_layer"] == payload["causal"]["best_layer"]
    assert "auroc_best_layer" in saved.metadata["settings"]
