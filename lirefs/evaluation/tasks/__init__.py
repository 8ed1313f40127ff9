"""Evaluation tasks ("benchmarks"): one module per task family, each registering itself.

:mod:`.base` defines :class:`Item`, :class:`BenchmarkData`, :class:`Benchmark` and the registry;
:mod:`.extract` reads answers from outputs; :mod:`.formats` names the three answer formats
(numeric, multiple choice, containment: prompt, readings, verdict, gold form); :mod:`.loading`
reads rows from local files and the Hub. A new benchmark family is a new module here that imports
only :mod:`.base`, :mod:`.formats`, :mod:`.extract` and :mod:`.loading`, builds its row parser,
takes a format (``**NUMERIC.fields()``) and calls :func:`register`, plus one name in the import
line below.
"""

from __future__ import annotations

from . import builtin, ceval, gsm8k, ladder, mgsm, mmlu_pro, popqa  # noqa: F401  (they register)
from .base import BadRow, Benchmark, BenchmarkData, Item, benchmarks, get_benchmark, register
from .ceval import CEVAL_HUMANITIES
from .extract import (
    CEVAL_STOP,
    QA_STOP,
    answer_region,
    contains_any,
    extract_ceval,
    extract_choice,
    extract_first_line,
    extract_number,
    numbers_equal,
    parse_number,
)
from .formats import CONTAINMENT, FORMATS, MULTIPLE_CHOICE, NUMERIC, AnswerFormat
from .loading import read_table
from .mgsm import MGSM_LANGUAGES

__all__ = [
    "CEVAL_HUMANITIES",
    "CEVAL_STOP",
    "CONTAINMENT",
    "FORMATS",
    "MGSM_LANGUAGES",
    "MULTIPLE_CHOICE",
    "NUMERIC",
    "QA_STOP",
    "AnswerFormat",
    "BadRow",
    "Benchmark",
    "BenchmarkData",
    "Item",
    "answer_region",
    "benchmarks",
    "contains_any",
    "extract_ceval",
    "extract_choice",
    "extract_first_line",
    "extract_number",
    "get_benchmark",
    "numbers_equal",
    "parse_number",
    "read_table",
    "register",
]
