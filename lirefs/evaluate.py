"""Benchmark accuracy under steering, with bootstrap intervals and paired tests (METHOD.md section 5).

``evaluate(model, "gsm8k", direction=liref, alphas=(0.0, 0.1))`` builds every item's k-shot prompt,
generates greedily with ``lirefs.generate`` once per alpha and batch, extracts each answer with the
benchmark's strict rule (no answer = wrong, never a guess) and reports per alpha:

* ``accuracy[alpha]`` and ``ci[alpha]``: the 95% percentile bootstrap interval over items (the exact
  Clopper-Pearson interval when every item has the same outcome: the bootstrap has no spread then);
* ``no_answer_rate[alpha]``: the share of outputs with no extractable answer;
* ``paired[alpha]`` (when 0 is among the alphas): the accuracy difference against alpha = 0 with a
  paired bootstrap interval (the same resampled items for both) and McNemar's exact p-value.

Every alpha is scored on the same items with the same bootstrap draws, so intervals and differences
are comparable. With ``records_path`` each finished batch is appended to a JSONL file; a rerun with
the same model, data and settings reuses those records and generates only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .benchmarks import Benchmark, BenchmarkData, get_benchmark
from .console import progress_bar
from .errors import DataError, DirectionError, LayerError, MetadataMismatchError
from .steer import GENERATE_BATCH_SIZE, MODES
from .store import atomic_path, check_metadata, dump_jsonl_line, make_metadata, write_json

__all__ = [
    "EvalResult",
    "PairedResult",
    "bootstrap_ci",
    "evaluate",
    "mcnemar_exact",
    "paired_bootstrap_ci",
]

#: First-line marker of a records file.
RECORDS_FORMAT = "lirefs-eval-records/1"

#: Settings that must match for a records file to be resumed (alphas and limit may change:
#: records are keyed by alpha and item, and batches are compared one by one).
RESUME_KEYS = ("layer", "mode", "max_new_tokens", "batch_size", "direction", "n_shots")

LAYER_FROM_DIRECTION = "chosen on the direction's held-out split"
LAYER_FROM_USER = "given by the user"


# ---------------------------------------------------------------------------------------------
# statistics


def _bootstrap_means(
    correct: np.ndarray, n_boot: int, seed: int, chunk_cells: int = 4_000_000
) -> np.ndarray:
    """Bootstrap means of each row of ``correct`` ``[k, n]`` over the SAME item resamples.

    Returns ``[n_boot, k]``: row ``b`` is the mean of each row of ``correct`` over resample ``b``
    (``n`` items drawn with replacement; drawn as multinomial counts, in chunks to bound memory).
    """
    k, n = correct.shape
    assert n >= 1 and n_boot >= 1
    rng = np.random.default_rng(seed)
    values = correct.astype(np.float64).T  # [n, k]
    out = np.empty((n_boot, k), dtype=np.float64)
    step = max(1, chunk_cells // n)
    pvals = np.full(n, 1.0 / n)
    for lo in range(0, n_boot, step):
        hi = min(n_boot, lo + step)
        counts = rng.multinomial(n, pvals, size=hi - lo)  # [m, n]
        out[lo:hi] = counts @ values / n
    return out


def _percentile_ci(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def _accuracy_ci(samples: np.ndarray, correct: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of bootstrap ``samples``; exact at 0/n and n/n, where they are one point.

    With every outcome equal each resample has the same mean, so the percentile interval is
    ``[0, 0]`` or ``[1, 1]``. The Clopper-Pearson interval has a closed form there: 0/n gives
    ``[0, 1 - (tail)^(1/n)]`` and n/n gives ``[(tail)^(1/n), 1]`` with ``tail = (1 - level) / 2``.
    """
    n, k = correct.size, float(correct.sum())
    tail = (1.0 - level) / 2.0
    if k == 0:
        return 0.0, float(1.0 - tail ** (1.0 / n))
    if k == n:
        return float(tail ** (1.0 / n)), 1.0
    return _percentile_ci(samples, level)


