"""evaluate's continuous outcomes and controls on a real (tiny random) model.

Gold log-probabilities in the records are checked against the forward-hook reference
(tests/reference_hooks.py); controls must reuse the alpha-0 generations and resume from records.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from reference_hooks import reference_gold_logprobs

import lirefs
from lirefs.errors import DataError
from lirefs.evaluation.controls import random_directions
from lirefs.evaluation.engines import FullPromptEngine

KW: dict[str, Any] = {"limit": 3, "max_new_tokens": 4, "n_boot": 50, "batch_size": 3}


@pytest.fixture(scope="module")
def setup(make_tiny: Callable[[str], Any]) -> tuple[Any, lirefs.Direction, Any]:
    model = make_tiny("llama")
    sets = lirefs.data.load("builtin").subset(6, seed=0)
    r = lirefs.collect_activations(model, sets.reasoning_prompts())
    m = lirefs.collect_activations(model, sets.memory_prompts())
    direction = lirefs.Direction.from_activations(r, m, model=model, settings={"best_layer": 2})
    return model, direction, (r, m)


class SpyEngine(FullPromptEngine):
    """The full-prompt engine, recording each generate call's plan (alpha, unit vector)."""

    def __init__(self, model: Any) -> None:
        super().__init__(model, batch_size=64)
        self.calls: list[dict[str, Any]] = []

    def run(self, prompts: Any, plan: Any, **kw: Any) -> Any:
        self.calls.append({"alpha": plan.alpha, "unit": plan.unit, "n": len(prompts)})
        return super().run(prompts, plan, **kw)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch, setup: Any) -> list[dict[str, Any]]:
    """Every ``lirefs.evaluate`` here runs with a ``SpyEngine`` (``evaluate(engine=...)``);
    returns its recorded generate calls."""
    engine = SpyEngine(setup[0])
    monkeypatch.setattr(lirefs, "evaluate", functools.partial(lirefs.evaluate, engine=engine))
    return engine.calls


def test_records_carry_gold_logprob_equal_to_the_hook_reference(setup: Any) -> None:
    model, direction, _ = setup
    result = lirefs.evaluate(model, "builtin-facts", direction=direction, alphas=(0.0, 2.0), **KW)
    hf, tok = model._module, model.tokenizer
    for alpha in (0.0, 2.0):
        recs = [r for r in result.records if r["alpha"] == alpha]
        assert all(
            r["gold_text"].startswith(" The answer is ") and r["prompt"].endswith("A:")
            for r in recs
        )
        vector = direction.vector(2) if alpha else None
        want = reference_gold_logprobs(
            hf, tok, [r["prompt"] for r in recs], [r["gold_text"] for r in recs],
            vector=vector, alpha=alpha,
        )  # fmt: skip
        got = [r["gold_logprob"] for r in recs]
        assert got == pytest.approx(want, rel=2e-4, abs=2e-4)
        assert result.gold_logprob[alpha] == pytest.approx(sum(got) / len(got))
        assert all(isinstance(r["degenerate"], bool) for r in recs)
    paired = result.gold_logprob_paired[2.0]
    assert paired.diff == pytest.approx(result.gold_logprob[2.0] - result.gold_logprob[0.0])
    assert 0.0 not in result.gold_logprob_paired


def test_controls_reuse_alpha_zero_and_are_seeded(setup: Any, spy: list[dict[str, Any]]) -> None:
    model, direction, acts = setup
    result = lirefs.evaluate(
        model, "builtin-facts", direction=direction, alphas=(0.0, 2.0), controls=2,
        control_activations=acts, seed=5, reuse_prefix=False, **KW,
    )  # fmt: skip
    assert sorted(c["alpha"] for c in spy) == [0.0, 2.0, 2.0, 2.0, 2.0]  # real, 2 random, shuffled
    assert list(result.controls) == ["random-0", "random-1", "shuffled"]
    d_model = lirefs.model_info(model).d_model
    for i, want in enumerate(random_directions(d_model, 2, seed=5)):
        unit = want.to(torch.float64) / want.to(torch.float64).norm()
        assert torch.allclose(spy[2 + i]["unit"], unit, atol=1e-7)
    for control in result.controls.values():
        assert control.accuracy[0.0] == result.accuracy[0.0]
        assert control.gold_logprob[0.0] == result.gold_logprob[0.0]
    tests = result.vs_controls[2.0]["random-0"]
    want_diff = result.gold_logprob[2.0] - result.controls["random-0"].gold_logprob[2.0]
    assert tests["gold_logprob"].diff == pytest.approx(want_diff)
    names = [c["name"] for c in result.metadata["settings"]["controls"]]
    assert names == ["random-0", "random-1", "shuffled"]
    row = result.rows()[1]
    assert set(row["controls"]) == {"random-0", "random-1", "shuffled"}


def test_controls_resume_from_the_records_file(
    setup: Any, spy: list[dict[str, Any]], tmp_path: Path
) -> None:
    model, direction, _ = setup
    path = tmp_path / "records.jsonl"
    kw = {**KW, "alphas": (0.0, 2.0), "controls": 1, "records_path": path, "reuse_prefix": False}
    first = lirefs.evaluate(model, "builtin-facts", direction=direction, **kw)
    n = len(spy)
    again = lirefs.evaluate(model, "builtin-facts", direction=direction, **kw)
    assert len(spy) == n  # nothing generated twice
    assert again.controls["random-0"].gold_logprob == first.controls["random-0"].gold_logprob
    # a control record made with another vector (another seed or width) is not reused
    lines = path.read_text().splitlines()
    path.write_text("\n".join(x.replace('"control_hash": "', '"control_hash": "x') for x in lines))
    other = lirefs.evaluate(model, "builtin-facts", direction=direction, **kw)
    assert [c["alpha"] for c in spy[n:]] == [2.0]
    assert other.controls["random-0"].gold_logprob == first.controls["random-0"].gold_logprob


