"""Outcomes of an evaluation beyond accuracy: degeneration and the gold answer's log-probability.

Accuracy is a coarse read-out: at a floor (every answer wrong) or a ceiling it cannot move, and a
steered model that collapses into punctuation scores "wrong" exactly like one that answers a
fluent wrong number. Two per-item outcomes fill the gap:

* **Degeneration** (``is_degenerate`` / ``degeneration_reasons``): whether an output has collapsed
  into repetition or into a run of punctuation / whitespace, by a fixed, character-level rule
  (no tokenizer, no model) so the same text is flagged the same way for every model.
* **Gold-answer log-probability** (``gold_logprobs``): ``sum_k log p(g_k | prompt, g_<k)`` of the
  benchmark's gold continuation ``g`` under teacher forcing, with the same steering edit as the
  generation. It moves continuously, so it shows an effect that accuracy at 0/N cannot.

The degeneration rule
---------------------
Let ``s`` be the output with surrounding whitespace removed. The output is degenerate when at
least one of these holds (each is a *reason*, returned by ``degeneration_reasons``):

1. ``"symbol_run"``: the output as generated (trailing whitespace included: a model that emits
   newlines until the token limit has collapsed) contains a run of at least ``SYMBOL_RUN`` (12)
   consecutive characters of which none is a letter or a digit (punctuation, symbols, whitespace,
   in any mix), e.g. ``"!!!!!!!!!!!!"``, twelve newlines, or ``". . . . . . "``.
2. ``"repetition"``: some unit of 1 to ``MAX_UNIT`` (40) characters occurs at least ``MIN_REPEATS``
   (3) times back to back, and the repeated span is at least ``MIN_SPAN`` (8) characters long
   (``MIN_DIGIT_SPAN``, 12, when the span is only digits, so that a number such as
   ``"1000000000"`` is not a collapse) and covers at least ``MIN_COVER`` (40%) of ``s``, e.g.
   ``"9999999999999999"``, ``"S!S!S!S!S!S"``, ``"10: 20 20 20 20"`` or ``"Paris. Paris. Paris."``.
3. ``"low_diversity"``: ``s`` has at least ``MIN_WORDS`` (16) whitespace-separated words and at
   most ``MAX_DISTINCT`` (25%) of them are distinct (a loop whose copies differ slightly, which
   rule 2's exact back-to-back match misses).

An empty output is not degenerate (it is "no answer"), nor is whitespace shorter than rule 1's run. The thresholds sit far from fluent text:
no English sentence has 12 non-alphanumeric characters in a row, and a short answer ("42", "Paris")
never repeats a unit three times over 8 characters. They were set on real SmolLM2 outputs, collapsed
and fluent, from a 16-token evaluation (tests/data/degeneration.jsonl): with 16 new tokens a
collapse such as ``"...S!\n\nS!S!S!S!S!S"`` has room for only a few copies.

Gold-answer log-probability
---------------------------
For each item the gold text is tokenized ALONE, without special tokens, and its ids are appended
to the prompt's ids (the prompt tokenized as for generation, special tokens included). Rows are
left-padded with mask-derived position ids (``lirefs.batching``), so the gold tokens are the last
``len(g)`` columns of each row. One trace per batch runs the forward pass with
``logits_to_keep = max len(g) + 1`` (the LM head only covers the columns that predict gold tokens),
gathers the gold tokens' log-probabilities inside the trace and saves one float per row: a remote
run returns ``[b]`` floats, never logits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch

import tracers

from ..batching import DEFAULT_TOKEN_BUDGET, Batch, prompt_batches, tokenize
from ..checks import check_prompts, positive_int
from ..errors import DataError, SteeringError
from ..steer import SteeringPlan
from ..steer import plan as steer_plan
from ..steer.engine import Prompts
from ..tracing import Remote, batch_runner

__all__ = [
    "MAX_DISTINCT",
    "MAX_UNIT",
    "MIN_COVER",
    "MIN_DIGIT_SPAN",
    "MIN_REPEATS",
    "MIN_SPAN",
    "MIN_WORDS",
    "STEERING_KEYS",
    "SYMBOL_RUN",
    "GoldScorer",
    "NextTokenScorer",
    "degeneration_reasons",
    "gold_logprobs",
    "gold_token_ids",
    "is_degenerate",
    "next_token_logprobs",
    "steering_plan",
]

# ---------------------------------------------------------------------------------------------
# degeneration

#: Rule 1: shortest run of characters with no letter or digit that counts as collapse.
SYMBOL_RUN = 12
#: Rule 2: longest repeated unit, in characters.
MAX_UNIT = 40
#: Rule 2: fewest back-to-back copies of the unit.
MIN_REPEATS = 3
#: Rule 2: shortest repeated span, in characters.
MIN_SPAN = 8
#: Rule 2: shortest repeated span when it is only digits (a long number is not a collapse).
MIN_DIGIT_SPAN = 12
#: Rule 2: smallest share of the output the repeated span must cover.
MIN_COVER = 0.4
#: Rule 3: fewest words for the diversity test.
MIN_WORDS = 16
#: Rule 3: largest share of distinct words that still counts as a loop.
MAX_DISTINCT = 0.25

#: A run of characters that are neither letters nor digits ("_" counts as a symbol).
_SYMBOL_RUN_RE = re.compile(rf"[\W_]{{{SYMBOL_RUN},}}")
#: A unit of 1..MAX_UNIT characters followed by at least MIN_REPEATS - 1 copies of itself.
_REPEAT_RE = re.compile(rf"(.{{1,{MAX_UNIT}}}?)\1{{{MIN_REPEATS - 1},}}", re.DOTALL)


def _symbol_run(s: str) -> bool:
    return _SYMBOL_RUN_RE.search(s) is not None


def _repetition(s: str) -> bool:
    pos = 0
    while True:
        m = _REPEAT_RE.search(s, pos)
        if m is None:
            return False
        span = m.group(0)
        shortest = MIN_DIGIT_SPAN if span.isdigit() else MIN_SPAN
        if len(span) >= shortest and len(span) >= MIN_COVER * len(s):
            return True
        pos = m.start() + 1


def _low_diversity(s: str) -> bool:
    words = s.split()
    return len(words) >= MIN_WORDS and len(set(words)) <= MAX_DISTINCT * len(words)


def degeneration_reasons(output: str) -> list[str]:
    """Which collapse rules ``output`` meets (empty list: not degenerate).

    Args:
        output: a generated text (the generated part only, as ``GenerationOutput.texts``).

    Returns:
        A subset of ``["symbol_run", "repetition", "low_diversity"]``, in that order; the rules are
        defined in the module docstring.

    Raises:
        DataError: ``output`` is not a string.
    """
    if not isinstance(output, str):
        raise DataError(f"output must be a string, got {type(output).__name__}")
    reasons = []
    if _symbol_run(output):
        reasons.append("symbol_run")
    s = output.strip()
    if s and _repetition(s):
        reasons.append("repetition")
    if s and _low_diversity(s):
        reasons.append("low_diversity")
    return reasons


def is_degenerate(output: str) -> bool:
    """``True`` when ``output`` collapsed into repetition or a punctuation/whitespace run.

    See the module docstring for the exact rule; ``degeneration_reasons`` says which part fired.
    """
    return bool(degeneration_reasons(output))


# ---------------------------------------------------------------------------------------------
# steering inside a teacher-forced trace

#: Keys a ``steering`` mapping may hold: the steering arguments of ``lirefs.generate``.
STEERING_KEYS = ("direction", "layer", "alpha", "mode", "positions", "blocks")

Steering = Mapping[str, Any] | SteeringPlan | None


def steering_plan(model: Any, steering: Steering) -> SteeringPlan:
    """``steering`` (``None``, a ``SteeringPlan`` or ``lirefs.generate``'s steering arguments as a
    dict) as a ``SteeringPlan`` that edits every position of a teacher-forced pass.

    Raises:
        SteeringError: unknown keys, or positions other than ``"all"`` (under left padding the
            prompt/gold boundary differs per row, so "prompt only" has no single token mask).
        LayerError / DirectionError: as ``lirefs.steer.plan``.
    """
    if steering is None:
        return SteeringPlan.none(model)
    if isinstance(steering, SteeringPlan):
        found = steering
    elif isinstance(steering, Mapping):
        unknown = sorted(set(steering) - set(STEERING_KEYS))
        if unknown:
            raise SteeringError(f"steering has unknown keys {unknown}; allowed: {STEERING_KEYS}")
        found = steer_plan(
            model,
            steering.get("direction"),
            layer=steering.get("layer"),
            alpha=steering.get("alpha"),
            mode=steering.get("mode", "project"),
            positions=steering.get("positions", "all"),
            blocks=steering.get("blocks"),
        )
    else:
        raise SteeringError(
            f"steering must be None, a lirefs.steer.SteeringPlan or a dict of lirefs.generate's "
            f"steering arguments {STEERING_KEYS}, got {type(steering).__name__}"
        )
    return teacher_forced(found)


def teacher_forced(steering: SteeringPlan) -> SteeringPlan:
    """``steering`` if it edits every position, as a teacher-forced pass needs, else
    ``SteeringError`` (under left padding the prompt/gold boundary differs per row)."""
    if steering.positions != "all":
        raise SteeringError(
            f"gold_logprobs steers every position (positions='all'), got positions="
            f"{steering.positions!r}: under left padding the prompt/gold boundary differs per row"
        )
    return steering


# ---------------------------------------------------------------------------------------------
# gold-answer log-probability


def gold_token_ids(model: Any, gold_texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each gold text tokenized alone, without special tokens.

    Raises:
        DataError: a gold text is not a non-empty string, or tokenizes to no token.
    """
    if isinstance(gold_texts, str):
        raise DataError("gold_texts must be a list of strings, got a single string; wrap it")
    golds = list(gold_texts)
    bad = [i for i, g in enumerate(golds) if not isinstance(g, str) or not g]
    if bad:
        raise DataError(f"gold_texts must be non-empty strings; entries {bad[:5]} are not")
    ids = [list(x) for x in model.tokenizer(golds, add_special_tokens=False)["input_ids"]]
    empty = [i for i, x in enumerate(ids) if not x]
    if empty:
        raise DataError(f"gold_texts {empty[:5]} tokenize to no token; give visible text")
    return ids


