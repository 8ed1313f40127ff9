"""What a benchmark is: items, loaded data, the :class:`Benchmark` definition and the registry.

A :class:`Benchmark` bundles everything ``lirefs.evaluate`` needs for one task:

* a **loader**: the Hugging Face Hub through ``datasets.load_dataset`` (``data_path=None``) or a
  local file/folder in the same columns (see :mod:`lirefs.evaluation.tasks.loading`);
* the **few-shot exemplars**, taken from the benchmark's own train/dev/validation split, never from
  the items being scored;
* a **prompt builder** (``"Q: ...\\nA: "`` framing, docs/method.md, with k exemplars before);
* an **extractor** (output -> answer string, or ``None`` when there is no answer) and a **scorer**.

Each benchmark family lives in its own module of :mod:`lirefs.evaluation.tasks` and registers
itself with :func:`register` when imported; :func:`benchmarks` lists the names and
:func:`get_benchmark` returns one definition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...store import hash_texts
from .extract import QA_STOP

__all__ = [
    "BadRow",
    "Benchmark",
    "BenchmarkData",
    "Item",
    "RowParser",
    "benchmarks",
    "get_benchmark",
    "register",
]


@dataclass(frozen=True)
class Item:
    """One benchmark question.

    Attributes:
        id: stable identifier (the dataset's own id when it has one, else the split and row).
        question: the question text as the dataset gives it.
        answer: the gold answer: a number as a string, an option letter, or the main accepted answer.
        aliases: further accepted answers (PopQA ``possible_answers``, built-in aliases).
        choices: option texts in letter order (multiple-choice benchmarks), else empty.
        rationale: worked solution used when the item is a few-shot exemplar.
        group: MMLU-Pro category or C-Eval subject; exemplars are matched to items by group.
    """

    id: str
    question: str
    answer: str
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    rationale: str | None = None
    group: str | None = None

    @property
    def accepted(self) -> tuple[str, ...]:
        """The gold answer followed by its aliases."""
        return (self.answer, *self.aliases)


class BadRow(Exception):
    """A data row that cannot become an :class:`Item`.

    Raised by row parsers; the loader catches it and reports it with the row's location (or skips
    the row under ``skip_bad_rows``). Never reaches the user as is.
    """


@dataclass
class BenchmarkData:
    """Loaded items and exemplars of one benchmark.

    Attributes:
        benchmark: the definition the data belongs to.
        items: the items to score, in dataset order.
        shots: exemplars by group (``None`` key when the benchmark has no groups).
        source: where the data came from (Hub id + config/split, or local paths).
        skipped: ``"where: why"`` for each malformed row skipped under ``skip_bad_rows``.
    """

    benchmark: Benchmark
    items: list[Item]
    shots: dict[str | None, list[Item]]
    source: str
    skipped: list[str] = field(default_factory=list)

    def shots_for(self, item: Item) -> list[Item]:
        """The ``n_shots`` exemplars used before ``item`` (same group when grouped)."""
        k = self.benchmark.n_shots
        if k == 0:
            return []
        pool = self.shots.get(item.group if self.benchmark.grouped else None, [])
        if len(pool) < k:
            where = f" for {item.group!r}" if self.benchmark.grouped else ""
            raise DataError(
                f"{self.benchmark.name} needs {k} exemplars{where} from its "
                f"{self.benchmark.shot_split!r} split but {self.source} has {len(pool)}; "
                "add the missing exemplar rows"
            )
        return pool[:k]

    def prompt(self, item: Item) -> str:
        """The full k-shot prompt for ``item``."""
        return self.benchmark.build_prompt(item, self.shots_for(item))

    def prompts(self) -> list[str]:
        """Every item's prompt, in item order."""
        return [self.prompt(item) for item in self.items]

    def hash(self) -> str:
        """Hash of every prompt and gold answer (detects changed data on resume)."""
        parts = []
        for item in self.items:
            parts.append(self.prompt(item))
            parts.append("\x1f".join(item.accepted))
        return hash_texts(parts, self.benchmark.name)


#: ``parse(row, where, n) -> Item``: one data row (``where`` names it, ``n`` is its 1-based number);
#: raises :class:`BadRow` for a row that cannot become an item.
RowParser = Callable[[Mapping[str, Any], str, int], Item]

