"""What an evaluation run resolves before it generates: direction, items, prompts, prefix cache.

:func:`make_plan` turns an :class:`~.config.EvalConfig`, a model and a benchmark into a
:class:`RunPlan`: the direction and its source layer (:func:`resolve_direction`), the controls, the
(sampled, :func:`stratified_order`) items with their prompts (plain ``Q:/A:`` text or chat turns,
:func:`chat_renderer`; fewer exemplars where a prompt would not fit the context,
:func:`fit_prompts`), the shared-prefix token ids and the run's metadata
(``EvalConfig.to_metadata``). ``run.evaluate`` then only loops over it.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import DataError, DirectionError, LayerError
from ..reading import CHAT_FORMAT, PLAIN_FORMAT, warn_read_mismatch
from ..steer import GENERATE_BATCH_SIZE
from ..store import make_metadata
from ..tracing import Remote
from .config import EvalConfig, RunFacts
from .controls import ControlDirection, control_directions
from .engines import EvalEngine, FullPromptEngine
from .prefix import (
    MIN_SHARED_TOKENS,
    PrefixEngine,
    attention_window,
    prefix_unsupported,
    shared_prefix_length,
)
from .records import baseline_label
from .tasks import Benchmark, BenchmarkData, Item
from .tasks.extract import THINK_CLOSE, THINK_OPEN

__all__ = [
    "LAYER_FROM_DIRECTION",
    "LAYER_FROM_USER",
    "RunPlan",
    "chat_renderer",
    "exemplar_segments",
    "fit_prompts",
    "make_plan",
    "resolve_direction",
    "stratified_order",
]

LAYER_FROM_DIRECTION = "chosen on the direction's held-out split"
LAYER_FROM_USER = "given by the user"


# ---------------------------------------------------------------------------------------------
# checks


def resolve_direction(
    direction: Any, layer: int | None, alphas: list[float], model_dict: dict[str, Any]
) -> tuple[Any, int | None, str | None, dict[str, Any] | None]:
    """``(Direction or None, layer, why that layer, summary for the metadata)``."""
    from ..direction import Direction

    steered = [a for a in alphas if a != 0.0]
    if direction is None:
        if steered:
            raise DirectionError(
                f"alphas {steered} steer along a direction, but no direction was given; pass "
                "direction= (--direction FILE) or use alphas=(0.0,)"
            )
        if layer is not None:
            raise LayerError(
                f"layer={layer} was given without a direction; a layer only picks the "
                "direction's source layer, so pass direction= as well"
            )
        return None, None, None, None
    path: str | None = None
    if isinstance(direction, str | Path):
        path = str(direction)
        direction = Direction.load(direction, model=model_dict)
    elif isinstance(direction, Direction):
        direction.check_model(model_dict)
    else:
        raise DirectionError(
            f"direction must be a lirefs.Direction or the path of a saved one, got "
            f"{type(direction).__name__}"
        )
    settings = direction.metadata.get("settings") or {}
    if layer is None and direction.chosen_layer is None:
        raise LayerError(
            "the direction records no chosen layer (settings.best_layer); pass layer= "
            "(--layer N), e.g. the best layer of `lirefs report`"
        )
    source = LAYER_FROM_USER if layer is not None else LAYER_FROM_DIRECTION
    layer = direction.resolve_layer(layer)
    unit = direction.unit(layer)  # refuses an all-zero direction
    data = direction.metadata.get("data") or {}
    summary = {
        "path": path,
        "model": (direction.metadata.get("model") or {}).get("name"),
        "fingerprint": (direction.metadata.get("model") or {}).get("fingerprint"),
        "data_hash": data.get("hash"),
        "n_reasoning": direction.n_reasoning,
        "n_memory": direction.n_memory,
        "best_layer": settings.get("best_layer"),
        "prompt_format": settings.get("prompt_format"),
        "unit_hash": hashlib.sha256(unit.numpy().tobytes()).hexdigest()[:16],
    }
    return direction, int(layer), source, summary


# ---------------------------------------------------------------------------------------------
# prompts: plain or chat turns, sample, context


def stratified_order(items: Sequence[Item], seed: int) -> list[int]:
    """A seeded order of ``range(len(items))`` whose every prefix is stratified by group.

    Each group (MMLU-Pro category, C-Eval subject, built-in template; ``None`` for ungrouped
    benchmarks) is shuffled; its ``r``-th item gets the key ``(r + u) / group size`` with one
    uniform ``u`` per item, and items are sorted by key (systematic stratified sampling), except
    that every group's first item comes before any group's second: any first ``N >= number of
    groups`` holds every group, and beyond that each group in proportion to its size (within one
    item). The same seed gives the same order, and a larger ``N`` extends a smaller one's sample.
    With groups of equal size (or none) the first items come first anyway: the order is the
    plain systematic one.
    """
    rng = random.Random(seed)
    groups: dict[str | None, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.group, []).append(i)
    keyed = []
    for group in sorted(groups, key=lambda g: (g is None, str(g))):
        members = groups[group]
        rng.shuffle(members)
        for rank, index in enumerate(members):
            keyed.append((rank > 0, (rank + rng.random()) / len(members), index))
    return [index for _, _, index in sorted(keyed)]


def _sample(name: str, data: BenchmarkData, cfg: EvalConfig) -> list[int]:
    """Indices of the items the run scores: the seeded stratified order cut at ``cfg.limit``
    (every item in dataset order without one), restricted to ``cfg.groups`` when given."""
    order = stratified_order(data.items, cfg.seed) if cfg.limit else list(range(len(data.items)))
    if cfg.groups:
        wanted = _known_groups(name, data, cfg)
        order = [i for i in order if data.items[i].group in wanted]
    return order[: cfg.limit]


def _known_groups(name: str, data: BenchmarkData, cfg: EvalConfig) -> set[str]:
    """``cfg.groups``, each checked to be a group of the benchmark's items.

    Raises:
        DataError: the benchmark has no groups, or a name is not one of them.
    """
    known = sorted({str(item.group) for item in data.items if item.group is not None})
    if not known:
        raise DataError(f"{name} has no groups; leave groups out (--group) to score every item")
    unknown = [g for g in cfg.groups if g not in known]
    if unknown:
        raise DataError(
            f"{name} has no group {', '.join(map(repr, unknown))}; its groups: {', '.join(known)}"
        )
    return set(cfg.groups)


def chat_renderer(
    model: Any, system_prompt: str | None, thinking: bool | None
) -> tuple[Any, bool, dict[str, Any]]:
    """``(render(parts) -> prompt text, thinking, format summary)`` for chat-template prompts."""
    tok = getattr(model, "tokenizer", None)
    template = getattr(tok, "chat_template", None)
    name = getattr(tok, "name_or_path", None) or type(tok).__name__
    if tok is None or not template:
        raise DataError(
            f"chat_template=True, but the tokenizer of {name!r} has no chat template; use a chat "
            "(instruct) model, or drop chat_template (--chat-template) for the paper's Q:/A: prompts"
        )
    source = template if isinstance(template, str) else str(template)
    if thinking is None:
        thinking = THINK_OPEN in source or THINK_CLOSE in source
    extra = {"enable_thinking": bool(thinking)} if "enable_thinking" in source else {}
    bos = getattr(tok, "bos_token", None)
    try:
        adds_bos = bool(bos) and tok("x").input_ids[:1] == [tok.bos_token_id]
    except Exception:  # a tokenizer that cannot be called this way: keep the text as rendered
        adds_bos = False

    def render(messages: list[dict[str, str]]) -> str:
        try:
            text = tok.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True, **extra
            )
        except Exception as exc:  # jinja raises several types for templates it cannot render
            raise DataError(
                f"the chat template of {name!r} cannot render the few-shot turns ({exc}); drop "
                "--chat-template, or pass a model whose template takes user/assistant turns"
            ) from None
        if not isinstance(text, str):
            raise DataError(f"apply_chat_template of {name!r} returned {type(text).__name__}")
        # the tokenizer adds its BOS itself when generate tokenizes: do not send it twice
        return text[len(bos) :] if adds_bos and bos and text.startswith(bos) else text

    summary = {"tokenizer": name, "template_hash": hashlib.sha256(source.encode()).hexdigest()[:16]}
    return render, bool(thinking), summary


def context_length(model: Any) -> int | None:
    config = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def fit_prompts(
    model: Any,
    data: BenchmarkData,
    items: Sequence[Item],
    render: Any,
    new_tokens: int,
) -> tuple[list[str], list[int], int | None]:
    """Prompts that fit the model's context with ``new_tokens`` to spare: an item whose prompt is
    too long gets fewer exemplars (never a cut question). ``(prompts, shots used, context)``.

    Raises:
        DataError: an item that does not fit even without exemplars.
    """
    prompts = [render(data.parts(item)) for item in items]
    shots = [len(data.parts(item).shots) for item in items]
    n_ctx = context_length(model)
    if n_ctx is None or not items or not callable(getattr(model, "tokenizer", None)):
        return prompts, shots, n_ctx
    from ..batching import token_lengths

    lengths = token_lengths(model, prompts)
    cut = 0
    for i, item in enumerate(items):
        k = shots[i]
        while lengths[i] + new_tokens > n_ctx and k > 0:
            k -= 1
            prompts[i] = render(data.parts(item, k))
            lengths[i] = token_lengths(model, [prompts[i]])[0]
        if lengths[i] + new_tokens > n_ctx:
            raise DataError(
                f"item {item.id!r} of {data.benchmark.name} needs {lengths[i]} prompt tokens + "
                f"{new_tokens} new tokens without any exemplar, more than the model's context of "
                f"{n_ctx}; lower max_new_tokens (--max-new-tokens) or use a longer-context model"
            )
        cut += k < shots[i]
        shots[i] = k
    if cut:
        warnings.warn(
            f"{cut} of {len(items)} {data.benchmark.name} prompts were longer than the model's "
            f"context of {n_ctx} tokens with {new_tokens} new tokens: they use fewer exemplars "
            f"(as few as {min(shots)}); the question itself is never cut (records: n_shots)",
            UserWarning,
            stacklevel=4,
        )
    return prompts, shots, n_ctx


# ---------------------------------------------------------------------------------------------
# the plan of one run


@dataclass
class RunPlan:
    """Everything a run resolved before generating (see :func:`make_plan`).

    Attributes:
        bench, data: the benchmark and its loaded data.
        order: the scored items' indices in ``data.items``, in run order; ``items`` the items.
        prompts: one prompt per scored item.
        facts: what the run resolved (layer, length, thinking, ...) for the metadata.
        liref: the ``Direction`` (``None`` without one); ``control_list`` the controls.
        metadata: the run's metadata (header of the records file, ``result.metadata``).
        token_ids: every prompt's ids when the shared-prefix cache is used, else ``None``;
            ``shared_len`` the shortest shared prefix length.
        segments: ``(lo, hi)`` position ranges whose prompts share their exemplars (one per
            exemplar set, in run order; items are ordered so each set is contiguous); batches
            never cross a segment, so each batch has one shared prefix.
        engine: what runs the model (:mod:`.engines`): a ``PrefixEngine`` over ``token_ids``
            when the prefix cache is used, else a ``FullPromptEngine`` over ``prompts`` (or the
            engine given to ``evaluate``); the loop calls only its interface.
    """

    bench: Benchmark
    data: BenchmarkData
    order: list[int]
    items: list[Item]
    prompts: list[str]
    facts: RunFacts
    liref: Any
    control_list: list[ControlDirection]
    metadata: dict[str, Any]
    token_ids: list[list[int]] | None = None
    shared_len: int = 0
    engine: Any = None
    baselines: dict[str, tuple[str, list[str], list[int]]] = field(default_factory=dict)
    segments: list[tuple[int, int]] = field(default_factory=list)

    def batches(self, size: int) -> list[tuple[int, int]]:
        """``(lo, hi)`` position ranges of at most ``size`` items, none crossing a segment."""
        segments = self.segments or [(0, len(self.items))]
        return [(lo, min(hi, lo + size)) for a, hi in segments for lo in range(a, hi, size)]

    def prompts_of(self, run: str | None) -> list[str]:
        """The prompts of a run: a prompt baseline's own (``baselines``), else ``prompts``."""
        return self.baselines[run][1] if run in self.baselines else self.prompts

    def shots_of(self, run: str | None) -> list[int]:
        """Exemplars per position of a run's prompts."""
        return self.baselines[run][2] if run in self.baselines else list(self.facts.shots_used)

    def inputs(self, lo: int, hi: int, run: str | None = None) -> list[str] | list[list[int]]:
        """The engine's prompts of positions ``lo..hi-1`` of ``run``: token ids with the prefix
        cache (the ``PrefixEngine`` reads ids), else the prompt texts."""
        if run in self.baselines:
            return self.encode(self.baselines[run][1][lo:hi])
        if self.token_ids is not None:
            return list(self.token_ids[lo:hi])
        return list(self.prompts[lo:hi])

    def encode(self, texts: list[str]) -> list[str] | list[list[int]]:
        """Other prompts (e.g. prompt + generated text) in the form the engine takes: token ids
        with the prefix cache (they start with the same shared prefix), else the texts."""
        if self.token_ids is None:
            return list(texts)
        from ..batching import tokenize

        return tokenize(self.engine.model, texts)

    @property
    def runs(self) -> list[tuple[str | None, Any, list[float]]]:
        """``(run name or None, vector, alphas)``: the real direction at every alpha, then each
        control at the steered alphas (alpha 0 is the identity for every direction), then each
        prompt baseline, unsteered (``None``, alpha 0)."""
        alphas = list(self.metadata["settings"]["alphas"])
        out: list[tuple[str | None, Any, list[float]]] = [(None, self.liref, alphas)]
        steered = [a for a in alphas if a != 0.0]
        out += [(c.name, c.vector, steered) for c in self.control_list]
        return out + [(label, None, [0.0]) for label in self.baselines]


