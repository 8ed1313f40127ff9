"""``evaluate``: benchmark accuracy under steering, one pass per alpha (docs/method.md, "Evaluation").

``evaluate(model, "gsm8k", direction=liref, alphas=(0.0, 0.1))`` builds every item's k-shot prompt,
generates greedily with ``lirefs.generate`` once per alpha and batch, extracts each answer with the
benchmark's strict rule (no answer = wrong, never a guess) and reports per alpha:

* ``accuracy[alpha]`` and ``ci[alpha]``: the 95% percentile bootstrap interval over items (the exact
  Clopper-Pearson interval when every item has the same outcome: the bootstrap has no spread then);
* ``no_answer_rate[alpha]``: the share of outputs with no extractable answer;
* ``paired[alpha]`` (when 0 is among the alphas): the accuracy difference against alpha = 0 with a
  paired bootstrap interval (the same resampled items for both) and McNemar's exact p-value.

With ``records_path`` each finished batch is appended to a JSONL file (:mod:`.records`); a rerun
with the same model, data and settings reuses those records and generates only what is missing.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..console import progress_bar
from ..errors import DataError, DirectionError, LayerError
from ..steer import GENERATE_BATCH_SIZE, MODES
from ..store import dump_jsonl_line, make_metadata
from .records import open_records
from .result import EvalResult, PairedResult
from .stats import accuracy_ci, bootstrap_means, mcnemar_exact, percentile_ci
from .tasks import Benchmark, BenchmarkData, Item, get_benchmark

__all__ = ["LAYER_FROM_DIRECTION", "LAYER_FROM_USER", "evaluate"]

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
        "unit_hash": hashlib.sha256(unit.numpy().tobytes()).hexdigest()[:16],
    }
    return direction, int(layer), source, summary


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
    remote: bool | str = False,
    batch_size: int | None = GENERATE_BATCH_SIZE,
    max_new_tokens: int | None = None,
    data_path: str | Path | None = None,
    records_path: str | Path | None = None,
    seed: int = 0,
    n_boot: int = 2000,
    progress: bool | None = None,
    skip_bad_rows: bool = False,
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
        limit: score only the first ``limit`` items (dataset order).
        remote: ``False``, ``True`` (NDIF) or ``"local"``.
        batch_size: prompts per ``generate`` call.
        max_new_tokens: generation length (default: the benchmark's, 200 for the paper's sets).
        data_path: local file or folder with the benchmark's columns instead of the Hub.
        records_path: JSONL to append records to after each batch; an existing file made with
            the same model, data and settings is resumed.
        seed: seed of the bootstrap resampling.
        n_boot: bootstrap resamples.
        progress: progress bar per alpha (default: when stderr is a terminal).
        skip_bad_rows: leave malformed data rows out (listed in the metadata) instead of failing.

    Returns:
        An ``EvalResult``.

    Raises:
        DataError: unknown benchmark, bad data, bad ``alphas``/``limit``/``batch_size``.
        DirectionError: an alpha != 0 without a direction, or a direction for another model.
        LayerError: no layer given and none recorded in the direction, or out of range.
        MetadataMismatchError: ``records_path`` belongs to another model, data set or settings.
    """
    bench = get_benchmark(benchmark)
    alpha_list = _check_alphas(alphas)
    if mode not in MODES:
        raise DataError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if mode == "ablate" and any(a not in (0.0, -1.0) for a in alpha_list):
        raise DataError(
            f"mode 'ablate' removes the r̂ component whatever alpha is, so alphas {alpha_list} "
            "are ambiguous; use alphas=(0.0, -1.0) (0 = unsteered baseline, -1 = ablated)"
        )
    limit = _check_positive(limit, "limit", "pass a number of items >= 1, or None for all")
    batch_size = (
        _check_positive(batch_size, "batch_size", "e.g. batch_size=8") or GENERATE_BATCH_SIZE
    )
    n_boot = _check_positive(n_boot, "n_boot", "e.g. n_boot=2000") or 2000
    new_tokens = (
        _check_positive(max_new_tokens, "max_new_tokens", f"e.g. {bench.max_new_tokens}")
        or bench.max_new_tokens
    )

    from ..models import model_info

    info = model_info(model).to_dict()
    liref, layer, layer_source, direction_summary = _resolve_direction(
        direction, layer, alpha_list, info
    )

    data: BenchmarkData = bench.load(data_path, skip_bad_rows=skip_bad_rows)
    data_hash = data.hash()
    items = data.items[:limit] if limit is not None else list(data.items)
    prompts = [data.prompt(item) for item in items]

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
            "n_shots": bench.n_shots,
            "shot_split": bench.shot_split,
            "batch_size": batch_size,
            "decoding": "greedy",
            "remote": remote,
            "seed": seed,
            "n_boot": n_boot,
            "direction": direction_summary,
        },
    )

    done: dict[tuple[float, int], dict[str, Any]] = {}
    fh = None
    if records_path is not None:
        old, fh = open_records(Path(records_path), metadata)
        for record in old:
            done[(float(record["alpha"]), int(record["index"]))] = record
    try:
        batches = [
            (lo, min(len(items), lo + batch_size)) for lo in range(0, len(items), batch_size)
        ]
        for alpha in alpha_list:
            with progress_bar(f"{bench.name} alpha={alpha:+g}", len(items), progress) as bar:
                for lo, hi in batches:
                    if all(
                        (alpha, i) in done and done[(alpha, i)].get("batch") == [lo, hi]
                        for i in range(lo, hi)
                    ):
                        bar.advance(hi - lo)
                        continue
                    records = _run_batch(
                        model,
                        bench,
                        items,
                        prompts,
                        lo,
                        hi,
                        alpha,
                        liref,
                        layer,
                        mode,
                        new_tokens,
                        remote,
                    )
                    for record in records:
                        done[(alpha, record["index"])] = record
                        if fh is not None:
                            dump_jsonl_line(fh, record)
                    bar.advance(hi - lo)
    finally:
        if fh is not None:
            fh.close()

    records = [done[(alpha, i)] for alpha in alpha_list for i in range(len(items))]
    return _summarise(
        bench.name, alpha_list, len(items), records, metadata, n_boot, seed, layer, layer_source
    )


