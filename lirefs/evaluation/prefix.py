"""The few-shot prefix computed once per steering setting: its KV cache serves every batch.

A k-shot prompt is ``exemplars + question``; the exemplars (about 750 of the ~790 tokens of
``builtin-arithmetic``) are the same for every item. Steering edits each position on its own
(``x + alpha (x·r̂) r̂`` in paper mode, ``x + alpha r̂`` in add mode), so the steered prefix's keys
and values do not depend on what follows: they are computed once per setting (alpha, mode,
direction), on the prefix alone (batch 1, no padding), under the same edit, and every batch then
runs only its questions and the generated tokens.

Each batch row is laid out as ``[prefix, pad ..., suffix_i]``: the padding sits BETWEEN the shared
prefix and the row's own tokens, the attention mask is 0 on it, and position ids count real tokens
only (``mask.cumsum - 1``, as HF ``generate`` derives them and ``lirefs.batching.pad_left`` does),
so each suffix token sees the positions and the context it has in the un-cached, left-padded run.
Outputs are token-identical up to floating-point rounding between the two batch shapes
(``tests/evaluation/test_prefix.py`` checks tiny models; the benchmark checks SmolLM2).

The shared prefix is found on token ids (the longest common prefix of the tokenized prompts), so a
tokenizer that merges across the exemplar/question boundary cannot make it differ from the full
prompt's tokens. Local models only: a remote run keeps the plain path (one request per batch).

Models whose layers attend to a window of positions (Gemma-2/3's sliding window, chunked
attention) count that padding inside the window, where the left-padded prompt has it outside. When
every sequence of the run (the longest prompt, the generated tokens and the scored gold tokens)
fits in the window, the window covers all positions on both layouts and the two paths see the same
context, so the cache serves them too (:func:`attention_window`, :func:`prefix_unsupported`); a
batch that would reach past the window is refused, never run on the wrong context.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from ..batching import input_device, pad_id
from ..errors import DataError
from ..inputs import check_stop
from ..steer import GenerationOutput, SteeringPlan, eos_ids, steered, trim_row
from ..steer.engine import Prompts
from .outcomes import Steering, gold_token_ids, steering_plan

__all__ = [
    "MIN_SHARED_TOKENS",
    "PrefixEngine",
    "SharedPrefix",
    "attention_window",
    "cache_supported",
    "prefix_generate",
    "prefix_gold_logprobs",
    "prefix_unsupported",
    "shared_prefix",
    "shared_prefix_length",
]

#: A shared prefix shorter than this is not worth a separate pass: the plain path runs instead.
MIN_SHARED_TOKENS = 16


def shared_prefix_length(token_ids: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix of ``token_ids``, leaving each row at least one token.

    Args:
        token_ids: ``[n]`` token-id lists (special tokens included, as the model sees them).

    Returns:
        ``P`` with ``ids[:P]`` equal for every row and ``P < len(ids)`` for every row (``generate``
        needs one token of its own per row); 0 for no rows.
    """
    if not token_ids:
        return 0
    first = token_ids[0]
    limit = min(len(x) for x in token_ids) - 1
    p = 0
    while p < limit and all(x[p] == first[p] for x in token_ids):
        p += 1
    return max(p, 0)


def cache_supported(cache: Any, window: int | None = None) -> bool:
    """Whether a prefix ``cache`` can be copied per batch: a transformers ``Cache`` whose layers
    all keep every position: plain dynamic layers, and sliding-window layers only where the
    run's sequences fit their ``window`` (they drop positions only beyond it)."""
    from transformers.cache_utils import Cache, DynamicLayer, DynamicSlidingWindowLayer

    kinds: tuple[type, ...] = (DynamicLayer,) if window is None else (
        DynamicLayer, DynamicSlidingWindowLayer
    )  # fmt: skip
    layers = list(getattr(cache, "layers", None) or [])
    return (
        isinstance(cache, Cache)
        and bool(layers)
        and all(type(layer) in kinds for layer in layers)  # exact types, no other subclasses
    )


