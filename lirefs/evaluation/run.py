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
import math
import random
import warnings
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from ..console import progress_bar
from ..errors import DataError, DirectionError, LayerError
from ..ndif import resolve_remote
from ..reading import CHAT_FORMAT, PLAIN_FORMAT, warn_read_mismatch
from ..steer import GENERATE_BATCH_SIZE, MODES, StopStringWarning, warn_unmatched_stops
from ..store import dump_jsonl_line, lock, make_metadata
from .compare import compare_to_control, summarise_outcomes
from .controls import ControlDirection, control_directions
from .outcomes import degeneration_reasons
from .prefix import (
    MIN_SHARED_TOKENS,
    SharedPrefix,
    prefix_generate,
    prefix_gold_logprobs,
    prefix_unsupported,
    shared_prefix,
    shared_prefix_length,
)
from .records import open_records
from .result import EvalResult, PairedResult
from .stats import bootstrap_means, clopper_pearson, mcnemar_exact, paired_ci
from .tasks import Benchmark, BenchmarkData, Item, get_benchmark
from .tasks.base import continuation
from .tasks.extract import THINK_CLOSE, THINK_OPEN

__all__ = [
    "LAYER_FROM_DIRECTION",
    "LAYER_FROM_USER",
    "PLAIN_FORMAT",
    "evaluate",
    "stratified_order",
]

LAYER_FROM_DIRECTION = "chosen on the direction's held-out split"
LAYER_FROM_USER = "given by the user"


# ---------------------------------------------------------------------------------------------
# checks


def _check_alphas(alphas: float | Iterable[float]) -> list[float]:
    if isinstance(alphas, int | float) and not isinstance(alphas, bool):
        alphas = [alphas]
    try:
        values = [float(a) for a in alphas]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise DataError(f"alphas must be numbers, got {alphas!r}; e.g. alphas=(0.0, 0.1)") from None
    if not values:
        raise DataError("alphas is empty; pass at least one, e.g. alphas=(0.0, 0.1)")
    bad = [a for a in values if not math.isfinite(a)]
    if bad:
        raise DataError(f"alphas must be finite numbers, got {bad}")
    repeats = sorted({a for a in values if values.count(a) > 1})
    if repeats:
        raise DataError(f"alphas {repeats} are given more than once; list each alpha once")
    return [a + 0.0 for a in values]  # -0.0 -> 0.0


