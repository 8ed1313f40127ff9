"""What an evaluation run returns: :class:`EvalResult` (per alpha, per group) and its paired tests.

``EvalResult.save(folder)`` writes ``result.json``, ``records.jsonl`` and the lm-eval layout;
``EvalResult.load(folder)`` reads them back (checking that the folder holds an evaluation result
of a known lirefs version). Every paired test is one :class:`~.stats.PairedTest` (``PairedResult``
and ``PairedDiff`` are its older names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..outputs import output_folder
from ..store import write_json
from .baselines import BaselineResult
from .groups import GroupResult
from .records import write_records
from .result_io import ResultFileError, load_result
from .stats import PairedTest

__all__ = [
    "RESULT_KIND",
    "EvalResult",
    "GroupResult",
    "PairedResult",
    "ResultFileError",
]

#: The older name of the paired test against alpha 0: one type for every paired test.
PairedResult = PairedTest
PairedDiff = PairedTest

#: ``metadata["kind"]`` of an evaluation result, and the ``kind`` of its folder's manifest.
RESULT_KIND = "evaluation"

#: Level at which :meth:`EvalResult.holm_survivors` names the effects that survive.
HOLM_LEVEL = 0.05


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
        paired: ``{alpha: PairedTest}`` for every alpha != 0, when 0 is among the alphas
            (strict reading; exact McNemar, with ``n_gained`` and ``n_lost``).
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
        gold_logprob: ``{alpha: mean over items of log p(gold_text | prompt)}`` (nats) under the
            same steering as the generation; empty when the run skipped it.
        gold_logprob_ci: ``{alpha: (low, high)}`` 95% bootstrap interval of that mean.
        gold_logprob_paired: ``{alpha: PairedTest}`` against alpha 0 (paired bootstrap interval,
            sign-flip p-value).
        answer_logprob: benchmarks with an answer marker (``Benchmark.answer_marker``: GSM8K,
            MGSM, built-in arithmetic): ``{alpha: mean over items of log p(answer | prompt +
            the model's own output up to the marker)}`` (nats), the answer scored where the
            model itself reached the answer slot (``" 7."`` after ``"The final answer is"``),
            under the same steering; over the items whose output reached the marker at that
            alpha (``answer_logprob_n``; ``answer_logprob_missing`` counts the others). Empty
            for short-answer benchmarks, whose outcome is ``gold_logprob``.
        answer_logprob_ci: ``{alpha: (low, high)}`` 95% interval of that mean.
        answer_logprob_paired: ``{alpha: PairedTest}`` against alpha 0 over the items with a
            value at both alphas (its ``n``).
        answer_logprob_n, answer_logprob_missing: ``{alpha: items with / without a value}``.
        degenerate: ``{alpha: share of outputs flagged degenerate}`` (``outcomes.is_degenerate``).
        degenerate_paired: ``{alpha: PairedTest}`` against alpha 0 (McNemar).
        controls: ``{name: EvalResult}`` of each control direction over the same alphas and
            items (alpha 0 is this run's own records).
        vs_controls: ``{alpha: {control name: {"accuracy" | "gold_logprob" | "degenerate":
            PairedTest}}}``: this direction minus the control, paired by item.
        by_group: ``{alpha: {group: GroupResult}}`` when the items have groups (MMLU-Pro
            category, C-Eval subject, built-in template), else empty.
        prompt_baselines: ``{text: BaselineResult}``: each prompting baseline
            (``prompt_baselines=``), an unsteered run with the text added to each question,
            summarised and tested against alpha 0 like a steered row (:mod:`.baselines`).

    Multiple comparisons: every paired test keeps its raw ``p_value`` and gets ``p_holm``, Holm's
    adjustment within its family: per outcome (accuracy, gold log-prob, degeneration) the tests
    against alpha 0 at every alpha together with the real-minus-control tests at every alpha and
    control; and the per-group accuracy tests across groups and alphas.
    :meth:`holm_survivors` names the effects that survive at 0.05.
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
    gold_logprob: dict[float, float] = field(default_factory=dict)
    gold_logprob_ci: dict[float, tuple[float, float]] = field(default_factory=dict)
    gold_logprob_paired: dict[float, PairedTest] = field(default_factory=dict)
    answer_logprob: dict[float, float] = field(default_factory=dict)
    answer_logprob_ci: dict[float, tuple[float, float]] = field(default_factory=dict)
    answer_logprob_paired: dict[float, PairedTest] = field(default_factory=dict)
    answer_logprob_n: dict[float, int] = field(default_factory=dict)
    answer_logprob_missing: dict[float, int] = field(default_factory=dict)
    degenerate: dict[float, float] = field(default_factory=dict)
    degenerate_paired: dict[float, PairedTest] = field(default_factory=dict)
    controls: dict[str, EvalResult] = field(default_factory=dict, repr=False)
    vs_controls: dict[float, dict[str, dict[str, PairedTest]]] = field(
        default_factory=dict, repr=False
    )
    by_group: dict[float, dict[str, GroupResult]] = field(default_factory=dict, repr=False)
    prompt_baselines: dict[str, BaselineResult] = field(default_factory=dict, repr=False)

    def holm_survivors(self, level: float = HOLM_LEVEL) -> list[str]:
        """The effects whose Holm-adjusted p-value is at most ``level``, as short phrases
        (``"accuracy +0.1 vs 0 (-20.0 points)"``, ``"gold log-prob +0.1, real vs random-0"``)."""
        out = []
        names = {
            "accuracy": "accuracy",
            "gold_logprob": "gold log-prob",
            "answer_logprob": "answer log-prob",
            "degenerate": "degenerate",
        }
        tables = {
            "accuracy": self.paired,
            "gold_logprob": self.gold_logprob_paired,
            "answer_logprob": self.answer_logprob_paired,
            "degenerate": self.degenerate_paired,
        }
        for key, table in tables.items():
            for alpha, test in table.items():
                if test.p_holm is not None and test.p_holm <= level:
                    out.append(f"{names[key]} {alpha:+g} vs 0 ({_effect(key, test.diff)})")
        for b in self.prompt_baselines.values():
            for key, test in b.tests.items():
                if test.p_holm is not None and test.p_holm <= level:
                    out.append(f"{names[key]} {b.label} vs 0 ({_effect(key, test.diff)})")
        for alpha, by_name in self.vs_controls.items():
            for name, row in by_name.items():
                for key, test in row.items():
                    if test.p_holm is not None and test.p_holm <= level:
                        out.append(
                            f"{names[key]} {alpha:+g}, real vs {name} ({_effect(key, test.diff)})"
                        )
        return out

    @property
    def outcome(self) -> str:
        """The continuous outcome this benchmark reports: ``"answer_logprob"`` where its
        exemplars show working before an answer marker (``metadata["settings"]
        ["answer_marker"]``), else ``"gold_logprob"`` (short-answer benchmarks)."""
        settings = self.metadata.get("settings") or {}
        return "answer_logprob" if settings.get("answer_marker") else "gold_logprob"

    def group_rows(self) -> list[dict[str, Any]]:
        """One dict per alpha and group (what the per-group tables show)."""
        return [
            {"alpha": alpha, "group": name, **g.to_dict()}
            for alpha in self.alphas
            for name, g in self.by_group.get(alpha, {}).items()
        ]

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
                    "gold_logprob": self.gold_logprob.get(alpha),
                    "gold_logprob_ci": _listed(self.gold_logprob_ci.get(alpha)),
                    "gold_logprob_paired": _as_dict(self.gold_logprob_paired.get(alpha)),
                    "answer_logprob": self.answer_logprob.get(alpha),
                    "answer_logprob_ci": _listed(self.answer_logprob_ci.get(alpha)),
                    "answer_logprob_paired": _as_dict(self.answer_logprob_paired.get(alpha)),
                    "answer_logprob_n": self.answer_logprob_n.get(alpha),
                    "answer_logprob_missing": self.answer_logprob_missing.get(alpha),
                    "degenerate": self.degenerate.get(alpha),
                    "n_degenerate": sum(bool(r.get("degenerate")) for r in recs),
                    "degenerate_paired": _as_dict(self.degenerate_paired.get(alpha)),
                    "controls": self.control_rows(alpha),
                }
            )
        return out

    def control_rows(self, alpha: float) -> dict[str, Any] | None:
        """Each control at ``alpha``: its accuracy, gold log-prob, degeneration and the paired
        real-minus-control tests (``None`` without controls)."""
        if not self.controls:
            return None
        out: dict[str, Any] = {}
        for name, control in self.controls.items():
            tests = self.vs_controls.get(alpha, {}).get(name, {})
            out[name] = {
                "accuracy": control.accuracy[alpha],
                "gold_logprob": control.gold_logprob.get(alpha),
                "degenerate": control.degenerate.get(alpha),
                "real_minus_control": {k: v.to_dict() for k, v in tests.items()} or None,
            }
        return out

    def to_dict(self, *, records: bool = False) -> dict[str, Any]:
        """JSON-ready summary (``records=True`` adds the per-item records)."""
        out: dict[str, Any] = {
            "benchmark": self.benchmark,
            "n_items": self.n_items,
            "alphas": list(self.alphas),
            "layer": self.layer,
            "layer_source": self.layer_source,
            "outcome": self.outcome,
            "results": self.rows(),
            "prompt_baselines": [b.to_dict() for b in self.prompt_baselines.values()],
            "metadata": self.metadata,
        }
        if self.by_group:
            out["by_group"] = {
                f"{alpha!r}": {name: g.to_dict() for name, g in groups.items()}
                for alpha, groups in self.by_group.items()
            }
        out["holm_survivors"] = self.holm_survivors()
        out["indices"] = [int(r["index"]) for r in self.records if r["alpha"] == self.alphas[0]]
        if self.controls:
            out["controls"] = {
                name: (c.metadata.get("control") or {}) for name, c in self.controls.items()
            }
            out["control_results"] = {name: c.to_dict() for name, c in self.controls.items()}
        if records:
            out["records"] = self.records
        return out

    def control_records(self) -> list[dict[str, Any]]:
        """The controls' own records (their steered alphas; alpha 0 is shared with this run)."""
        return [
            r for c in self.controls.values() for r in c.records if r.get("control") is not None
        ]

    def save(self, folder: str | Path, *, records: bool = True) -> Path:
        """Write ``result.json``, ``records.jsonl`` and the lm-eval layout under ``lm_eval/``.

        All files are written atomically; ``records.jsonl`` (header line + one record per line)
        can be passed back as ``records_path`` to resume or extend the run. ``records=False``
        keeps an existing ``records.jsonl`` as it is (the run appended to it already, and it may
        hold finished records of other alphas or items that this result does not show).

        The folder is written as one unit (``lirefs.outputs.output_folder``): an earlier
        evaluation's files there are replaced, not mixed with these; a folder that holds files
        lirefs did not write is refused.
        """
        with output_folder(
            folder,
            RESULT_KIND,
            keep=() if records else ("records.jsonl",),
        ) as staging:
            write_json(staging.path / "result.json", self.to_dict())
            if records:
                write_records(
                    staging.path / "records.jsonl",
                    self.metadata,
                    self.records
                    + self.control_records()
                    + [r for b in self.prompt_baselines.values() for r in b.records],
                )
            self.save_lm_eval(staging.path / "lm_eval")
        return Path(folder)

    @classmethod
    def load(cls, folder: str | Path) -> EvalResult:
        """Read back what :meth:`save` wrote in ``folder``: every number of ``result.json``
        (accuracy, flexible accuracy, intervals, paired tests with their Holm p-values, gold
        log-prob, degeneration, per-group results, controls) and this run's records from
        ``records.jsonl`` (empty when the folder has none).

        Raises:
            ResultFileError: the folder or ``result.json`` is missing, not JSON, or not an
                evaluation result (a ``DataError``).
            MetadataMismatchError: the result was made under another layer convention.
            RecordsError: a malformed ``records.jsonl``.
        """
        return load_result(cls, Path(folder))

    def task_name(self, alpha: float) -> str:
        """The lm-eval task name of one alpha: ``<benchmark>_alpha<+alpha>``."""
        return f"{self.benchmark}_alpha{alpha:+g}"

    def lm_eval_results(self) -> dict[str, Any]:
        """The run as lm-eval's ``results_<date>.json`` (see ``lirefs.evaluation.lm_eval_files``)."""
        from .lm_eval_files import lm_eval_results

        return lm_eval_results(self)

    def save_lm_eval(self, folder: str | Path) -> Path:
        """Write lm-eval's files under ``folder`` (``lirefs.evaluation.lm_eval_files``)."""
        from .lm_eval_files import save_lm_eval

        return save_lm_eval(self, folder)

    def plot(self, path: str | Path) -> Path:
        """Accuracy against alpha with 95% error bars, as a PNG (needs matplotlib).

        Raises:
            ImportError: matplotlib is not installed (``pip install 'lirefs[plots]'``).
        """
        from .plots import plot_accuracy

        return plot_accuracy(self, path)

    def plot_dose_response(self, path: str | Path) -> Path:
        """Accuracy, gold log-probability and degeneration against alpha (effective scale on the
        top axis, controls shaded), as a PNG; see ``lirefs.evaluation.dose``.

        Raises:
            ImportError: matplotlib is not installed (``pip install 'lirefs[plots]'``).
        """
        from .dose import plot_dose_response

        return plot_dose_response(self, path)

    def __repr__(self) -> str:
        accs = ", ".join(f"{a:+g}: {self.accuracy[a]:.3f}" for a in self.alphas)
        return f"EvalResult({self.benchmark!r}, n_items={self.n_items}, accuracy={{{accs}}})"


def _effect(key: str, diff: float) -> str:
    if key in ("gold_logprob", "answer_logprob"):
        return f"{diff:+.2f} nats"
    return f"{100 * diff:+.1f} points"


def _listed(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else list(ci)


def _as_dict(value: PairedTest | None) -> dict[str, Any] | None:
    return None if value is None else value.to_dict()