def test_controls_need_a_steered_direction(setup: Any) -> None:
    model, _, _ = setup
    with pytest.raises(DataError, match="controls"):
        lirefs.evaluate(model, "builtin-facts", alphas=(0.0,), controls=1, **KW)


def test_dose_response_plot_is_written(setup: Any, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    model, direction, _ = setup
    result = lirefs.evaluate(
        model, "builtin-facts", direction=direction, alphas=(0.0, 2.0), controls=1, **KW
    )
    path = result.plot_dose_response(tmp_path / "dose.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dose_response_plots_the_answer_outcome_with_gaps(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A benchmark that shows working plots the answer after the model's own working; an alpha
    where no output reached the answer phrase is a gap, not an error."""
    pytest.importorskip("matplotlib")
    from lirefs.evaluation import dose

    drawn: list[dict[float, float]] = []
    line = dose._line
    monkeypatch.setattr(
        dose, "_line", lambda ax, xs, v, *a, **k: (drawn.append(v), line(ax, xs, v, *a, **k))
    )
    acc = {0.0: 0.4, 0.1: 0.1, 0.15: 0.0}
    result = SimpleNamespace(
        alphas=[0.0, 0.1, 0.15], accuracy=acc, ci={a: (v, v) for a, v in acc.items()},
        outcome="answer_logprob", answer_logprob={0.0: -4.6, 0.1: -6.1},
        answer_logprob_ci={0.0: (-5.0, -4.2), 0.1: (-6.4, -5.8)}, gold_logprob={0.0: -9.0},
        controls={"random-0": SimpleNamespace(accuracy=acc, answer_logprob={0.0: -4.6, 0.1: -4.7},
                                              degenerate={})},
        degenerate={0.0: 0.0, 0.1: 0.04, 0.15: 1.0}, metadata={"settings": {"mode": "project"}},
        benchmark="builtin-ladder", n_items=3, layer=2,
    )  # fmt: skip
    path = dose.plot_dose_response(result, tmp_path / "dose.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.answer_logprob in drawn and result.gold_logprob not in drawn


class WorkingEngine(FullPromptEngine):
    """Scripted outputs (worked answers, one without the answer marker), real gold scoring."""

    OUTPUTS = (
        "2 + 2 = 4. The final answer is 4.\nQ: The final answer is 9.",
        "I am not sure about this one.",
    )

    def run(self, prompts: Any, plan: Any, **kw: Any) -> Any:
        texts = [self.OUTPUTS[i % 2] for i in range(len(prompts))]
        return SimpleNamespace(texts=texts, token_ids=[[1] * 9 for _ in texts])


def test_answer_logprob_equals_a_plain_forward_after_the_own_working(setup: Any) -> None:
    model, direction, _ = setup
    engine = WorkingEngine(model, batch_size=4)
    result = lirefs.evaluate(
        model, "builtin-arithmetic", direction=direction, alphas=(0.0, 2.0), limit=4,
        max_new_tokens=4, n_boot=50, batch_size=4, engine=engine,
    )  # fmt: skip
    hf, tok = model._module, model.tokenizer
    marker = "The final answer is"
    assert result.outcome == "answer_logprob"
    for alpha in (0.0, 2.0):
        recs = [r for r in result.records if r["alpha"] == alpha]
        assert all(r["answer_text"] == f" {r['gold']}." for r in recs)
        scored = [r for r in recs if r.get("answer_logprob") is not None]
        assert [r["output"] for r in scored] == [WorkingEngine.OUTPUTS[0]] * 2
        prefix = "2 + 2 = 4. The final answer is"  # the first marker, before the stop string
        want = reference_gold_logprobs(
            hf, tok, [r["prompt"] + prefix for r in scored], [r["answer_text"] for r in scored],
            vector=direction.vector(2) if alpha else None, alpha=alpha,
        )  # fmt: skip
        got = [r["answer_logprob"] for r in scored]
        assert got == pytest.approx(want, abs=1e-5, rel=1e-5)
        assert marker in prefix and result.answer_logprob[alpha] == pytest.approx(sum(got) / 2)
        # the outputs without the marker have no value, and are counted
        assert result.answer_logprob_missing[alpha] == 2 and result.answer_logprob_n[alpha] == 2
    paired = result.answer_logprob_paired[2.0]
    assert paired.n == 2
    assert paired.diff == pytest.approx(result.answer_logprob[2.0] - result.answer_logprob[0.0])
    assert paired.p_holm is not None
    back = result.rows()[1]
    assert back["answer_logprob_missing"] == 2 and back["answer_logprob_paired"]["n"] == 2


def test_short_answer_benchmarks_keep_the_gold_outcome(setup: Any) -> None:
    model, direction, _ = setup
    result = lirefs.evaluate(model, "builtin-facts", direction=direction, alphas=(0.0,), **KW)
    assert result.outcome == "gold_logprob" and result.gold_logprob and not result.answer_logprob
    assert all("answer_text" not in r for r in result.records)
