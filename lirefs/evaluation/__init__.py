"""Evaluation: benchmark accuracy under steering, with intervals, paired tests and resumable records.

The flow: a benchmark (:mod:`.tasks`, one module per task family) gives items and prompts;
:func:`evaluate` (:mod:`.run`) generates once per alpha and reads each answer; :mod:`.stats` gives
the intervals and tests; :class:`EvalResult` (:mod:`.result`) holds the numbers, saves them and
plots them (:mod:`.plots`); :mod:`.records` keeps the per-item records resumable on disk.

    result = lirefs.evaluate(model, "gsm8k", direction=liref, alphas=(0.0, 0.1))
    result.accuracy[0.1], result.ci[0.1], result.paired[0.1].p_value
"""

from __future__ import annotations

from . import tasks
from .records import RECORDS_FORMAT, RESUME_KEYS
from .result import EvalResult, PairedResult
from .run import evaluate
from .stats import bootstrap_ci, mcnemar_exact, paired_bootstrap_ci
from .tasks import Benchmark, BenchmarkData, Item, benchmarks, get_benchmark, register

__all__ = [
    "RECORDS_FORMAT",
    "RESUME_KEYS",
    "Benchmark",
    "BenchmarkData",
    "EvalResult",
    "Item",
    "PairedResult",
    "benchmarks",
    "bootstrap_ci",
    "evaluate",
    "get_benchmark",
    "mcnemar_exact",
    "paired_bootstrap_ci",
    "register",
    "tasks",
]
