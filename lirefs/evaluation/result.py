"""What an evaluation run returns: :class:`EvalResult` (per alpha) and :class:`PairedResult`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..store import atomic_path, write_json
from .records import write_records
from .stats import sample_stderr

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
        accuracy: ``{alpha: share correct}``, strict reading (the benchmark's answer phrase).
        ci: ``{alpha: (low, high)}`` 95% exact (Clopper-Pearson) interval of ``accuracy``.
        no_answer_rate: ``{alpha: share of outputs with no extractable answer}``.
        paired: ``{alpha: PairedResult}`` for every alpha != 0, when 0 is among the alphas
            (strict reading).
        flexible_accuracy: ``{alpha: share correct}``, flexible reading (``\\boxed{}`` first,
            else the last number / letter), as lm-eval's "flexible-extract" column.
        flexible_ci: ``{alpha: (low, high)}`` 95% Clopper-Pearson interval of it.
        records: one dict per (alpha, item): ``alpha, index, id, prompt, output, extracted,
            extracted_flexible, gold, correct, correct_flexible`` (``extracted`` is ``None`` when
            there was no answer), plus ``batch``, ``n_tokens``, ``n_shots`` and, for thinking
            models, ``thinking`` and ``think_closed``.
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
    flexible_accuracy: dict[float, float]
    flexible_ci: dict[float, tuple[float, float]]
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
                    "flexible_accuracy": self.flexible_accuracy[alpha],
                    "flexible_ci": list(self.flexible_ci[alpha]),
                    "no_answer_rate": self.no_answer_rate[alpha],
                    "n": len(recs),
                    "n_correct": sum(bool(r["correct"]) for r in recs),
                    "n_correct_flexible": sum(bool(r.get("correct_flexible")) for r in recs),
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

    def save(self, folder: str | Path, *, records: bool = True) -> Path:
        """Write ``result.json``, ``records.jsonl`` and the lm-eval layout under ``lm_eval/``.

        All files are written atomically; ``records.jsonl`` (header line + one record per line)
        can be passed back as ``records_path`` to resume or extend the run. ``records=False``
        keeps an existing ``records.jsonl`` as it is (the run appended to it already, and it may
        hold finished records of other alphas or items that this result does not show).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "result.json", self.to_dict())
        if records:
            write_records(folder / "records.jsonl", self.metadata, self.records)
        self.save_lm_eval(folder / "lm_eval")
        return folder

    def task_name(self, alpha: float) -> str:
        """The lm-eval task name of one alpha: ``<benchmark>_alpha<+alpha>``."""
        return f"{self.benchmark}_alpha{alpha:+g}"

    def lm_eval_results(self) -> dict[str, Any]:
        """The run in lm-eval's ``results.json`` layout: one task per alpha with ``acc,none``,
        ``acc_stderr,none``, ``exact_match,strict-match``, ``exact_match,flexible-extract`` (and
        their ``_stderr``), plus ``n-samples`` and the settings under ``config``."""
        results: dict[str, Any] = {}
        n_samples: dict[str, Any] = {}
        total = (self.metadata.get("data") or {}).get("n_total", self.n_items)
        for alpha in self.alphas:
            recs = [r for r in self.records if r["alpha"] == alpha]
            strict = np.array([bool(r["correct"]) for r in recs], dtype=np.float64)
            flexible = np.array([bool(r.get("correct_flexible")) for r in recs], dtype=np.float64)
            task = self.task_name(alpha)
            results[task] = {
                "alias": task,
                "alpha": alpha,
                "acc,none": self.accuracy[alpha],
                "acc_stderr,none": sample_stderr(strict),
                "exact_match,strict-match": self.accuracy[alpha],
                "exact_match_stderr,strict-match": sample_stderr(strict),
                "exact_match,flexible-extract": self.flexible_accuracy[alpha],
                "exact_match_stderr,flexible-extract": sample_stderr(flexible),
                "n": len(recs),
            }
            n_samples[task] = {"original": total, "effective": len(recs)}
        return {
            "results": results,
            "n-samples": n_samples,
            "config": {"model": self.metadata.get("model"), **self.metadata.get("settings", {})},
            "lirefs_version": self.metadata.get("lirefs_version"),
        }

    def save_lm_eval(self, folder: str | Path) -> Path:
        """Write ``results.json`` and one ``samples_<task>.jsonl`` per alpha (lm-eval's layout:
        ``doc_id``, ``doc``, ``target``, ``arguments`` with the full prompt, ``resps``,
        ``filtered_resps`` and the per-filter ``exact_match``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "results.json", self.lm_eval_results())
        gen = {"max_new_tokens": (self.metadata.get("settings") or {}).get("max_new_tokens")}
        gen["until"] = (self.metadata.get("settings") or {}).get("stop")
        for alpha in self.alphas:
            safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", self.task_name(alpha))
            target = folder / f"samples_{safe}.jsonl"
            with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                for r in (r for r in self.records if r["alpha"] == alpha):
                    sample = {
                        "doc_id": r["index"],
                        "doc": {"id": r["id"], "accepted": r.get("accepted", [r["gold"]])},
                        "target": r["gold"],
                        "arguments": [[r.get("prompt"), gen]],
                        "resps": [[r["output"]]],
                        "filtered_resps": [r["extracted"], r.get("extracted_flexible")],
                        "filter": ["strict-match", "flexible-extract"],
                        "exact_match,strict-match": float(bool(r["correct"])),
                        "exact_match,flexible-extract": float(bool(r.get("correct_flexible"))),
                        "acc": float(bool(r["correct"])),
                    }
                    if "thinking" in r:
                        sample["thinking"] = r["thinking"]
                    fh.write(json.dumps(sample, ensure_ascii=False) + "\n")
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