def _renderer(model: Any, cfg: EvalConfig) -> tuple[Any, bool, dict[str, Any] | None]:
    """``(render(parts) -> prompt, thinking, chat summary)`` of the config's prompt format."""
    if cfg.chat_template:
        to_text, thinking, chat_summary = chat_renderer(model, cfg.system_prompt, cfg.thinking)
        return (lambda parts: to_text(parts.messages(cfg.system_prompt))), thinking, chat_summary
    return (lambda parts: parts.text()), bool(cfg.thinking), None


def make_plan(
    model: Any, bench: Benchmark, cfg: EvalConfig, engine: EvalEngine | None = None
) -> RunPlan:
    """Resolve the direction, controls, items, prompts, prefix cache and engine; build the
    metadata. ``engine``: one given to ``evaluate`` (it runs the full prompt texts, no prefix
    cache); ``None`` picks ``PrefixEngine`` or ``FullPromptEngine``."""
    remote = Remote.of(model, cfg.remote)
    render, thinking, chat_summary = _renderer(model, cfg)
    default_tokens = bench.thinking_max_new_tokens if thinking else bench.max_new_tokens
    new_tokens = cfg.max_new_tokens or default_tokens

    from ..models import model_info

    info = model_info(model).to_dict()
    liref, layer, layer_source, direction_summary = resolve_direction(
        cfg.direction, cfg.layer, list(cfg.alphas), info
    )
    control_list: list[ControlDirection] = []
    if cfg.controls or cfg.control_activations is not None:
        control_list = control_directions(
            int(info["d_model"]),
            cfg.controls,
            seed=cfg.seed,
            activations=cfg.control_activations,
            layer=layer,
        )
    data: BenchmarkData = bench.load(cfg.data_path, skip_bad_rows=cfg.skip_bad_rows)
    order = _sample(bench.name, data, cfg)
    items = [data.items[i] for i in order]
    prompts, shots_used, n_ctx = fit_prompts(model, data, items, render, new_tokens)
    baselines = {}
    for text in cfg.prompt_baselines:
        # the text ends the item's own question (before "\nA:", or the user turn); the
        # exemplars are left as they are
        asked = [replace(item, question=f"{item.question} {text}") for item in items]
        b_prompts, b_shots, _ = fit_prompts(model, data, asked, render, new_tokens)
        baselines[baseline_label(text)] = (text, b_prompts, b_shots)
    perm, segments = _run_order(data, items, shots_used, int(cfg.batch_size or GENERATE_BATCH_SIZE))
    order, items, prompts = (
        [order[i] for i in perm],
        [items[i] for i in perm],
        [prompts[i] for i in perm],
    )
    shots_used = [shots_used[i] for i in perm]
    baselines = {
        k: (t, [bp[i] for i in perm], [bs[i] for i in perm]) for k, (t, bp, bs) in baselines.items()
    }
    prompt_format = CHAT_FORMAT if cfg.chat_template else PLAIN_FORMAT
    # A ReadMismatchWarning (a UserWarning): the direction's prompt format differs from this run's.
    format_warning = warn_read_mismatch(
        {"prompt_format": (direction_summary or {}).get("prompt_format")},
        prompt_format=prompt_format,
        stacklevel=3,
    )
    if engine is None:
        others = [b[1] for b in baselines.values()]
        token_ids, prefixes, prefix_setting = _prefix(
            model, cfg, remote, (prompts, others, segments),
            lambda: _reach(model, bench, items, new_tokens),
        )  # fmt: skip
        shared_len = min((len(p) for p in prefixes), default=0)
        if token_ids is not None:
            engine = PrefixEngine(model, prefixes)
        else:
            engine = FullPromptEngine(
                model, remote=remote, batch_size=int(cfg.batch_size or GENERATE_BATCH_SIZE)
            )
    else:
        token_ids, shared_len, prefix_setting = None, 0, None
    facts = RunFacts(
        benchmark=bench,
        items=items,
        shots_used=shots_used,
        context_length=n_ctx,
        layer=layer,
        layer_source=layer_source,
        max_new_tokens=new_tokens,
        thinking=thinking,
        prompt_format=prompt_format,
        chat=chat_summary,
        format_warning=format_warning,
        prefix_cache=prefix_setting,
        remote=remote.setting,
        direction=direction_summary,
        controls=[{"name": c.name, **c.recipe} for c in control_list],
    )
    metadata = make_metadata(
        "evaluation",
        model=info,
        data={
            "benchmark": bench.name,
            "hash": data.hash(),
            "source": data.source,
            "n_total": len(data.items),
            "skipped_rows": data.skipped,
            "kind": bench.kind,
        },
        settings=cfg.to_metadata(facts),
    )
    return RunPlan(
        bench, data, order, items, prompts, facts, liref, control_list, metadata,
        token_ids, shared_len, engine, baselines, segments,
    )  # fmt: skip