def _run_batch(
    model: Any,
    bench: Benchmark,
    items: Sequence[Item],
    prompts: Sequence[str],
    lo: int,
    hi: int,
    alpha: float,
    liref: Any,
    layer: int | None,
    mode: str,
    max_new_tokens: int,
    remote: bool | str,
) -> list[dict[str, Any]]:
    """Generate and score items ``lo..hi-1`` at one alpha (alpha 0: no edit at all)."""
    from .. import steer  # looked up at call time: tests stand a scripted generator in

    steered = alpha != 0.0
    out = steer.generate(
        model,
        list(prompts[lo:hi]),
        direction=liref if steered else None,
        layer=layer if steered else None,
        alpha=alpha,
        mode=mode if steered else "project",  # alpha 0: plain greedy generation, no edit
        max_new_tokens=max_new_tokens,
        stop=[bench.stop],
        remote=remote,
        batch_size=hi - lo,
        progress=False,
    )
    if len(out.texts) != hi - lo:
        raise DataError(f"generate returned {len(out.texts)} outputs for {hi - lo} prompts")
    records = []
    for offset, text in enumerate(out.texts):
        index = lo + offset
        item = items[index]
        extracted, correct = bench.score(text, item)
        record: dict[str, Any] = {
            "alpha": alpha,
            "index": index,
            "id": item.id,
            "output": text,
            "extracted": extracted,
            "gold": item.answer,
            "correct": correct,
            "batch": [lo, hi],
            "n_tokens": len(out.token_ids[offset]),
        }
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
    correct = np.array([bool(r["correct"]) for r in records], dtype=np.float64).reshape(shape)
    no_answer = np.array([r["extracted"] is None for r in records], dtype=np.float64).reshape(shape)
    means = bootstrap_means(correct, n_boot, seed)  # same resamples for every alpha
    accuracy, ci, rate = {}, {}, {}
    for a, alpha in enumerate(alphas):
        accuracy[alpha] = float(correct[a].mean())
        ci[alpha] = accuracy_ci(means[:, a], correct[a], 0.95)
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
                ci=percentile_ci(means[:, a] - means[:, base], 0.95),
                p_value=mcnemar_exact(lost, gained),
                n_gained=gained,
                n_lost=lost,
            )
    return EvalResult(
        benchmark=name,
        alphas=alphas,
        n_items=n_items,
        accuracy=accuracy,
        ci=ci,
        no_answer_rate=rate,
        paired=paired,
        records=records,
        metadata=metadata,
        layer=layer,
        layer_source=layer_source,
    )