def bootstrap_ci(
    correct: Sequence[bool] | np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``correct`` (resampling items).

    At 0/n and n/n, where every resample has the same mean, the exact Clopper-Pearson interval.

    Args:
        correct: one 0/1 outcome per item, ``[n]``.
        n_boot: bootstrap resamples.
        seed: seed of the resampling (same seed, same interval).
        level: coverage, 0.95 for a 95% interval.
    """
    arr = np.asarray(correct, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(f"bootstrap_ci needs a non-empty 1-D sequence, got shape {arr.shape}")
    return _accuracy_ci(_bootstrap_means(arr[None, :], n_boot, seed)[:, 0], arr, level)


def paired_bootstrap_ci(
    correct: Sequence[bool] | np.ndarray,
    baseline: Sequence[bool] | np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(correct) - mean(baseline)``, resampling item pairs."""
    a = np.asarray(correct, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise DataError(
            f"paired_bootstrap_ci needs two non-empty 1-D sequences of one length, got shapes "
            f"{a.shape} and {b.shape}"
        )
    means = _bootstrap_means(np.stack([a, b]), n_boot, seed)
    return _percentile_ci(means[:, 0] - means[:, 1], level)


def mcnemar_exact(n_lost: int, n_gained: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs.

    ``n_lost``: items right at baseline and wrong when steered; ``n_gained``: the reverse. Under
    the null both are Binomial(n_lost + n_gained, 1/2):
    ``p = min(1, 2 * P[X <= min(n_lost, n_gained)])``; 1.0 when there are no discordant pairs.
    """
    if n_lost < 0 or n_gained < 0:
        raise DataError(f"discordant counts must be >= 0, got {n_lost} and {n_gained}")
    n = n_lost + n_gained
    if n == 0:
        return 1.0
    k = min(n_lost, n_gained)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return float(min(1.0, 2.0 * tail))


# ---------------------------------------------------------------------------------------------
# result


@dataclass(frozen=True)
class PairedResult:
    """Steered (alpha) against unsteered (alpha = 0) on the same items.

    Attributes:
        diff: ``accuracy[alpha] - accuracy[0]``.
        ci: 95% paired percentile bootstrap interval of ``diff``.
        p_value: two-sided exact McNemar p-value.
        n_gained: items wrong at alpha = 0 and right at alpha.
        n_lost: items right at alpha = 0 and wrong at alpha.
    """

    diff: float
    ci: tuple[float, float]
    p_value: float
    n_gained: int
    n_lost: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "diff": self.diff,
            "ci": list(self.ci),
            "p_value": self.p_value,
            "n_gained": self.n_gained,
            "n_lost": self.n_lost,
        }


@dataclass
class EvalResult:
    """Accuracy per alpha with intervals, paired tests and per-item records.

    Attributes:
        benchmark: benchmark name.
        alphas: the alphas, in the order given.
        n_items: items scored per alpha.
        accuracy: ``{alpha: share correct}``.
        ci: ``{alpha: (low, high)}`` 95% percentile bootstrap interval over items (exact
            Clopper-Pearson at 0/n and n/n).
        no_answer_rate: ``{alpha: share of outputs with no extractable answer}``.
        paired: ``{alpha: PairedResult}`` for every alpha != 0, when 0 is among the alphas.
        records: one dict per (alpha, item): ``alpha, index, id, output, extracted, gold, correct``
            (``extracted`` is ``None`` when there was no answer), plus ``batch`` and ``n_tokens``.
        metadata: model, data (benchmark, hash), settings (alphas, layer and why, mode,
            max_new_tokens, limit, direction summary) and version.
        layer: source layer of the direction (``None`` without a direction).
        layer_source: why that layer (``"given by the user"`` or chosen on the direction's
            held-out split).
    """

    benchmark: str
    alphas: list[float]
    n_items: int
    accuracy: dict[float, float]
    ci: dict[float, tuple[float, float]]
    no_answer_rate: dict[float, float]
    paired: dict[float, PairedResult]
    records: list[dict[str, Any]] = field(repr=False)
    metadata: dict[str, Any] = field(repr=False)
    layer: int | None = None
    layer_source: str | None = None

    def rows(self) -> list[dict[str, Any]]:
        """One summary dict per alpha (what the CLI table and ``result.json`` show)."""
        out = []
        for alpha in self.alphas:
            recs = [r for r in self.records if r["alpha"] == alpha]
            paired = self.paired.get(alpha)
            out.append(
                {
                    "alpha": alpha,
                    "accuracy": self.accuracy[alpha],
                    "ci": list(self.ci[alpha]),
                    "no_answer_rate": self.no_answer_rate[alpha],
                    "n": len(recs),
                    "n_correct": sum(bool(r["correct"]) for r in recs),
                    "n_no_answer": sum(r["extracted"] is None for r in recs),
                    "paired": paired.to_dict() if paired is not None else None,
                }
            )
        return out

    def to_dict(self, *, records: bool = False) -> dict[str, Any]:
        """JSON-ready summary (``records=True`` adds the per-item records)."""
        out: dict[str, Any] = {
            "benchmark": self.benchmark,
            "n_items": self.n_items,
            "alphas": list(self.alphas),
            "layer": self.layer,
            "layer_source": self.layer_source,
            "results": self.rows(),
            "metadata": self.metadata,
        }
        if records:
            out["records"] = self.records
        return out

    def save(self, folder: str | Path) -> Path:
        """Write ``result.json`` and ``records.jsonl`` (header line + one record per line).

        Both are written atomically; ``records.jsonl`` can be passed back as ``records_path`` to
        resume or extend the run.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "result.json", self.to_dict())
        with atomic_path(folder / "records.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(_header(self.metadata), ensure_ascii=False) + "\n")
            for record in self.records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return folder

    def plot(self, path: str | Path) -> Path:
        """Accuracy against alpha with 95% bootstrap error bars, as a PNG (needs matplotlib).

        Raises:
            ImportError: matplotlib is not installed (``pip install 'lirefs[plots]'``).
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        order = sorted(self.alphas)
        acc = np.array([self.accuracy[a] for a in order])
        low = acc - np.array([self.ci[a][0] for a in order])
        high = np.array([self.ci[a][1] for a in order]) - acc
        fig = Figure(figsize=(6.0, 4.0), dpi=120)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        # evenly spaced alphas: the ablation (-1) would squash the paper's +-0.05..0.15 sweep
        xs = np.arange(len(order))
        ax.errorbar(xs, acc, yerr=[low, high], fmt="o-", capsize=4)
        ax.set_xticks(xs, [f"{a:+g}" + (" (ablate)" if a == -1.0 else "") for a in order])
        if 0.0 in self.accuracy:
            ax.axhline(self.accuracy[0.0], color="grey", linestyle=":", linewidth=1)
        mode = self.metadata.get("settings", {}).get("mode")
        layer = f", layer {self.layer}" if self.layer is not None else ""
        ax.set_title(f"{self.benchmark} ({self.n_items} items{layer}, mode {mode})", fontsize=10)
        ax.set_xlabel("alpha")
        ax.set_ylabel("accuracy (95% bootstrap CI)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        return path

    def __repr__(self) -> str:
        accs = ", ".join(f"{a:+g}: {self.accuracy[a]:.3f}" for a in self.alphas)
        return f"EvalResult({self.benchmark!r}, n_items={self.n_items}, accuracy={{{accs}}})"


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
    from .direction import Direction

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
# records file


def _header(metadata: dict[str, Any]) -> dict[str, Any]:
    return {"format": RECORDS_FORMAT, "metadata": metadata}


def _read_records(path: Path, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """Records of an earlier run in ``path`` after checking its header against ``metadata``.

    A last line cut short by a crash is dropped; anything else malformed is an error.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        return []
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != RECORDS_FORMAT:
        raise MetadataMismatchError(
            f"{path} is not a lirefs evaluation records file (its first line is not a "
            f"{RECORDS_FORMAT!r} header); choose another records path"
        )
    old = header.get("metadata") or {}
    what = f"records file {path}"
    check_metadata(
        old,
        what=what,
        kind="evaluation",
        model=metadata["model"],
        data_hash=metadata["data"]["hash"],
    )
    if (old.get("data") or {}).get("benchmark") != metadata["data"]["benchmark"]:
        raise MetadataMismatchError(
            f"{what} holds benchmark {(old.get('data') or {}).get('benchmark')!r}, not "
            f"{metadata['data']['benchmark']!r}; use another records path"
        )
    for key in RESUME_KEYS:
        was, now = (old.get("settings") or {}).get(key), metadata["settings"].get(key)
        if key == "direction":  # the same vector may be read from a moved or copied file
            was, now = _without_path(was), _without_path(now)
        if was != now:
            raise MetadataMismatchError(
                f"{what} was made with {key}={was!r}, now {key}={now!r}; use the same settings "
                "to resume, or another records path to start over"
            )
    records = []
    for i, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):  # a write cut short by a crash
                break
            raise DataError(
                f"{path} line {i} is not valid JSON; delete the file to start over"
            ) from None
        if not isinstance(record, dict) or not {"alpha", "index", "correct"} <= set(record):
            raise DataError(
                f"{path} line {i} is not an evaluation record (needs alpha, index, correct); "
                "delete the file to start over"
            )
        records.append(record)
    return records


def _without_path(summary: Any) -> Any:
    if isinstance(summary, dict):
        return {k: v for k, v in summary.items() if k != "path"}
    return summary


def _open_records(path: Path, metadata: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """Existing records (if any) and a handle to append new ones; the file is rewritten first
    (atomically, keeping the latest record of each alpha and item) so a line cut short by a
    crash never sits before new records."""
    old = _read_records(path, metadata) if path.is_file() else []
    latest = {(float(r["alpha"]), int(r["index"])): r for r in old}
    old = list(latest.values())
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(_header(metadata), ensure_ascii=False) + "\n")
        for record in old:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return old, open(path, "a", encoding="utf-8")  # closed by the caller


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

    from .models import model_info

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
        old, fh = _open_records(Path(records_path), metadata)
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
    items: Sequence[Any],
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
    from . import steer

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
    means = _bootstrap_means(correct, n_boot, seed)  # same resamples for every alpha
    accuracy, ci, rate = {}, {}, {}
    for a, alpha in enumerate(alphas):
        accuracy[alpha] = float(correct[a].mean())
        ci[alpha] = _accuracy_ci(means[:, a], correct[a], 0.95)
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
                ci=_percentile_ci(means[:, a] - means[:, base], 0.95),
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