def attention_window(model: Any) -> tuple[int, str] | None:
    """``(positions, what)`` of the smallest attention window of ``model``'s layers, or ``None``
    when every layer attends to all positions (``what`` names the setting, for messages).

    Sliding-window or chunked attention (Gemma-2/3, Cohere2, OLMo-3, Llama-4): a query sees at
    most ``positions`` positions (ending with its own), or only those of its own chunk.
    """
    config = getattr(model, "config", None)
    types = [str(t) for t in getattr(config, "layer_types", None) or []]
    windowed = sorted({t for t in types if t != "full_attention"})
    if not types and getattr(config, "use_sliding_window", True) is False:
        return None
    if types and not windowed:
        return None
    sizes = [
        (int(getattr(config, name)), name)
        for name in ("sliding_window", "attention_chunk_size")
        if getattr(config, name, None)
    ]
    if sizes:
        size, name = min(sizes)
        what = f"its {' and '.join(windowed)} layers' {name}" if windowed else f"its {name}"
        return size, what
    if windowed:  # windowed layers of unknown size: never assume they fit
        return 0, f"its {' and '.join(windowed)} layers' window"
    return None


def prefix_unsupported(model: Any, longest: int | None = None) -> str | None:
    """Why the shared-prefix cache cannot stand in for full prompts on ``model`` (``None``: it can).

    Layers that attend to a window of positions (sliding-window or chunked attention, e.g.
    Gemma-2/3, Cohere2, OLMo-3) count the padding laid between the cached prefix and each
    question inside their window, where the left-padded full prompt has it outside. When the
    run's ``longest`` sequence (prompt, generated and scored tokens, in tokens) fits in the window,
    every query sees every position on both layouts and the cache is exact; otherwise (or with
    ``longest`` unknown) such models take the full-prompt path, and ``evaluate`` records the
    reason in ``metadata["settings"]["prefix_cache"]["skipped"]``.
    """
    window = attention_window(model)
    if window is None:
        return None
    size, what = window
    if longest is not None and 0 < longest <= size:
        return None
    reach = (
        f"the run's sequences reach {longest} tokens" if longest else "the run's length is unknown"
    )
    return f"{what} is {size} positions and {reach}: the padding would fall inside the window"


