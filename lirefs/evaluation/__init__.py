"""Evaluation: benchmark accuracy under steering, with intervals, paired tests and resumable records.

The flow: a benchmark (:mod:`.tasks`, one module per task family) gives items and prompts;
:func:`evaluate` (:mod:`.run`) generates once per alpha and reads each answer; :mod:`.stats` gives
the intervals and tests; :class:`EvalResult` (:mod:`.result`) holds the numbers, saves them and
plots them (:mod:`.plots`); :mod:`.records` keeps the per-item records resumable on disk.
:class:`EvalConfig` (:mod:`.config`) holds a run's settings, checked once; :mod:`.scoring` reads
and judges one output; :mod:`.summary` turns records into an ``EvalResult`` (per alpha and per
group, Holm-adjusted p-values); ``EvalResult.load`` (:mod:`.result_io`) reads a saved one back.

    result = lirefs.evaluate(model, "gsm8k", direction=liref, alphas=(0.0, 0.1))
    result.accuracy[0.1], result.ci[0.1], result.paired[0.1].p_value, result.paired[0.1].p_holm
"""

from __future__ import annotations

from . import tasks
from .baselines import BaselineResult
from .config import EvalConfig
from .engines import EvalEngine, FullPromptEngine
from .records import RECORDS_FORMAT, RESUME_KEYS, Record, RecordsError
from .result import EvalResult, GroupResult, PairedResult, ResultFileError
from .run import evaluate
from .stats import PairedTest, bootstrap_ci, holm, mcnemar_exact, paired_bootstrap_ci
from .tasks import Benchmark, BenchmarkData, Item, benchmarks, get_benchmark, register

__all__ = [
    "RECORDS_FORMAT",
    "RESUME_KEYS",
    "BaselineResult",
    "Benchmark",
    "BenchmarkData",
    "EvalConfig",
    "EvalEngine",
    "EvalResult",
    "FullPromptEngine",
    "GroupResult",
    "Item",
    "PairedResult",
    "PairedTest",
    "Record",
    "RecordsError",
    "ResultFileError",
    "benchmarks",
    "bootstrap_ci",
    "evaluate",
    "get_benchmark",
    "holm",
    "mcnemar_exact",
    "paired_bootstrap_ci",
    "register",
    "tasks",
]