def exemplar_segments(
    data: BenchmarkData, items: Sequence[Item], shots_used: Sequence[int]
) -> tuple[list[int], list[tuple[int, int]]]:
    """``(perm, segments)``: a stable order of ``items`` that puts the items with the same
    exemplars (group, when the benchmark's exemplars are per group, and number of exemplars used)
    next to each other, in order of first appearance, and the ``(lo, hi)`` position range of each
    such set in that order. One set (most benchmarks) keeps the order as it is."""
    grouped = data.benchmark.grouped
    keys = [(item.group if grouped else None, k) for item, k in zip(items, shots_used, strict=True)]
    first: dict[Any, int] = {}
    for key in keys:
        first.setdefault(key, len(first))
    perm = sorted(range(len(items)), key=lambda i: first[keys[i]])
    segments: list[tuple[int, int]] = []
    lo = 0
    for pos in range(1, len(perm) + 1):
        if pos == len(perm) or keys[perm[pos]] != keys[perm[lo]]:
            segments.append((lo, pos))
            lo = pos
    return perm, segments


def _run_order(
    data: BenchmarkData, items: Sequence[Item], shots_used: Sequence[int], batch_size: int
) -> tuple[list[int], list[tuple[int, int]]]:
    """``exemplar_segments`` when the exemplar sets hold at least half a batch on average (each
    batch then shares one prefix); else the sampled order as one segment, since per-set batches
    of one or two items cost more decoding steps than a shared prefix saves."""
    perm, segments = exemplar_segments(data, items, shots_used)
    if len(items) < len(segments) * batch_size / 2:
        return list(range(len(items))), [(0, len(items))]
    return perm, segments


