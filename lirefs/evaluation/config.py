"""``EvalConfig``: every setting of an evaluation run, checked once when it is made.

``lirefs.evaluate(model, benchmark, alphas=(0.0, 0.1), ...)`` builds one from its keywords;
``lirefs.evaluate(model, benchmark, config=EvalConfig(...))`` takes a ready one (the same run,
reusable and comparable). A bad value raises the package's own error with how to fix it when the
config is made, before any model or data is touched. What depends on the model, the benchmark or
the data (the direction's layer, the default length, whether a chat template thinks) is resolved
by the run into a :class:`RunFacts`; :meth:`EvalConfig.to_metadata` writes both into the JSON
settings of the result, and :meth:`EvalConfig.resume_key` is what must match for records to be
resumed.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_alpha
from ..errors import DataError, SteeringError
from ..steer import GENERATE_BATCH_SIZE, MODES
from .records import resume_key

__all__ = ["EvalConfig", "RunFacts", "check_alphas", "check_groups", "check_prompt_baselines"]


def check_alphas(alphas: float | Iterable[float]) -> tuple[float, ...]:
    """``alphas`` as a tuple of distinct finite floats (``-0.0`` becomes ``0.0``).

    Raises:
        DataError: not numbers, empty, not finite, or repeated.
    """
    given: list[Any]
    if isinstance(alphas, numbers.Real) and not isinstance(alphas, bool):
        given = [alphas]
    elif isinstance(alphas, str | bytes) or not isinstance(alphas, Iterable):
        raise DataError(f"alphas must be numbers, got {alphas!r}; e.g. alphas=(0.0, 0.1)")
    else:
        given = list(alphas)
    if not given:
        raise DataError("alphas is empty; pass at least one, e.g. alphas=(0.0, 0.1)")
    try:
        values = [check_alpha(a) for a in given]  # finite real numbers, -0.0 -> 0.0
    except SteeringError as exc:
        raise DataError(f"alphas must be finite numbers ({exc}); e.g. alphas=(0.0, 0.1)") from None
    repeats = sorted({a for a in values if values.count(a) > 1})
    if repeats:
        raise DataError(f"alphas {repeats} are given more than once; list each alpha once")
    return tuple(values)


def _distinct_texts(value: Any, name: str, example: str) -> tuple[str, ...]:
    """``value`` as a tuple of distinct non-blank strings (one string alone is one entry).

    Raises:
        DataError: not strings, blank, or repeated; the message names ``name`` and shows
            ``example`` (e.g. ``"groups=('steps-2',)"``).
    """
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise DataError(f"{name} must be texts, got {value!r}; e.g. {example}")
    out = tuple(value)
    bad = [t for t in out if not isinstance(t, str) or not t.strip()]
    if bad:
        raise DataError(f"{name} must be non-empty texts, got {bad!r}; e.g. {example}")
    repeats = sorted({t for t in out if out.count(t) > 1})
    if repeats:
        raise DataError(f"{name} {repeats} are given more than once; list each once")
    return out


def check_prompt_baselines(texts: Any) -> tuple[str, ...]:
    """``texts`` as a tuple of distinct non-blank strings (one text alone is one baseline).

    Raises:
        DataError: not strings, blank, or repeated.
    """
    return _distinct_texts(
        texts, "prompt_baselines", 'prompt_baselines=("Let\'s think step by step.",)'
    )


def check_groups(groups: Any) -> tuple[str, ...]:
    """``groups`` as a tuple of distinct non-blank group names (one name alone is one group).

    Raises:
        DataError: not strings, blank, or repeated.
    """
    return _distinct_texts(groups, "groups", "groups=('steps-2',)")


def _positive(value: Any, name: str, fix: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}; {fix}")
    return int(value)


@dataclass(frozen=True)
class EvalConfig:
    """Every setting of one ``lirefs.evaluate`` run (see ``evaluate`` for each one's meaning).

    Made once and checked in construction: ``alphas`` becomes a tuple of distinct finite floats,
    ``batch_size=None`` the default batch, and every bad value raises ``DataError`` with how to
    fix it. Frozen: a config can be shared between runs and compared.

    Example::

        cfg = lirefs.EvalConfig(direction="liref.safetensors", alphas=(0.0, 0.1), limit=50)
        result = lirefs.evaluate(model, "gsm8k", config=cfg)
    """

    direction: Any = None
    layer: int | None = None
    alphas: tuple[float, ...] = (0.0,)
    mode: str = "project"
    limit: int | None = None
    remote: bool | str | None = None
    batch_size: int | None = GENERATE_BATCH_SIZE
    max_new_tokens: int | None = None
    data_path: str | Path | None = None
    records_path: str | Path | None = None
    seed: int = 0
    n_boot: int = 2000
    progress: bool | None = None
    skip_bad_rows: bool = False
    chat_template: bool = False
    system_prompt: str | None = None
    thinking: bool | None = None
    controls: int = 0
    control_activations: tuple[Any, Any] | None = field(default=None, repr=False)
    gold_logprob: bool = True
    reuse_prefix: bool = True
    prompt_baselines: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        alphas = check_alphas(self.alphas)
        if self.mode not in MODES:
            raise DataError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        refused = [a for a in alphas if a != 0.0 and not MODES[self.mode].accepts(a)]
        if refused:
            raise DataError(
                f"mode {self.mode!r} takes {MODES[self.mode].accepted}, so alphas {refused} are "
                "ambiguous; alpha 0 is always the unsteered baseline"
            )
        limit = _positive(self.limit, "limit", "pass a number of items >= 1, or None for all")
        batch = _positive(self.batch_size, "batch_size", "e.g. batch_size=8")
        n_boot = _positive(self.n_boot, "n_boot", "e.g. n_boot=2000")
        new_tokens = _positive(self.max_new_tokens, "max_new_tokens", "e.g. max_new_tokens=200")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise DataError(f"seed must be an integer, got {self.seed!r}; e.g. seed=0")
        if self.system_prompt is not None and not self.chat_template:
            raise DataError(
                "system_prompt needs chat_template=True (--chat-template): the plain Q:/A: "
                "prompt has no system turn"
            )
        if self.thinking not in (None, True, False):
            raise DataError(f"thinking must be True, False or None, got {self.thinking!r}")
        c = self.controls
        if isinstance(c, bool) or not isinstance(c, int) or c < 0:
            raise DataError(f"controls must be an int >= 0, got {c!r}; e.g. controls=2")
        if (c or self.control_activations is not None) and (
            self.direction is None or not any(a != 0.0 for a in alphas)
        ):
            raise DataError(
                "controls compare the steered alphas of a direction with other directions; pass "
                "direction= and at least one alpha != 0, or controls=0"
            )
        pair = self.control_activations
        if pair is not None and (not isinstance(pair, tuple | list) or len(pair) != 2):
            raise DataError(
                "control_activations must be a pair (reasoning_acts, memory_acts), got "
                f"{type(pair).__name__}"
            )
        baselines = check_prompt_baselines(self.prompt_baselines)
        for name, value in (
            ("prompt_baselines", baselines),
            ("groups", check_groups(self.groups)),
            ("alphas", alphas),
            ("limit", limit),
            ("batch_size", batch or GENERATE_BATCH_SIZE),
            ("n_boot", n_boot or 2000),
            ("max_new_tokens", new_tokens),
            ("seed", int(self.seed)),
            ("controls", int(c)),
        ):
            object.__setattr__(self, name, value)

    @property
    def steered_alphas(self) -> tuple[float, ...]:
        """The alphas other than 0 (those that steer)."""
        return tuple(a for a in self.alphas if a != 0.0)

    def to_metadata(self, facts: RunFacts) -> dict[str, Any]:
        """The JSON-ready ``settings`` of the result: this config with what the run resolved."""
        items = facts.items
        sample = None
        if self.limit is not None:
            ids = "\x1f".join(i.id for i in items).encode()
            sample = {
                "method": "seeded random, stratified by group"
                + (" (the listed groups only)" if self.groups else ""),
                "seed": self.seed,
                "groups": facts.groups(),
                "ids_hash": hashlib.sha256(ids).hexdigest()[:16],
            }
        bench = facts.benchmark
        return {
            "alphas": list(self.alphas),
            "layer": facts.layer,
            "layer_source": facts.layer_source,
            "mode": self.mode,
            "max_new_tokens": facts.max_new_tokens,
            "stop": bench.stop,
            "limit": self.limit,
            "n_items": len(items),
            "groups": list(self.groups) or None,
            "sample": sample,
            "n_shots": bench.n_shots,
            "n_shots_reduced": sum(k < bench.n_shots for k in facts.shots_used),
            "context_length": facts.context_length,
            "chat_template": self.chat_template,
            "system_prompt": self.system_prompt,
            "thinking": facts.thinking,
            "prompt_format": facts.prompt_format,
            "chat": facts.chat,
            "format_warning": facts.format_warning,
            "shot_split": bench.shot_split,
            "batch_size": self.batch_size,
            "prefix_cache": facts.prefix_cache,
            "decoding": "greedy",
            "remote": facts.remote,
            "seed": self.seed,
            "n_boot": self.n_boot,
            "direction": facts.direction,
            "gold_logprob": bool(self.gold_logprob),
            "gold_text_example": bench.gold_text(items[0]) if items else None,
            "answer_marker": bench.answer_marker,
            "controls": list(facts.controls),
            "prompt_baselines": list(self.prompt_baselines),
        }

    def resume_key(self, facts: RunFacts) -> dict[str, Any]:
        """What must match for a records file to be resumed by this run (``records.resume_key``
        of :meth:`to_metadata`: layer, mode, length, batch, direction, shots, chat settings)."""
        return resume_key(self.to_metadata(facts))


@dataclass(frozen=True)
class RunFacts:
    """What a run resolved from the model, the benchmark and the data (for the metadata).

    Attributes:
        benchmark: the ``Benchmark``.
        items: the scored items, in run order.
        shots_used: exemplars per item (fewer when the prompt had to fit the context).
        context_length: the model's context (``None`` when unknown).
        layer: the direction's source layer (``None`` without a direction); ``layer_source`` why.
        max_new_tokens: the generation length used.
        thinking: whether outputs are read after a think block.
        prompt_format: plain or chat prompt format; ``chat``: the chat template summary.
        format_warning: the direction's prompt format differs from this run's (or ``None``).
        prefix_cache: the shared-prefix setting (``None``: not used).
        remote: ``False``, ``True`` or ``"local"``.
        direction: the direction summary (``None`` without one).
        controls: each control's name and recipe.
    """

    benchmark: Any
    items: Sequence[Any]
    shots_used: Sequence[int]
    context_length: int | None
    layer: int | None
    layer_source: str | None
    max_new_tokens: int
    thinking: bool
    prompt_format: str
    chat: dict[str, Any] | None
    format_warning: str | None
    prefix_cache: dict[str, Any] | None
    remote: bool | str
    direction: dict[str, Any] | None
    controls: Sequence[dict[str, Any]] = ()

    def groups(self) -> dict[str, int]:
        """Items per group (``"None"`` for ungrouped items), in first-seen order."""
        out: dict[str, int] = {}
        for item in self.items:
            out[str(item.group)] = out.get(str(item.group), 0) + 1
        return out