def _check_positive(value: int | None, name: str, fix: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}; {fix}")
    return int(value)


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
    uniform ``u`` per item, and items are sorted by key (systematic stratified sampling). Any first
    ``N`` therefore holds each group in proportion to its size (within one item), the same seed
    gives the same order, and a larger ``N`` extends a smaller one's sample.
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
            keyed.append(((rank + rng.random()) / len(members), index))
    return [index for _, index in sorted(keyed)]


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
            stacklevel=3,
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
) -> EvalResult:
    """Accuracy of ``model`` on ``benchmark`` for each steering strength in ``alphas``.

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

    Returns:
        An ``EvalResult``.

    Raises:
        DataError: unknown benchmark, bad data, bad ``alphas``/``limit``/``batch_size``.
        DirectionError: an alpha != 0 without a direction, or a direction for another model.
        LayerError: no layer given and none recorded in the direction, or out of range.
        MetadataMismatchError: ``records_path`` belongs to another model, data set or settings.

    Warns:
        StopStringWarning: the benchmark's stop string occurred in none of the run's outputs
            while some ran to ``max_new_tokens`` (the records keep the whole texts).
        UserWarning: prompts longer than the context use fewer exemplars.
    """
    remote = resolve_remote(model, remote)
    bench = get_benchmark(benchmark)
    alpha_list = _check_alphas(alphas)
    if mode not in MODES:
        raise DataError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    refused = [a for a in alpha_list if a != 0.0 and not MODES[mode].accepts(a)]
    if refused:
        raise DataError(
            f"mode {mode!r} takes {MODES[mode].accepted}, so alphas {refused} are ambiguous; "
            "alpha 0 is always the unsteered baseline"
        )
    limit = _check_positive(limit, "limit", "pass a number of items >= 1, or None for all")
    batch_size = (
        _check_positive(batch_size, "batch_size", "e.g. batch_size=8") or GENERATE_BATCH_SIZE
    )
    n_boot = _check_positive(n_boot, "n_boot", "e.g. n_boot=2000") or 2000
    max_new_tokens = _check_positive(
        max_new_tokens, "max_new_tokens", f"e.g. {bench.max_new_tokens}"
    )
    if system_prompt is not None and not chat_template:
        raise DataError(
            "system_prompt needs chat_template=True (--chat-template): the plain Q:/A: prompt "
            "has no system turn"
        )
    render: Any = None
    chat_summary: dict[str, Any] | None = None
    if chat_template:
        to_text, thinking, chat_summary = _chat_renderer(model, system_prompt, thinking)
        render = lambda parts: to_text(parts.messages(system_prompt))  # noqa: E731
    else:
        thinking = bool(thinking)
        render = lambda parts: parts.text()  # noqa: E731
    default_tokens = bench.thinking_max_new_tokens if thinking else bench.max_new_tokens
    new_tokens = max_new_tokens or default_tokens

    from ..models import model_info

    info = model_info(model).to_dict()
    liref, layer, layer_source, direction_summary = _resolve_direction(
        direction, layer, alpha_list, info
    )
    if isinstance(controls, bool) or not isinstance(controls, int) or controls < 0:
        raise DataError(f"controls must be an int >= 0, got {controls!r}; e.g. controls=2")
    steered_alphas = [a for a in alpha_list if a != 0.0]
    control_list: list[ControlDirection] = []
    if controls or control_activations is not None:
        if liref is None or not steered_alphas:
            raise DataError(
                "controls compare the steered alphas of a direction with other directions; pass "
                "direction= and at least one alpha != 0, or controls=0"
            )
        control_list = control_directions(
            int(info["d_model"]),
            controls,
            seed=seed,
            activations=control_activations,
            layer=layer,
        )

    data: BenchmarkData = bench.load(data_path, skip_bad_rows=skip_bad_rows)
    data_hash = data.hash()
    if limit is not None:
        order = stratified_order(data.items, seed)[:limit]
    else:
        order = list(range(len(data.items)))
    items = [data.items[i] for i in order]
    prompts, shots_used, n_ctx = _fit_prompts(model, data, items, render, new_tokens)
    prompt_format = CHAT_FORMAT if chat_template else PLAIN_FORMAT
    # A ReadMismatchWarning (a UserWarning): the direction's prompt format differs from this run's.
    format_warning = warn_read_mismatch(
        {"prompt_format": (direction_summary or {}).get("prompt_format")},
        prompt_format=prompt_format,
        stacklevel=2,
    )
    token_ids: list[list[int]] | None = None
    shared_len = 0
    prefix_setting: dict[str, Any] | None = None
    if reuse_prefix and remote is False:
        # the prefix cache is a speed path only: a model it cannot serve runs the full prompts,
        # and the metadata says why
        skipped = prefix_unsupported(model)
        if skipped is not None:
            prefix_setting = {"shared_tokens": None, "skipped": skipped}
        elif items and callable(getattr(model, "tokenizer", None)):
            from ..batching import tokenize

            token_ids = tokenize(model, prompts)
            shared_len = shared_prefix_length(token_ids)
            if shared_len < MIN_SHARED_TOKENS:
                token_ids, shared_len = None, 0
            else:
                prefix_setting = {"shared_tokens": shared_len}
    groups: dict[str, int] = {}
    for item in items:
        groups[str(item.group)] = groups.get(str(item.group), 0) + 1

    metadata = make_metadata(
        "evaluation",
        model=info,
        data={
            "benchmark": bench.name,
            "hash": data_hash,
            "source": data.source,
            "n_total": len(data.items),
            "skipped_rows": data.skipped,
            "kind": bench.kind,
        },
        settings={
            "alphas": alpha_list,
            "layer": layer,
            "layer_source": layer_source,
            "mode": mode,
            "max_new_tokens": new_tokens,
            "stop": bench.stop,
            "limit": limit,
            "n_items": len(items),
            "sample": None
            if limit is None
            else {
                "method": "seeded random, stratified by group",
                "seed": seed,
                "groups": groups,
                "ids_hash": hashlib.sha256("\x1f".join(i.id for i in items).encode()).hexdigest()[
                    :16
                ],
            },
            "n_shots": bench.n_shots,
            "n_shots_reduced": sum(k < bench.n_shots for k in shots_used),
            "context_length": n_ctx,
            "chat_template": chat_template,
            "system_prompt": system_prompt,
            "thinking": thinking,
            "prompt_format": prompt_format,
            "chat": chat_summary,
            "format_warning": format_warning,
            "shot_split": bench.shot_split,
            "batch_size": batch_size,
            "prefix_cache": prefix_setting,
            "decoding": "greedy",
            "remote": remote,
            "seed": seed,
            "n_boot": n_boot,
            "direction": direction_summary,
            "gold_logprob": bool(gold_logprob),
            "gold_text_example": bench.gold_text(items[0]) if items else None,
            "controls": [{"name": c.name, **c.recipe} for c in control_list],
        },
    )

    # key: (control name or None for the real direction, alpha, item index)
    done: dict[tuple[str | None, float, int], dict[str, Any]] = {}
    hashes = {c.name: c.recipe["unit_hash"] for c in control_list}
    fh = None
    # Another run appending to the same records at the same time would do the same work twice.
    held = contextlib.ExitStack()
    if records_path is not None:
        held.enter_context(
            lock(
                Path(records_path),
                what=f"the evaluation records {records_path}",
                fix="wait for that run to finish (a rerun then resumes from its records), or "
                "write somewhere else",
                remove=True,
            )
        )
    try:
        old: list[dict[str, Any]] = []
        if records_path is not None:
            old, fh = open_records(Path(records_path), metadata)
            by_index = {i: item for i, item in enumerate(data.items)}
            for record in old:
                name = record.get("control")
                if name is not None and record.get("control_hash") != hashes.get(name):
                    continue  # a control of another seed or width: not this run's direction
                if "extracted_flexible" not in record and int(record["index"]) in by_index:
                    # made before the flexible reading existed: read it from the kept output
                    item = by_index[int(record["index"])]
                    flex, ok = bench.score_flexible(record["output"], item)
                    record["extracted_flexible"], record["correct_flexible"] = flex, ok
                # the degeneration rule reads the kept output: always the current rule's verdict
                record["degenerate_reasons"] = degeneration_reasons(record["output"])
                record["degenerate"] = bool(record["degenerate_reasons"])
                done[(name, float(record["alpha"]), int(record["index"]))] = record
    except BaseException:
        if fh is not None:
            fh.close()
        held.close()
        raise
    runs: list[tuple[str | None, Any, list[float]]] = [(None, liref, alpha_list)]
    runs += [(c.name, c.vector, steered_alphas) for c in control_list]
    try:
        batches = [
            (lo, min(len(items), lo + batch_size)) for lo in range(0, len(items), batch_size)
        ]
        for name, vector, run_alphas in runs:
            for alpha in run_alphas:
                what = f"{bench.name} alpha={alpha:+g}" + (f" ({name})" if name else "")
                steering = (
                    {"direction": vector, "layer": layer, "alpha": alpha, "mode": mode}
                    if alpha != 0.0
                    else None
                )
                prefix_run = (
                    nullcontext(None)
                    if token_ids is None
                    else shared_prefix(model, token_ids[0][:shared_len], steering)
                )
                with prefix_run as shared, progress_bar(what, len(items), progress) as bar:
                    for lo, hi in batches:
                        if all(
                            _finished(done.get((name, alpha, order[i])), lo, hi, gold_logprob)
                            for i in range(lo, hi)
                        ):
                            bar.advance(hi - lo)
                            continue
                        records = _run_batch(
                            model,
                            bench,
                            items,
                            prompts,
                            order,
                            shots_used,
                            lo,
                            hi,
                            alpha,
                            vector,
                            layer,
                            mode,
                            new_tokens,
                            remote,
                            thinking,
                            gold_logprob,
                            shared,
                            token_ids,
                        )
                        for record in records:
                            if name is not None:
                                record["control"], record["control_hash"] = name, hashes[name]
                            done[(name, alpha, record["index"])] = record
                            if fh is not None:
                                dump_jsonl_line(fh, record)
                        bar.advance(hi - lo)
    finally:
        if fh is not None:
            fh.close()
        held.close()

    records = [done[(None, alpha, i)] for alpha in alpha_list for i in order]
    if not thinking and not chat_template:  # chat turns end at EOS: "\nQ:" is a plain-prompt marker
        ran = [r for r in done.values() if r.get("n_tokens") is not None]
        warn_unmatched_stops(
            [r["output"] for r in ran],
            [r["n_tokens"] for r in ran],
            [bench.stop],
            new_tokens,
            what=f"{bench.name} outputs",
            stacklevel=2,
        )
    result = _summarise(
        bench.name, alpha_list, len(items), records, metadata, n_boot, seed, layer, layer_source
    )
    for control in control_list:
        # alpha 0 is the identity for every direction: the control shares the real run's records
        recs = [
            done[(None, 0.0, i)] if alpha == 0.0 else done[(control.name, alpha, i)]
            for alpha in alpha_list
            for i in order
        ]
        sub_meta = {**metadata, "control": {"name": control.name, **control.recipe}}
        result.controls[control.name] = _summarise(
            bench.name, alpha_list, len(items), recs, sub_meta, n_boot, seed, layer, layer_source
        )
    if control_list:
        for alpha in steered_alphas:
            result.vs_controls[alpha] = {}
        for control in control_list:
            comparison = compare_to_control(
                alpha_list,
                records,
                result.controls[control.name].records,
                n_boot=n_boot,
                seed=seed,
                gold=gold_logprob,
            )
            for alpha, row in comparison.items():
                result.vs_controls[alpha][control.name] = row
    return result