@contextmanager
def _quiet() -> Iterator[None]:
    """As in ``lirefs.steer``: the steered copy's open ``all()`` loop ends every pass by asking
    for a step the pass does not make, which nnsight reports as a harmless warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*was never reached.*")
        yield


def _cache_field() -> str:
    """The name of the KV cache on a causal-LM output: ``cache`` (transformers 5), or
    ``past_key_values`` where the output class still declares only that. Reading the old name
    where ``cache`` exists logs a deprecation warning on every run and stops working when
    transformers drops the alias."""
    import dataclasses

    from transformers.modeling_outputs import CausalLMOutputWithPast

    names = {f.name for f in dataclasses.fields(CausalLMOutputWithPast)}
    return "cache" if "cache" in names else "past_key_values"


@dataclass
class SharedPrefix:
    """The shared prefix of a run under one steering setting; its cache is made on first use.

    Attributes:
        model: what the passes run on: the model itself (no edit) or its steered copy.
        ids: ``[P]`` token ids of the prefix.
        cache: the prefix's KV cache for batch 1 (``None`` until ``ensure`` runs it).
        window: the model's attention window (``attention_window``), ``None`` when it has none:
            every pass must then fit in it (``check_fits``).
    """

    model: Any
    ids: list[int]
    cache: Any = field(default=None, repr=False)
    window: int | None = None

    def check_fits(self, length: int) -> None:
        """Refuse a pass whose sequences reach ``length`` tokens beyond the attention window.

        Raises:
            DataError: ``length`` exceeds ``window`` (the cached layout would see another
                context than the full prompt).
        """
        if self.window is not None and length > self.window:
            raise DataError(
                f"a batch reaches {length} tokens, beyond the model's attention window of "
                f"{self.window}: the cached prefix would see another context than the full "
                "prompt; pass reuse_prefix=False (--no-prefix-cache)"
            )

    def ensure(self) -> None:
        """Run the (steered) prefix once, batch 1, no padding, and keep its cache.

        Raises:
            DataError: the model returns no cache that can be reused (then pass
                ``reuse_prefix=False``).
        """
        if self.cache is not None:
            return
        model = self.model
        ids = torch.tensor([self.ids], dtype=torch.long, device=input_device(model))
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        kv: Any = None
        name = _cache_field()  # decided here: the trace body holds only what travels
        with _quiet(), torch.inference_mode(), model.trace(inputs, use_cache=True):
            kv = getattr(model.output, name).save()
        if not cache_supported(kv, self.window) or kv.get_seq_length() != len(self.ids):
            raise DataError(
                f"the model returned a {type(kv).__name__} for the shared prompt prefix, not a "
                "full-length transformers cache; pass reuse_prefix=False (--no-prefix-cache)"
            )
        self.cache = kv

    def expanded(self, rows: int) -> Any:
        """A fresh copy of the prefix cache for ``rows`` batch rows (each pass appends to it)."""
        self.ensure()
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(rows)
        return cache


@contextmanager
def shared_prefix(model: Any, ids: Sequence[int], steering: Steering) -> Iterator[SharedPrefix]:
    """A ``SharedPrefix`` of ``ids`` under ``steering``; a steered copy is dropped on exit.

    Args:
        model: an nnsight model from ``lirefs.load_model`` (local).
        ids: ``[P]`` prefix token ids.
        steering: ``None`` (no edit), a ``SteeringPlan``, or ``{"direction", "layer", "alpha",
            "mode"}`` as ``lirefs.generate`` takes them; every position is edited.
    """
    plan = steering_plan(model, steering)
    found = attention_window(model)
    window = None if found is None else found[0]
    if not plan.edits:
        yield SharedPrefix(model, list(ids), window=window)
        return
    with steered(model, plan=plan) as edited:
        yield SharedPrefix(edited, list(ids), window=window)


class PrefixEngine:
    """Generation from a shared prompt prefix's KV cache: an ``Engine`` (``lirefs.steer``) whose
    outputs are ``GenerationOutput``, token for token those of ``NnsightEngine``.

    The prefix runs once per plan (batch 1, under the plan's edit) and its cache serves every
    ``run`` with that plan; a run with another plan drops it and builds that plan's. Close the
    engine (``with PrefixEngine(...) as engine:``) to drop the last steered copy. Local models
    only, prompts as token-id lists that each start with one of the known prefixes.

    Benchmarks whose exemplars differ by group (the ladder's rungs, MMLU-Pro's categories) have
    one prefix per group: each batch uses the longest known prefix all its rows start with (the
    evaluation plan keeps a batch within one group), and only the current prefix's cache is held,
    so memory stays that of one prefix.

    Args:
        model: an nnsight model from ``lirefs.load_model`` (local).
        prefix_ids: ``[P]`` token ids every prompt starts with (``shared_prefix_length``), or a
            list of such prefixes, one per group of prompts.
    """

    def __init__(self, model: Any, prefix_ids: Sequence[int] | Sequence[Sequence[int]]) -> None:
        self.model = model
        given: list[Any] = list(prefix_ids)
        nested = bool(given) and not isinstance(given[0], int)
        prefixes = [[int(t) for t in p] for p in given] if nested else [[int(t) for t in given]]
        if not prefixes or any(not p for p in prefixes):
            raise DataError("PrefixEngine needs at least one non-empty prefix of token ids")
        #: The known prefixes, longest first (a batch takes the longest its rows all start with).
        self.prefixes = sorted(prefixes, key=len, reverse=True)
        self.prefix_ids = prefixes[0]
        self._held = ExitStack()
        self._plan: SteeringPlan | None = None
        self._shared: SharedPrefix | None = None

    def prefix_of(self, rows: Sequence[Sequence[int]]) -> list[int]:
        """The longest known prefix that every row starts with and goes beyond.

        Raises:
            DataError: no known prefix is shared by all ``rows``.
        """
        for prefix in self.prefixes:
            p = len(prefix)
            if all(len(r) > p and list(r[:p]) == prefix for r in rows):
                return prefix
        raise DataError(
            "a batch's prompts do not all start with one of the shared prefixes; keep each batch "
            "within one group of prompts, or pass reuse_prefix=False (--no-prefix-cache)"
        )

    def shared(
        self, plan: SteeringPlan, rows: Sequence[Sequence[int]] | None = None
    ) -> SharedPrefix:
        """The ``SharedPrefix`` of ``plan`` for ``rows`` (default: the first prefix), made on
        first use; a new plan drops the held one (and its steered copy), a new prefix under the
        same plan reuses the steered model and drops only the old prefix's cache."""
        ids = self.prefix_ids if rows is None else self.prefix_of(rows)
        if self._shared is None or self._plan is not plan:
            self.close()
            self._shared = self._held.enter_context(shared_prefix(self.model, ids, plan))
            self._plan = plan
        elif self._shared.ids != ids:
            self._shared = SharedPrefix(self._shared.model, list(ids), window=self._shared.window)
        return self._shared

    def run(
        self,
        prompts: Prompts,
        plan: SteeringPlan,
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] | None = None,
    ) -> GenerationOutput:
        """Greedy generations of ``prompts`` (token-id lists) from the cache under ``plan``."""
        rows = [[int(t) for t in row] for row in prompts]
        return prefix_generate(
            self.shared(plan, rows), rows, max_new_tokens=max_new_tokens, stop=check_stop(stop)
        )

    def gold_logprobs(
        self, prompts: Prompts, plan: SteeringPlan, gold_texts: Sequence[str]
    ) -> list[float]:
        """Teacher-forced gold log-probabilities of ``prompts`` (token-id lists) from the cache
        (``prefix_gold_logprobs``)."""
        rows = [[int(t) for t in row] for row in prompts]
        return prefix_gold_logprobs(self.shared(plan, rows), rows, gold_texts)

    def close(self) -> None:
        """Drop the held prefix (and its steered copy)."""
        self._held.close()
        self._held = ExitStack()
        self._plan, self._shared = None, None

    def __enter__(self) -> PrefixEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _layout(
    shared: SharedPrefix, rows: Sequence[Sequence[int]], pad: int
) -> dict[str, torch.Tensor]:
    """``[prefix, pad ..., suffix_i]`` inputs, each ``[b, P + S]``, padding between the parts."""
    p = len(shared.ids)
    suffixes = [list(x[p:]) for x in rows]
    if any(list(x[:p]) != shared.ids or not s for x, s in zip(rows, suffixes, strict=True)):
        raise DataError("a prompt does not start with the shared prefix, or has nothing after it")
    width = max(len(s) for s in suffixes)
    input_ids = torch.full((len(rows), p + width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), p + width), dtype=torch.long)
    input_ids[:, :p] = torch.tensor(shared.ids, dtype=torch.long)
    mask[:, :p] = 1
    for r, s in enumerate(suffixes):
        input_ids[r, p + width - len(s) :] = torch.tensor(s, dtype=torch.long)
        mask[r, p + width - len(s) :] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": input_ids, "attention_mask": mask, "position_ids": position_ids}