def _batch_logprobs(
    model: Any,
    inputs: dict[str, torch.Tensor],
    targets: torch.Tensor,
    keep: torch.Tensor,
    edit: dict[str, Any],
    kwargs: dict[str, Any],
) -> torch.Tensor:
    """One trace: ``[b]`` float64 sums of the gold tokens' log-probabilities.

    ``targets`` ``[b, G]``: the last ``G`` token ids of each row; ``keep`` ``[b, G]`` (float64):
    1 where that column is a gold token of the row, 0 where it is a prompt or pad token. ``edit``:
    the plan's ``tracer_kwargs()``; ``kwargs``: the trace keywords of the run's ``Remote``.
    """
    g = int(targets.shape[1])
    # Bound before the block, assigned a saved value inside it (on NDIF only saved values
    # come back). Keep each statement of the trace body on one line.
    total: torch.Tensor | None = None
    # logits [b, G + 1, V] cover the last G + 1 columns; column j predicts targets[:, j]
    with torch.inference_mode(), model.trace(inputs, logits_to_keep=g + 1, **kwargs):
        if edit["unit"] is not None:
            tracers.apply_edit(model, step=None, **edit)
        logits = model.output.logits[:, :-1, :]
        logp = torch.log_softmax(logits.to(torch.float64), dim=-1)
        picked = logp.gather(-1, targets.to(logp.device).unsqueeze(-1)).squeeze(-1)
        total = (picked * keep.to(logp.device)).sum(dim=-1).save()  # type: ignore[attr-defined]
    if total is None:
        raise DataError("the log-probability trace returned nothing")
    return total.detach().to("cpu", torch.float64)