#: ``loader(benchmark, data_path or None for the Hub, skip_bad_rows) -> BenchmarkData``.
Loader = Callable[["Benchmark", "Path | None", bool], BenchmarkData]


@dataclass(frozen=True)
class Benchmark:
    """One evaluation task.

    Attributes:
        name: registry name (``"gsm8k"``, ``"mgsm-zh"`` ...).
        kind: ``"reasoning"`` or ``"memory"`` (which side of the LiReF the task leans on).
        description: one line for listings and docs.
        source: Hub dataset id, or ``"lirefs builtin"``.
        config: Hub config names the items come from (e.g. the MGSM language, C-Eval subjects).
        eval_split: split whose items are scored.
        shot_split: split the exemplars come from (``None`` for zero-shot).
        n_shots: exemplars per prompt.
        max_new_tokens: default generation length.
        answer_type: ``"numeric"``, ``"choice"`` or ``"contains"``.
        parse_eval: row parser of the scored split.
        parse_shot: row parser of the exemplar split (``None`` for zero-shot).
        build_prompt: ``(item, exemplars) -> prompt``.
        extractor: ``(output, stop) -> answer or None`` (strict reading).
        is_correct: ``(extracted answer, item) -> bool``.
        loader: reads the items and exemplars (see :data:`Loader`).
        grouped: exemplars must share the item's group (MMLU-Pro category, C-Eval subject).
        columns: header of headerless TSV files (MGSM's original files), else ``None``.
        stop: where the model starts a question of its own; generation stops there and the
            answer is searched before it (``"\\nQ:"``, C-Eval ``"\\n问题："``). The one place a
            benchmark's stop is set: the extractor is given it.
    """

    name: str
    kind: str
    description: str
    source: str
    config: tuple[str | None, ...]
    eval_split: str
    shot_split: str | None
    n_shots: int
    max_new_tokens: int
    answer_type: str
    parse_eval: RowParser
    parse_shot: RowParser | None
    build_prompt: Callable[[Item, Sequence[Item]], str]
    extractor: Callable[[str, str], str | None]
    is_correct: Callable[[str | None, Item], bool]
    loader: Loader
    grouped: bool = False
    columns: tuple[str, ...] | None = None
    stop: str = QA_STOP

    def load(
        self, data_path: str | Path | None = None, *, skip_bad_rows: bool = False
    ) -> BenchmarkData:
        """Load the items and exemplars (Hub when ``data_path`` is ``None``, else local files).

        Raises:
            DataError: missing files, a Hub failure, malformed rows (unless ``skip_bad_rows``),
                or no items at all.
        """
        path = Path(data_path).expanduser() if data_path is not None else None
        if path is not None and not path.exists():
            raise DataError(
                f"data path {str(data_path)!r} does not exist; point --data-path at a file or "
                f"folder with the {self.name} {self.eval_split!r} split"
            )
        data = self.loader(self, path, skip_bad_rows)
        if not data.items:
            raise DataError(f"{data.source} holds no {self.name} items; check the file")
        for item in data.items[:1]:
            data.shots_for(item)  # fail early when exemplars are missing
        return data

    def extract(self, output: str) -> str | None:
        """The strict reading of ``output``: the benchmark's own answer phrase, else ``None``."""
        return self.extractor(output, self.stop)

    def score(self, output: str, item: Item) -> tuple[str | None, bool]:
        """``(extracted, correct)`` for one model output."""
        extracted = self.extract(output)
        return extracted, bool(extracted is not None and self.is_correct(extracted, item))


_REGISTRY: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    """Add a benchmark to the registry (name must be new)."""
    if benchmark.name in _REGISTRY:
        raise DataError(f"benchmark {benchmark.name!r} is already registered; choose another name")
    _REGISTRY[benchmark.name] = benchmark
    return benchmark


def benchmarks() -> list[str]:
    """Names of every known benchmark, sorted."""
    return sorted(_REGISTRY)


def get_benchmark(name: str | Benchmark) -> Benchmark:
    """The :class:`Benchmark` called ``name`` (a ``Benchmark`` is returned as is).

    Raises:
        DataError: unknown name; the message lists the known ones.
    """
    if isinstance(name, Benchmark):
        return name
    if name not in _REGISTRY:
        raise DataError(f"unknown benchmark {name!r}; known benchmarks: {', '.join(benchmarks())}")
    return _REGISTRY[name]
