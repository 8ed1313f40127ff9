"""``evaluate``: benchmark accuracy under steering, one pass per alpha (docs/method.md, "Evaluation").

``evaluate(model, "gsm8k", direction=liref, alphas=(0.0, 0.1))`` builds every item's k-shot prompt,
generates greedily with ``lirefs.generate`` once per alpha and batch, extracts each answer with the
benchmark's strict rule (no answer = wrong, never a guess) and reports per alpha:

* ``accuracy[alpha]`` and ``ci[alpha]``: the 95% percentile bootstrap interval over items (the exact
  Clopper-Pearson interval when every item has the same outcome: the bootstrap has no spread then);
* ``no_answer_rate[alpha]``: the share of outputs with no extractable answer;
* ``paired[alpha]`` (when 0 is among the alphas): the accuracy difference against alpha = 0 with a
  paired bootstrap interval (the same resampled items for both) and McNemar's exact p-value;
* ``gold_logprob[alpha]``: the mean over items of ``log p(gold_text | prompt)`` under the same
  steering as the generation (:mod:`.outcomes`), with its interval and the paired difference
  against alpha 0; ``degenerate[alpha]``: the share of collapsed outputs;
* ``controls``: with ``controls=n`` every steered alpha is rerun along ``n`` seeded random unit
  directions (and, with ``control_activations``, a shuffled-label direction), each an
  ``EvalResult`` that reuses the alpha-0 records (alpha 0 is the identity for every direction),
  and ``vs_controls[alpha][name]`` holds the paired real-minus-control tests (:mod:`.compare`).

With ``records_path`` each finished batch is appended to a JSONL file (:mod:`.records`); a rerun
with the same model, data and settings reuses those records and generates only what is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import warnings
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

from ..console import progress_bar
from ..errors import DataError, DirectionError, LayerError
from ..ndif import resolve_remote
from ..reading import CHAT_FORMAT, PLAIN_FORMAT, warn_read_mismatch
from ..steer import GENERATE_BATCH_SIZE, StopStringWarning, warn_unmatched_stops
from ..store import dump_jsonl_line, lock, make_metadata
from .compare import compare_to_control
from .config import EvalConfig, RunFacts
from .controls import ControlDirection, control_directions
from .prefix import (
    MIN_SHARED_TOKENS,
    SharedPrefix,
    prefix_generate,
    prefix_gold_logprobs,
    prefix_unsupported,
    shared_prefix,
    shared_prefix_length,
)
from .records import Record, resume
from .result import EvalResult
from .scoring import score_output
from .summary import adjust_holm, summarise
from .tasks import Benchmark, BenchmarkData, Item, get_benchmark
from .tasks.base import continuation
from .tasks.extract import THINK_CLOSE, THINK_OPEN

__all__ = [
    "LAYER_FROM_DIRECTION",
    "LAYER_FROM_USER",
    "PLAIN_FORMAT",
    "EvalConfig",
    "evaluate",
    "stratified_order",
]

LAYER_FROM_DIRECTION = "chosen on the direction's held-out split"
LAYER_FROM_USER = "given by the user"


# ---------------------------------------------------------------------------------------------
# checks


def _resolve_direction(
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
    if layer is not None:
        source = LAYER_FROM_USER
    elif direction.chosen_layer is not None:
        layer, source = direction.chosen_layer, LAYER_FROM_DIRECTION
    else:
        raise LayerError(
            "the direction records no chosen layer (settings.best_layer); pass layer= "
            "(--layer N), e.g. the best layer of `lirefs report`"
        )
    unit = direction.unit(layer)  # validates the range and refuses an all-zero direction
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


def _chat_renderer(
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


def _context_length(model: Any) -> int | None:
    config = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _fit_prompts(
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
    n_ctx = _context_length(model)
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
# evaluate


def evaluate(
    model: Any,
    benchmark: str | Benchmark,
    *,
    direction: Any = None,
    layer: int | None = None,
    alphas: float | Iterable[float] = (0.0,),
    mode: str = "project",
    limit: int | None = None,
    remote: bool | str | None = None,
    batch_size: int | None = GENERATE_BATCH_SIZE,
    max_new_tokens: int | None = None,
    data_path: str | Path | None = None,
    records_path: str | Path | None = None,
    seed: int = 0,
    n_boot: int = 2000,
    progress: bool | None = None,
    skip_bad_rows: bool = False,
    chat_template: bool = False,
    system_prompt: str | None = None,
    thinking: bool | None = None,
    controls: int = 0,
    control_activations: tuple[Any, Any] | None = None,
    gold_logprob: bool = True,
    reuse_prefix: bool = True,
    config: EvalConfig | None = None,
) -> EvalResult:
    """Accuracy of ``model`` on ``benchmark`` for each steering strength in ``alphas``.

    The keywords build an :class:`~lirefs.EvalConfig` (checked once, before anything runs);
    ``config=`` passes a ready one instead (the other keywords must then be left out):
    ``lirefs.evaluate(model, "gsm8k", config=lirefs.EvalConfig(alphas=(0.0, 0.1), ...))``.

    Args:
        model: an nnsight model from ``lirefs.load_model``.
        benchmark: a name from ``lirefs.benchmarks()`` or a ``Benchmark``.
        direction: a ``lirefs.Direction`` or the path of a saved one; needed for any alpha != 0.
        layer: source layer of the direction. Default: the layer the direction records as chosen
            on its held-out split (``metadata["settings"]["best_layer"]``); an error if it has none.
        alphas: steering strengths; 0 is the unsteered baseline (generated without any edit).
        mode: as in ``lirefs.generate``: ``"project"`` (paper: ``x + alpha (x·r̂) r̂`` at every
            layer), ``"project-calibrated"``, ``"add"`` or ``"ablate"`` (alphas then must be 0
            and/or -1: -1 = ablated, since ``generate`` ignores alpha in that mode).
        limit: score a seeded random sample of ``limit`` items, stratified by group (MMLU-Pro
            category, C-Eval subject, template); the same ``seed`` gives the same items and a
            larger limit extends a smaller one's sample. ``None``: every item, dataset order.
        remote: ``False``, ``True`` (NDIF) or ``"local"``; ``None`` (default): what the model was
            loaded with (``load_model(remote=...)``).
        batch_size: prompts per ``generate`` call.
        max_new_tokens: generation length (default: the benchmark's, 200 for the paper's sets).
        data_path: local file or folder with the benchmark's columns instead of the Hub.
        records_path: JSONL to append records to after each batch; an existing file made with
            the same model, data and settings is resumed.
        seed: seed of the ``limit`` sample and of the bootstrap resampling.
        n_boot: bootstrap resamples.
        progress: progress bar per alpha (default: when stderr is a terminal).
        skip_bad_rows: leave malformed data rows out (listed in the metadata) instead of failing.
        chat_template: write each k-shot prompt as the model's chat turns (each exemplar a user
            and an assistant turn, lm-eval's multi-turn few-shot convention) through the
            tokenizer's chat template, instead of the paper's plain ``Q: ...\\nA: `` text.
        system_prompt: a system turn before the exemplars (needs ``chat_template``).
        thinking: the model writes a think block before its answer: the answer is read after
            ``</think>``, an unclosed think block is no answer, records keep the thinking apart,
            and the default length is the benchmark's thinking budget. ``None``: detected from
            the chat template (a template with a think block).
        controls: rerun every steered alpha along this many seeded random unit directions
            (``seed``; control ``i`` is the same vector for the same seed and width), with the
            same mode, layer and items; alpha 0 is reused. Results in ``result.controls``.
        control_activations: ``(reasoning_acts, memory_acts)`` ``[n, L + 1, d_model]`` (e.g. the
            direction's train half): adds a ``"shuffled"`` control, the difference of means at
            the same layer after permuting the class labels.
        gold_logprob: score ``log p(gold_text | prompt)`` per item under each steering (one
            teacher-forced forward per batch); ``False`` skips it.
        reuse_prefix: compute the few-shot prefix the prompts share (its KV cache, under each
            alpha's steering) once per alpha and run only each item's own tokens per batch
            (:mod:`.prefix`; local models only, a remote run always takes the plain path).
            ``False`` runs every full prompt per batch, as before.
        config: every setting above as one ``EvalConfig``; exclusive with the keywords.

    Returns:
        An ``EvalResult``: per alpha (and per group, when the items have groups) accuracy with
        exact intervals, paired tests against alpha 0 with raw and Holm-adjusted p-values, and
        the records.

    Raises:
        DataError: unknown benchmark, bad data, bad ``alphas``/``limit``/``batch_size``, or
            ``config`` given together with other keywords.
        DirectionError: an alpha != 0 without a direction, or a direction for another model.
        LayerError: no layer given and none recorded in the direction, or out of range.
        MetadataMismatchError: ``records_path`` belongs to another model, data set or settings.

    Warns:
        StopStringWarning: the benchmark's stop string occurred in none of the run's outputs
            while some ran to ``max_new_tokens`` (the records keep the whole texts).
        UserWarning: prompts longer than the context use fewer exemplars.
    """
    given = {
        "direction": direction,
        "layer": layer,
        "alphas": alphas,
        "mode": mode,
        "limit": limit,
        "remote": remote,
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "data_path": data_path,
        "records_path": records_path,
        "seed": seed,
        "n_boot": n_boot,
        "progress": progress,
        "skip_bad_rows": skip_bad_rows,
        "chat_template": chat_template,
        "system_prompt": system_prompt,
        "thinking": thinking,
        "controls": controls,
        "control_activations": control_activations,
        "gold_logprob": gold_logprob,
        "reuse_prefix": reuse_prefix,
    }
    cfg = _config(config, given)
    bench = get_benchmark(benchmark)
    plan = _plan(model, bench, cfg)
    done = _generate(model, plan, cfg)
    return _assemble(plan, cfg, done)


def _config(config: EvalConfig | None, given: dict[str, Any]) -> EvalConfig:
    """``config``, or the ``EvalConfig`` of the keywords ``given``; never both."""
    if config is None:
        return EvalConfig(**given)
    if not isinstance(config, EvalConfig):
        raise DataError(f"config must be a lirefs.EvalConfig, got {type(config).__name__}")
    defaults = {f.name: f.default for f in fields(EvalConfig)}
    changed = sorted(k for k, v in given.items() if v is not defaults[k] and v != defaults[k])
    if changed:
        raise DataError(
            f"config= was given together with {', '.join(changed)}; put every setting in the "
            "EvalConfig (dataclasses.replace(config, ...)), or pass keywords only"
        )
    return config


@dataclass
class _Plan:
    """Everything a run resolved before generating (see ``_plan``)."""

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

    @property
    def runs(self) -> list[tuple[str | None, Any, list[float]]]:
        """``(control name or None, vector, alphas)``: the real direction at every alpha, then
        each control at the steered alphas (alpha 0 is the identity for every direction)."""
        alphas = list(self.metadata["settings"]["alphas"])
        out: list[tuple[str | None, Any, list[float]]] = [(None, self.liref, alphas)]
        steered = [a for a in alphas if a != 0.0]
        return out + [(c.name, c.vector, steered) for c in self.control_list]


def _renderer(model: Any, cfg: EvalConfig) -> tuple[Any, bool, dict[str, Any] | None]:
    """``(render(parts) -> prompt, thinking, chat summary)`` of the config's prompt format."""
    if cfg.chat_template:
        to_text, thinking, chat_summary = _chat_renderer(model, cfg.system_prompt, cfg.thinking)
        return (lambda parts: to_text(parts.messages(cfg.system_prompt))), thinking, chat_summary
    return (lambda parts: parts.text()), bool(cfg.thinking), None


def _plan(model: Any, bench: Benchmark, cfg: EvalConfig) -> _Plan:
    """Resolve the direction, controls, items, prompts and prefix cache; build the metadata."""
    remote = resolve_remote(model, cfg.remote)
    render, thinking, chat_summary = _renderer(model, cfg)
    default_tokens = bench.thinking_max_new_tokens if thinking else bench.max_new_tokens
    new_tokens = cfg.max_new_tokens or default_tokens

    from ..models import model_info

    info = model_info(model).to_dict()
    liref, layer, layer_source, direction_summary = _resolve_direction(
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
    if cfg.limit is not None:
        order = stratified_order(data.items, cfg.seed)[: cfg.limit]
    else:
        order = list(range(len(data.items)))
    items = [data.items[i] for i in order]
    prompts, shots_used, n_ctx = _fit_prompts(model, data, items, render, new_tokens)
    prompt_format = CHAT_FORMAT if cfg.chat_template else PLAIN_FORMAT
    # A ReadMismatchWarning (a UserWarning): the direction's prompt format differs from this run's.
    format_warning = warn_read_mismatch(
        {"prompt_format": (direction_summary or {}).get("prompt_format")},
        prompt_format=prompt_format,
        stacklevel=3,
    )
    token_ids, shared_len, prefix_setting = _prefix(model, cfg, remote, prompts)
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
        remote=remote,
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
    return _Plan(
        bench, data, order, items, prompts, facts, liref, control_list, metadata,
        token_ids, shared_len,
    )  # fmt: skip


def _prefix(
    model: Any, cfg: EvalConfig, remote: bool | str, prompts: list[str]
) -> tuple[list[list[int]] | None, int, dict[str, Any] | None]:
    """``(token ids, shared prefix length, metadata setting)`` of the shared-prefix cache."""
    if not cfg.reuse_prefix or remote is not False:
        return None, 0, None
    # the prefix cache is a speed path only: a model it cannot serve runs the full prompts,
    # and the metadata says why
    skipped = prefix_unsupported(model)
    if skipped is not None:
        return None, 0, {"shared_tokens": None, "skipped": skipped}
    if not prompts or not callable(getattr(model, "tokenizer", None)):
        return None, 0, None
    from ..batching import tokenize

    token_ids = tokenize(model, prompts)
    shared_len = shared_prefix_length(token_ids)
    if shared_len < MIN_SHARED_TOKENS:
        return None, 0, None
    return token_ids, shared_len, {"shared_tokens": shared_len}


Done = dict[tuple[str | None, float, int], dict[str, Any]]


def _generate(model: Any, plan: _Plan, cfg: EvalConfig) -> Done:
    """Every record of the run (key: control name or None, alpha, item index): resumed from
    ``cfg.records_path`` where it already holds them, else generated batch by batch (and
    appended there)."""
    done: Done = {}
    hashes = {c.name: c.recipe["unit_hash"] for c in plan.control_list}
    fh = None
    # Another run appending to the same records at the same time would do the same work twice.
    held = contextlib.ExitStack()
    try:
        if cfg.records_path is not None:
            path = Path(cfg.records_path)
            held.enter_context(
                lock(
                    path,
                    what=f"the evaluation records {cfg.records_path}",
                    fix="wait for that run to finish (a rerun then resumes from its records), "
                    "or write somewhere else",
                    remove=True,
                )
            )
            old, fh = resume(path, plan.metadata, plan.bench, plan.data.items, hashes)
            done = {key: record.to_dict() for key, record in old.items()}
        for name, vector, run_alphas in plan.runs:
            for alpha in run_alphas:
                _run_alpha(model, plan, cfg, (name, vector, alpha), done, fh)
    finally:
        if fh is not None:
            fh.close()
        held.close()
    return done


def _run_alpha(
    model: Any,
    plan: _Plan,
    cfg: EvalConfig,
    run: tuple[str | None, Any, float],
    done: Done,
    fh: IO[str] | None,
) -> None:
    """Generate the batches of one direction at one alpha that ``done`` lacks (in place)."""
    name, vector, alpha = run
    items, batch_size = plan.items, int(cfg.batch_size or GENERATE_BATCH_SIZE)
    layer = plan.facts.layer
    what = f"{plan.bench.name} alpha={alpha:+g}" + (f" ({name})" if name else "")
    steering = (
        {"direction": vector, "layer": layer, "alpha": alpha, "mode": cfg.mode}
        if alpha != 0.0
        else None
    )
    prefix_run = (
        nullcontext(None)
        if plan.token_ids is None
        else shared_prefix(model, plan.token_ids[0][: plan.shared_len], steering)
    )
    hashes = {c.name: c.recipe["unit_hash"] for c in plan.control_list}
    batches = [(lo, min(len(items), lo + batch_size)) for lo in range(0, len(items), batch_size)]
    with prefix_run as shared, progress_bar(what, len(items), cfg.progress) as bar:
        for lo, hi in batches:
            if all(
                _finished(done.get((name, alpha, plan.order[i])), lo, hi, cfg.gold_logprob)
                for i in range(lo, hi)
            ):
                bar.advance(hi - lo)
                continue
            for record in _run_batch(model, plan, cfg, (vector, alpha), (lo, hi), shared):
                if name is not None:
                    record["control"], record["control_hash"] = name, hashes[name]
                done[(name, alpha, record["index"])] = record
                if fh is not None:
                    dump_jsonl_line(fh, record)
            bar.advance(hi - lo)


def _assemble(plan: _Plan, cfg: EvalConfig, done: Done) -> EvalResult:
    """The ``EvalResult`` of the real direction, its controls and the comparisons, Holm-adjusted."""
    alphas, order = list(cfg.alphas), plan.order
    facts = plan.facts
    records = [done[(None, alpha, i)] for alpha in alphas for i in order]
    if not facts.thinking and not cfg.chat_template:
        # chat turns end at EOS: "\nQ:" is a plain-prompt marker
        ran = [r for r in done.values() if r.get("n_tokens") is not None]
        warn_unmatched_stops(
            [r["output"] for r in ran],
            [r["n_tokens"] for r in ran],
            [plan.bench.stop],
            facts.max_new_tokens,
            what=f"{plan.bench.name} outputs",
            stacklevel=3,
        )
    result = summarise(records, plan.metadata, len(order))
    for control in plan.control_list:
        # alpha 0 is the identity for every direction: the control shares the real run's records
        recs = [
            done[(None, 0.0, i)] if alpha == 0.0 else done[(control.name, alpha, i)]
            for alpha in alphas
            for i in order
        ]
        sub_meta = {**plan.metadata, "control": {"name": control.name, **control.recipe}}
        result.controls[control.name] = summarise(recs, sub_meta, len(order))
    if plan.control_list:
        for alpha in cfg.steered_alphas:
            result.vs_controls[alpha] = {}
        for control in plan.control_list:
            comparison = compare_to_control(
                alphas,
                records,
                result.controls[control.name].records,
                n_boot=cfg.n_boot,
                seed=cfg.seed,
                gold=cfg.gold_logprob,
            )
            for alpha, row in comparison.items():
                result.vs_controls[alpha][control.name] = row
    return adjust_holm(result)


def _finished(record: dict[str, Any] | None, lo: int, hi: int, gold: bool) -> bool:
    """Whether a resumed record can stand for this run's batch ``[lo, hi)``."""
    if record is None or record.get("batch") != [lo, hi]:
        return False
    return not gold or record.get("gold_logprob") is not None


def _run_batch(
    model: Any,
    plan: _Plan,
    cfg: EvalConfig,
    steering: tuple[Any, float],
    span: tuple[int, int],
    shared: SharedPrefix | None = None,
) -> list[dict[str, Any]]:
    """Generate and score positions ``lo..hi-1`` (``span``) of the run at one alpha (alpha 0: no
    edit).

    ``steering`` is ``(vector, alpha)``: the real ``Direction`` or a control's ``[d_model]``
    vector; the gold text's log-probability is scored under the same steering as the
    generation. With ``shared`` (the run's steered prefix cache) both passes run from the cache
    over each position's own prompt ids (:mod:`.prefix`).
    """
    lo, hi = span
    alpha = steering[1]
    texts, token_counts = _generate_texts(model, plan, cfg, steering, span, shared)
    golds = [
        continuation(plan.prompts[p], plan.bench.gold_text(plan.items[p])) for p in range(lo, hi)
    ]
    gold_lp = _gold_logprobs(model, plan, cfg, steering, span, shared, golds)
    records = []
    for offset, text in enumerate(texts):
        position = lo + offset
        item = plan.items[position]
        fields_, scored = score_output(plan.bench, item, text, plan.facts.thinking)
        record = Record(
            alpha=alpha,
            index=plan.order[position],
            id=item.id,
            prompt=plan.prompts[position],
            gold=item.answer,
            batch=[lo, hi],
            n_tokens=token_counts[offset],
            n_shots=plan.facts.shots_used[position],
            gold_text=golds[offset],
            gold_logprob=gold_lp[offset],
            accepted=list(item.accepted) if item.aliases else None,
            group=item.group,
            **fields_,
            **scored,
        )
        records.append(record.to_dict())
    return records


def _generate_texts(
    model: Any,
    plan: _Plan,
    cfg: EvalConfig,
    steering: tuple[Any, float],
    span: tuple[int, int],
    shared: SharedPrefix | None,
) -> tuple[list[str], list[int]]:
    """``(texts, generated token counts)`` of positions ``span`` under ``steering``."""
    from .. import steer  # looked up at call time: tests stand a scripted generator in

    lo, hi = span
    liref, alpha = steering
    steered = alpha != 0.0
    stop = None if plan.facts.thinking else [plan.bench.stop]
    if shared is not None and plan.token_ids is not None:
        rows = list(plan.token_ids[lo:hi])
        out = prefix_generate(shared, rows, max_new_tokens=plan.facts.max_new_tokens, stop=stop)
    else:
        with warnings.catch_warnings():
            # a batch may well hold no stop string: the run as a whole is checked in evaluate
            warnings.simplefilter("ignore", StopStringWarning)
            out = steer.generate(
                model,
                list(plan.prompts[lo:hi]),
                direction=liref if steered else None,
                layer=plan.facts.layer if steered else None,
                alpha=alpha,
                mode=cfg.mode if steered else "project",  # alpha 0: plain greedy, no edit
                max_new_tokens=plan.facts.max_new_tokens,
                # a think block may hold "\nQ:" of its own: thinking runs end at EOS or budget
                stop=stop,
                remote=plan.facts.remote,
                batch_size=hi - lo,
                progress=False,
            )
    if len(out.texts) != hi - lo:
        raise DataError(f"generate returned {len(out.texts)} outputs for {hi - lo} prompts")
    return list(out.texts), [len(ids) for ids in out.token_ids]


def _gold_logprobs(
    model: Any,
    plan: _Plan,
    cfg: EvalConfig,
    steering: tuple[Any, float],
    span: tuple[int, int],
    shared: SharedPrefix | None,
    golds: list[str],
) -> list[float | None]:
    """``log p(gold | prompt)`` of positions ``span`` under ``steering`` (``None`` each when the
    run skips it)."""
    from . import outcomes  # looked up at call time: tests stand a scripted scorer in

    lo, hi = span
    liref, alpha = steering
    if not cfg.gold_logprob:
        return [None] * (hi - lo)
    if shared is not None and plan.token_ids is not None:
        return list(prefix_gold_logprobs(shared, list(plan.token_ids[lo:hi]), golds))
    scoring = (
        {"direction": liref, "layer": plan.facts.layer, "alpha": alpha, "mode": cfg.mode}
        if alpha != 0.0
        else None
    )
    return list(
        outcomes.gold_logprobs(
            model,
            list(plan.prompts[lo:hi]),
            golds,
            steering=scoring,
            remote=plan.facts.remote,
            batch_size=hi - lo,
            progress=False,
        )
    )