def _batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    return positive_int(batch_size, "batch_size", " (or None for a token budget)")


class GoldScorer:
    """Teacher-forced scoring of gold continuations: an ``Engine`` whose outputs are ``[n]``
    floats ``sum_k log p(g_k | prompt, g_<k)`` (it reads no budget and no stop strings).

    Args:
        model: an nnsight model from ``lirefs.load_model`` / ``lirefs.wrap``.
        gold_texts: ``[n]`` gold continuations, one per prompt of each ``run``, tokenized alone
            without special tokens and appended to the prompt's ids.
        remote: ``None`` (the model's own setting), ``False``, ``True``, ``"local"`` or a
            ``Remote``.
        batch_size: rows per trace; ``None`` fills batches up to ``token_budget`` padded tokens.
        token_budget: padded tokens per batch when ``batch_size`` is ``None``.
        progress: progress bar (default: when stderr is a terminal).
    """

    def __init__(
        self,
        model: Any,
        gold_texts: Sequence[str],
        *,
        remote: object = None,
        batch_size: int | None = None,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
        progress: bool | None = None,
    ) -> None:
        self.model = model
        self.golds = gold_token_ids(model, gold_texts)
        self.batch_size = _batch_size(batch_size)
        self.remote = Remote.of(model, remote)
        self.token_budget = token_budget
        self.progress = progress

    def run(
        self,
        prompts: Prompts,
        plan: SteeringPlan,
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> list[float]:
        """``[n]`` gold log-probabilities of ``prompts`` (texts) under ``plan``, in order."""
        model, golds = self.model, self.golds
        texts = check_prompts(cast("Sequence[str]", prompts))
        if len(golds) != len(texts):
            raise DataError(
                f"{len(texts)} prompts but {len(golds)} gold texts; pass one gold text per prompt"
            )
        edit = teacher_forced(plan).tracer_kwargs()
        ids = [p + g for p, g in zip(tokenize(model, texts), golds, strict=True)]
        out = [math.nan] * len(texts)

        def trace(batch: Batch, inputs: dict[str, torch.Tensor], kw: dict[str, Any]) -> Any:
            lengths = [len(golds[i]) for i in batch.index]
            g = max(lengths)
            targets = batch.inputs["input_ids"][:, -g:]  # gold tokens are the last columns
            cols = torch.arange(g)[None, :]
            keep = (cols >= g - torch.tensor(lengths)[:, None]).to(torch.float64)  # [b, g]
            return _batch_logprobs(model, inputs, targets, keep, edit, kw)

        batches = prompt_batches(
            model, texts, self.batch_size, token_ids=ids, token_budget=self.token_budget
        )
        with batch_runner(model, self.remote, "gold log-prob", len(texts), self.progress) as run:
            for batch, sums in run.each(batches, trace, "a log-probability batch of {b}"):
                if sums.shape != (len(batch.index),):
                    raise DataError(
                        f"the log-probability trace returned shape {tuple(sums.shape)} for "
                        f"{len(batch.index)} rows"
                    )
                for r, i in enumerate(batch.index):
                    out[i] = float(sums[r])
        return out


def gold_logprobs(
    model: Any,
    prompts: Sequence[str],
    gold_texts: Sequence[str],
    *,
    steering: Steering = None,
    remote: object = None,
    batch_size: int | None = None,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    progress: bool | None = None,
) -> list[float]:
    """Teacher-forced ``sum_k log p(g_k | prompt, g_<k)`` of each gold text, optionally steered.

    Args:
        model: an nnsight model from ``lirefs.load_model`` / ``lirefs.wrap``.
        prompts: ``[n]`` prompts exactly as they enter the model for generation.
        gold_texts: ``[n]`` gold continuations (e.g. ``" The final answer is 42."``), tokenized
            alone without special tokens and appended to the prompt's ids.
        steering: ``None`` (no edit), a ``lirefs.steer.SteeringPlan`` (the one steering value),
            or ``lirefs.generate``'s steering arguments as a dict: ``{"direction": liref,
            "layer": 22, "alpha": 0.1, "mode": "project"}`` (keys ``STEERING_KEYS``);
            ``positions`` must be ``"all"``. The same edit as generation (``tracers.apply_edit``)
            applies at every position of the single forward pass.
        remote: ``False``, ``True`` (NDIF), ``"local"``, or ``None`` for the model's own setting.
        batch_size: rows per trace; ``None`` fills batches up to ``token_budget`` padded tokens.
        token_budget: padded tokens per batch when ``batch_size`` is ``None``.
        progress: progress bar (default: when stderr is a terminal).

    Returns:
        ``[n]`` floats (natural log, ``<= 0``), in the caller's order.

    Raises:
        DataError: empty or mismatched ``prompts`` / ``gold_texts``, a gold text with no tokens,
            a bad ``batch_size``.
        SteeringError / LayerError / DirectionError: invalid ``steering``.
    """
    prompts = check_prompts(prompts)
    scorer = GoldScorer(
        model,
        gold_texts,
        remote=remote,
        batch_size=batch_size,
        token_budget=token_budget,
        progress=progress,
    )
    if len(scorer.golds) != len(prompts):
        raise DataError(
            f"{len(prompts)} prompts but {len(scorer.golds)} gold texts; pass one gold text per "
            "prompt"
        )
    plan = steering_plan(model, steering)
    return scorer.run(prompts, plan)


def _batch_next_token(
    model: Any, inputs: dict[str, torch.Tensor], edit: dict[str, Any], kwargs: dict[str, Any]
) -> torch.Tensor:
    """One trace: ``[b, vocab]`` float32 next-token log-probabilities after the last column."""
    logp: torch.Tensor | None = None
    with torch.inference_mode(), model.trace(inputs, logits_to_keep=1, **kwargs):
        if edit["unit"] is not None:
            tracers.apply_edit(model, step=None, **edit)
        logits = model.output.logits[:, -1, :]
        logp = torch.log_softmax(logits.to(torch.float32), dim=-1).save()  # type: ignore[attr-defined]
    if logp is None:
        raise DataError("the next-token trace returned nothing")
    return logp.detach().to("cpu", torch.float32)


class NextTokenScorer:
    """Teacher-forced next-token distributions: an ``Engine`` whose outputs are ``[n, vocab]``
    float32 log-probabilities of the token after each prompt (no budget, no stop strings).

    ``remote`` and ``batch_size`` mean what they mean in ``GoldScorer``; no progress bar.
    """

    def __init__(self, model: Any, *, remote: object = None, batch_size: int | None = None) -> None:
        self.model = model
        self.remote = Remote.of(model, remote)
        self.batch_size = batch_size

    def run(
        self,
        prompts: Prompts,
        plan: SteeringPlan,
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> torch.Tensor:
        """``[n, vocab]`` next-token log-probabilities of ``prompts`` (texts) under ``plan``."""
        model = self.model
        texts = check_prompts(cast("Sequence[str]", prompts))
        edit = teacher_forced(plan).tracer_kwargs()
        rows: list[torch.Tensor | None] = [None] * len(texts)

        def trace(batch: Batch, inputs: dict[str, torch.Tensor], kw: dict[str, Any]) -> Any:
            return _batch_next_token(model, inputs, edit, kw)

        batches = prompt_batches(model, texts, self.batch_size)
        with batch_runner(model, self.remote, "next-token", len(texts), False) as run:
            for batch, logp in run.each(batches, trace, "a next-token batch of {b}"):
                for r, i in enumerate(batch.index):
                    rows[i] = logp[r]
        return torch.stack([cast(torch.Tensor, r) for r in rows])


def next_token_logprobs(
    model: Any,
    prompts: Sequence[str],
    *,
    steering: Steering = None,
    remote: object = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Log-probabilities of the token after each prompt, optionally steered: ``[n, vocab]`` float32.

    Used for the damage filter of the causal layer choice: the KL divergence between the steered
    and the unsteered next-token distribution on neutral prompts. ``steering`` means what it means
    in ``gold_logprobs`` (a ``SteeringPlan`` or the dict). A remote run returns ``n x vocab``
    floats, so keep ``prompts`` few.
    """
    prompts = check_prompts(prompts)
    plan = steering_plan(model, steering)
    scorer = NextTokenScorer(model, remote=remote, batch_size=batch_size)
    return scorer.run(prompts, plan)
