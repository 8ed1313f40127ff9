"""What an evaluation run returns: :class:`EvalResult` (per alpha) and :class:`PairedResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import write_json
from .records import write_records

__all__ = ["EvalResult", "PairedResult"]


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
        """JSON-ready fields."""
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
        write_records(folder / "records.jsonl", self.metadata, self.records)
        return folder

    def plot(self, path: str | Path) -> Path:
        """Accuracy against alpha with 95% error bars, as a PNG (needs matplotlib).

        Raises:
            ImportError: matplotlib is not installed (``pip install 'lirefs[plots]'``).
        """
        from .plots import plot_accuracy

        return plot_accuracy(self, path)

    def __repr__(self) -> str:
        accs = ", ".join(f"{a:+g}: {self.accuracy[a]:.3f}" for a in self.alphas)
        return f"EvalResult({self.benchmark!r}, n_items={self.n_items}, accuracy={{{accs}}})"