def prefix_generate(
    shared: SharedPrefix,
    token_ids: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop: Sequence[str] | None = None,
) -> GenerationOutput:
    """Greedy generation of one batch from the shared prefix's cache.

    Args:
        shared: the run's ``SharedPrefix`` (its steering applies to every pass).
        token_ids: ``[b]`` full prompt token ids, each starting with ``shared.ids``.
        max_new_tokens: generation length limit.
        stop: strings that end a row (HF ``stop_strings``; rows are cut as ``lirefs.generate``
            cuts them).

    Returns:
        ``GenerationOutput`` with ``texts`` / ``token_ids`` of the generated tokens only, as
        ``lirefs.generate`` returns them (``prompts`` are left empty strings: the caller has them).
    """
    model = shared.model
    tok = model.tokenizer
    stops = list(stop or [])
    inputs = _layout(shared, token_ids, pad_id(model))
    shared.check_fits(int(inputs["input_ids"].shape[1]) + int(max_new_tokens))
    device = input_device(model)
    inputs = {k: v.to(device) for k, v in inputs.items()}
    cache = shared.expanded(len(token_ids))
    gen_kwargs: dict[str, Any] = {
        "max_new_tokens": int(max_new_tokens),
        "do_sample": False,
        "pad_token_id": pad_id(model),
        "cache": cache,
    }
    if stops:
        gen_kwargs.update(stop_strings=stops, tokenizer=tok)
    tokens: Any = None
    with _quiet(), torch.inference_mode(), model.generate(**gen_kwargs) as tr:
        with tr.invoke(inputs):
            pass
        with tr.invoke():
            tokens = tr.result.save()  # type: ignore[attr-defined]
    width = int(inputs["input_ids"].shape[1])
    out = tokens.detach().to("cpu")
    eos = eos_ids(model)
    rows = [trim_row(row[width:], eos, stops, tok) for row in out]
    ids = [r[0] for r in rows]
    return GenerationOutput(
        prompts=[""] * len(ids),
        texts=tok.batch_decode(ids, skip_special_tokens=True),
        token_ids=ids,
        stopped=[r[1] for r in rows],
        settings={"prefix_tokens": len(shared.ids), "max_new_tokens": int(max_new_tokens)},
    )


