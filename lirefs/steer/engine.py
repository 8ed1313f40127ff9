"""The engine interface: what every way of running a model under a ``SteeringPlan`` provides.

An engine takes prompts (texts or token-id lists), one ``SteeringPlan``, a token budget and stop
strings, and returns its outputs. The implementations:

* ``lirefs.steer.NnsightEngine``: the plain nnsight generation loop (``GenerationOutput``);
* ``lirefs.evaluation.prefix.PrefixEngine``: generation from a shared few-shot prefix's KV cache
  (``GenerationOutput``, token for token the same as the plain loop);
* ``lirefs.evaluation.outcomes.TeacherForcing``: teacher-forced scoring, whose outputs are
  log-probabilities (the gold continuations' sums, or next-token distributions); it reads no
  budget and no stop strings.

Another backend (e.g. vLLM) is one more class with this ``run`` method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from .plan import SteeringPlan

__all__ = ["Engine", "Prompts"]

#: Prompts as texts (exactly as they enter the model) or as token-id lists (special tokens in).
Prompts = Sequence[str] | Sequence[Sequence[int]]

OutputT_co = TypeVar("OutputT_co", covariant=True)


@runtime_checkable
class Engine(Protocol[OutputT_co]):
    """Runs prompts under one steering plan and returns the outputs, one per prompt, in order."""

    def run(
        self,
        prompts: Prompts,
        plan: SteeringPlan,
        *,
        max_new_tokens: int = ...,
        stop: Sequence[str] | None = None,
    ) -> OutputT_co:
        """Outputs of ``prompts`` under ``plan`` (``max_new_tokens``: the budget of new tokens;
        ``stop``: strings that end a row)."""
        ...