def _finished(record: dict[str, Any] | None, lo: int, hi: int, gold: bool) -> bool:
    """Whether a resumed record can stand for this run's batch ``[lo, hi)``."""
    if record is None or record.get("batch") != [lo, hi]:
        return False
    return not gold or record.get("gold_logprob") is not None


def _run_batch(
    model: Any,
    bench: Benchmark,
    items: Sequence[Item],
    prompts: Sequence[str],
    order: Sequence[int],
    shots_used: Sequence[int],
    lo: int,
    hi: int,
    alpha: float,
    liref: Any,
    layer: int | None,
    mode: str,
    max_new_tokens: int,
    remote: bool | str,
    thinking: bool,
    gold: bool,
    shared: SharedPrefix | None = None,
    token_ids: Sequence[list[int]] | None = None,
) -> list[dict[str, Any]]:
    """Generate and score positions ``lo..hi-1`` of the run at one alpha (alpha 0: no edit).

    ``liref`` is the real ``Direction`` or a control's ``[d_model]`` vector; the gold text's
    log-probability is scored under the same steering as the generation. With ``shared`` (the
    run's steered prefix cache) and ``token_ids`` (every position's prompt ids), both passes run
    from the cache (:mod:`.prefix`).
    """
    from .. import steer  # looked up at call time: tests stand a scripted generator in
    from . import outcomes  # likewise for the gold scorer

    steered = alpha != 0.0
    stop = None if thinking else [bench.stop]
    rows = None if shared is None or token_ids is None else list(token_ids[lo:hi])
    if shared is not None and rows is not None:
        out = prefix_generate(shared, rows, max_new_tokens=max_new_tokens, stop=stop)
    else:
        with warnings.catch_warnings():
            # a batch may well hold no stop string: the run as a whole is checked in evaluate
            warnings.simplefilter("ignore", StopStringWarning)
            out = steer.generate(
                model,
                list(prompts[lo:hi]),
                direction=liref if steered else None,
                layer=layer if steered else None,
                alpha=alpha,
                mode=mode if steered else "project",  # alpha 0: plain greedy generation, no edit
                max_new_tokens=max_new_tokens,
                # a think block may hold "\nQ:" of its own: thinking runs end at EOS or the budget
                stop=stop,
                remote=remote,
                batch_size=hi - lo,
                progress=False,
            )
    if len(out.texts) != hi - lo:
        raise DataError(f"generate returned {len(out.texts)} outputs for {hi - lo} prompts")
    golds = [continuation(prompts[p], bench.gold_text(items[p])) for p in range(lo, hi)]
    gold_lp: list[float | None] = [None] * (hi - lo)
    if gold and shared is not None and rows is not None:
        gold_lp = list(prefix_gold_logprobs(shared, rows, golds))
    elif gold:
        steering = (
            {"direction": liref, "layer": layer, "alpha": alpha, "mode": mode} if steered else None
        )
        gold_lp = list(
            outcomes.gold_logprobs(
                model,
                list(prompts[lo:hi]),
                golds,
                steering=steering,
                remote=remote,
                batch_size=hi - lo,
                progress=False,
            )
        )
    records = []
    for offset, text in enumerate(out.texts):
        position = lo + offset
        item = items[position]
        record: dict[str, Any] = {
            "alpha": alpha,
            "index": order[position],
            "id": item.id,
            "prompt": prompts[position],
        }
        answer: str | None = text
        if thinking:
            close = text.find(THINK_CLOSE)
            record["thinking"] = text if close < 0 else text[:close]
            record["think_closed"] = close >= 0
            answer = None if close < 0 else text[close + len(THINK_CLOSE) :]
            record["output"] = answer or ""
        else:
            record["output"] = text
        extracted, correct = bench.score(answer, item) if answer is not None else (None, False)
        flexible, correct_flexible = (
            bench.score_flexible(answer, item) if answer is not None else (None, False)
        )
        record.update(
            {
                "extracted": extracted,
                "extracted_flexible": flexible,
                "gold": item.answer,
                "correct": correct,
                "correct_flexible": correct_flexible,
                "batch": [lo, hi],
                "n_tokens": len(out.token_ids[offset]),
                "n_shots": shots_used[position],
                "gold_text": golds[offset],
                "gold_logprob": gold_lp[offset],
            }
        )
        reasons = degeneration_reasons(text)
        record["degenerate"], record["degenerate_reasons"] = bool(reasons), reasons
        if item.aliases:
            record["accepted"] = list(item.accepted)
        records.append(record)
    return records