def prefix_gold_logprobs(
    shared: SharedPrefix, token_ids: Sequence[Sequence[int]], gold_texts: Sequence[str]
) -> list[float]:
    """``sum_k log p(g_k | prompt, g_<k)`` per row, teacher-forced from the shared prefix's cache.

    The same quantity as ``outcomes.gold_logprobs`` (gold text tokenized alone, appended to the
    prompt's ids), under the prefix's steering, in one pass over the rows' own tokens.

    Args:
        shared: the run's ``SharedPrefix``.
        token_ids: ``[b]`` full prompt token ids, each starting with ``shared.ids``.
        gold_texts: ``[b]`` gold continuations.

    Returns:
        ``[b]`` floats (natural log, ``<= 0``).
    """
    model = shared.model
    golds = gold_token_ids(model, gold_texts)
    rows = [list(x) + g for x, g in zip(token_ids, golds, strict=True)]
    inputs = _layout(shared, rows, pad_id(model))
    shared.check_fits(int(inputs["input_ids"].shape[1]))
    g = max(len(x) for x in golds)
    targets = inputs["input_ids"][:, -g:]  # [b, g]; rows are right-aligned, gold tokens last
    lengths = torch.tensor([len(x) for x in golds])
    keep = (torch.arange(g)[None, :] >= g - lengths[:, None]).to(torch.float64)  # [b, g]
    p = len(shared.ids)
    device = input_device(model)
    # the cache holds the prefix: feed the rest, with the full-length mask and matching positions
    feed = {
        "input_ids": inputs["input_ids"][:, p:].to(device),
        "attention_mask": inputs["attention_mask"].to(device),
        "position_ids": inputs["position_ids"][:, p:].to(device),
    }
    cache = shared.expanded(len(rows))
    total: Any = None
    with _quiet(), torch.inference_mode(), model.trace(feed, cache=cache, logits_to_keep=g + 1):
        logits = model.output.logits[:, :-1, :]
        logp = torch.log_softmax(logits.to(torch.float64), dim=-1)
        picked = logp.gather(-1, targets.to(logp.device).unsqueeze(-1)).squeeze(-1)
        total = (picked * keep.to(logp.device)).sum(dim=-1).save()  # type: ignore[attr-defined]
    return [float(x) for x in total.detach().to("cpu", torch.float64)]