#: Tokens allowed for re-tokenizing an output with the prompt (the answer outcome scores
#: ``prompt + own working`` as one text), on top of the generation length and the gold tokens.
RETOKENIZE_SLACK = 8


def _reach(model: Any, bench: Benchmark, items: Sequence[Item], new_tokens: int) -> int:
    """Tokens a run can add after an item's prompt: the generated tokens plus the longest scored
    gold continuation (gold text, or the answer after the model's own working) plus
    ``RETOKENIZE_SLACK``; what a windowed model's prefix cache must fit."""
    from .outcomes import gold_token_ids

    texts = [bench.gold_text(item) for item in items]
    texts += [t for t in (bench.answer_text(item) for item in items) if t]
    gold = max((len(ids) for ids in gold_token_ids(model, texts)), default=0)
    return int(new_tokens) + gold + RETOKENIZE_SLACK


def _prefix(
    model: Any,
    cfg: EvalConfig,
    remote: Remote,
    texts: tuple[list[str], list[list[str]], list[tuple[int, int]]],
    reach: Callable[[], int],
) -> tuple[list[list[int]] | None, list[list[int]], dict[str, Any] | None]:
    """``(token ids, one shared prefix per segment, metadata setting)`` of the prefix cache.

    ``texts`` is ``(prompts, others, segments)``: each segment's prefix is the longest common
    prefix of its prompts and of the same positions' prompts in ``others`` (the prompt baselines,
    which share the exemplars); no cache when any segment shares fewer than ``MIN_SHARED_TOKENS``
    tokens. ``reach()``: tokens a row can add after its prompt (``_reach``), asked only for a model
    whose attention has a window: the cache serves it only when the longest prompt plus that fits.
    """
    prompts, others, segments = texts
    if not cfg.reuse_prefix or not remote.local:
        return None, [], None
    if not prompts or not callable(getattr(model, "tokenizer", None)):
        return None, [], None
    from ..batching import tokenize

    token_ids = tokenize(model, prompts)
    other_ids = [tokenize(model, texts) for texts in others]
    # the prefix cache is a speed path only: a model it cannot serve runs the full prompts,
    # and the metadata says why
    window = attention_window(model)
    longest = None
    if window is not None:
        longest = max(len(row) for ids in (token_ids, *other_ids) for row in ids) + reach()
        skipped = prefix_unsupported(model, longest)
        if skipped is not None:
            return None, [], {"shared_tokens": None, "skipped": skipped}
    prefixes = []
    for lo, hi in segments or [(0, len(prompts))]:
        rows = token_ids[lo:hi] + [row for ids in other_ids for row in ids[lo:hi]]
        n = shared_prefix_length(rows)
        if n < MIN_SHARED_TOKENS:
            return None, [], None
        prefixes.append(rows[0][:n])
    setting: dict[str, Any] = {"shared_tokens": min(len(p) for p in prefixes)}
    if len(prefixes) > 1:
        setting["prefixes"] = len(prefixes)
    if window is not None:  # every sequence fits the window: the cache is exact
        setting["window"] = {"positions": window[0], "longest": longest}
    return token_ids, prefixes, setting