def _summarise(
    name: str,
    alphas: list[float],
    n_items: int,
    records: list[dict[str, Any]],
    metadata: dict[str, Any],
    n_boot: int,
    seed: int,
    layer: int | None,
    layer_source: str | None,
) -> EvalResult:
    shape = (len(alphas), n_items)

    def table(key: str) -> np.ndarray:
        return np.array([bool(r[key]) for r in records], dtype=np.float64).reshape(shape)

    correct = table("correct")
    flexible = table("correct_flexible")
    no_answer = np.array([r["extracted"] is None for r in records], dtype=np.float64).reshape(shape)
    means = bootstrap_means(correct, n_boot, seed)  # same resamples for every alpha
    accuracy, ci, rate, flex_acc, flex_ci = {}, {}, {}, {}, {}
    for a, alpha in enumerate(alphas):
        accuracy[alpha] = float(correct[a].mean())
        ci[alpha] = clopper_pearson(int(correct[a].sum()), n_items)
        flex_acc[alpha] = float(flexible[a].mean())
        flex_ci[alpha] = clopper_pearson(int(flexible[a].sum()), n_items)
        rate[alpha] = float(no_answer[a].mean())
    paired: dict[float, PairedResult] = {}
    if 0.0 in alphas:
        base = alphas.index(0.0)
        for a, alpha in enumerate(alphas):
            if a == base:
                continue
            gained = int(((correct[a] == 1) & (correct[base] == 0)).sum())
            lost = int(((correct[a] == 0) & (correct[base] == 1)).sum())
            paired[alpha] = PairedResult(
                diff=accuracy[alpha] - accuracy[0.0],
                ci=paired_ci(means[:, a] - means[:, base], correct[a], correct[base]),
                p_value=mcnemar_exact(lost, gained),
                n_gained=gained,
                n_lost=lost,
            )
    has_gold = all(r.get("gold_logprob") is not None for r in records)
    outcomes = summarise_outcomes(alphas, records, n_boot=n_boot, seed=seed, gold=has_gold)
    return EvalResult(
        benchmark=name,
        alphas=alphas,
        n_items=n_items,
        accuracy=accuracy,
        ci=ci,
        no_answer_rate=rate,
        paired=paired,
        flexible_accuracy=flex_acc,
        flexible_ci=flex_ci,
        records=records,
        metadata=metadata,
        layer=layer,
        layer_source=layer_source,
        gold_logprob=outcomes.gold_logprob,
        gold_logprob_ci=outcomes.gold_logprob_ci,
        gold_logprob_paired=outcomes.gold_logprob_paired,
        degenerate=outcomes.degenerate,
        degenerate_paired=outcomes.degenerate_paired,
    )
