"""The engines an evaluation run calls: one interface whatever runs the model.

An evaluation engine is a ``lirefs.steer.Engine`` (``run(prompts, plan, max_new_tokens=, stop=)``
returning outputs with ``.texts`` and ``.token_ids``) that also scores teacher-forced gold
continuations under the same plan (``gold_logprobs(prompts, plan, gold_texts)``). ``evaluate``
picks one per run and its loop calls only these two methods:

* :class:`~.prefix.PrefixEngine` when the prompts share a few-shot prefix worth caching (local
  models; the prompts are then token-id lists);
* :class:`FullPromptEngine` otherwise: ``NnsightEngine`` for generation and ``GoldScorer`` for the
  gold outcome over the full prompt texts (local, ``remote="local"`` or NDIF).

``evaluate(..., engine=...)`` takes any object with these two methods (another backend, or a
scripted engine in tests); it is given the prompt texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ..steer import GENERATE_BATCH_SIZE, GenerationOutput, NnsightEngine, SteeringPlan
from ..steer.engine import Prompts
from .outcomes import GoldScorer

__all__ = ["EvalEngine", "FullPromptEngine"]


@runtime_checkable
class EvalEngine(Protocol):
    """What ``evaluate`` needs of an engine: greedy generation and teacher-forced gold scoring,
    both under one ``SteeringPlan``, one output per prompt, in order."""

    def run(
        self,
        prompts: Prompts,
        plan: SteeringPlan,
        *,
        max_new_tokens: int = ...,
        stop: Sequence[str] | None = None,
    ) -> Any:
        """Greedy generations (``.texts``: ``[b]`` str, ``.token_ids``: ``[b]`` generated ids)."""
        ...

    def gold_logprobs(
        self, prompts: Prompts, plan: SteeringPlan, gold_texts: Sequence[str]
    ) -> list[float]:
        """``[b]`` sums ``sum_k log p(g_k | prompt, g_<k)`` of each gold text after its prompt."""
        ...


class FullPromptEngine:
    """Generation (``NnsightEngine``) and gold scoring (``GoldScorer``) over full prompt texts.

    Args:
        model: an nnsight model from ``lirefs.load_model`` / ``lirefs.wrap``.
        remote: ``None`` (the model's own setting), ``False``, ``True``, ``"local"`` or a
            ``Remote``.
        batch_size: rows per generate call and per scoring trace.
    """

    def __init__(
        self, model: Any, *, remote: object = None, batch_size: int = GENERATE_BATCH_SIZE
    ) -> None:
        self.model = model
        self.generator = NnsightEngine(model, remote=remote, batch_size=batch_size, progress=False)
        self.remote = self.generator.remote
        self.batch_size = self.generator.batch_size

    def run(
        self,
        prompts: Prompts,
        plan: SteeringPlan,
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] | None = None,
    ) -> GenerationOutput:
        """Greedy generations of ``prompts`` under ``plan`` (``NnsightEngine.run``)."""
        return self.generator.run(prompts, plan, max_new_tokens=max_new_tokens, stop=stop)

    def gold_logprobs(
        self, prompts: Prompts, plan: SteeringPlan, gold_texts: Sequence[str]
    ) -> list[float]:
        """Teacher-forced gold log-probabilities (``GoldScorer``) of prompt texts under ``plan``."""
        scorer = GoldScorer(
            self.model, gold_texts, remote=self.remote, batch_size=len(prompts), progress=False
        )
        return scorer.run(prompts, plan)

    def close(self) -> None:
        """Nothing to drop (the interface of ``PrefixEngine``)."""

    def __enter__(self) -> FullPromptEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
