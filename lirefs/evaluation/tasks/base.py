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
from .extract import QA_STOP, split_thinking

__all__ = [
    "FINAL_ANSWER",
    "BadRow",
    "Benchmark",
    "BenchmarkData",
    "Item",
    "MissingColumn",
    "PromptParts",
    "RowParser",
    "answer_is_form",
    "benchmarks",
    "continuation",
    "final_answer_form",
    "get_benchmark",
    "parse_builtin_row",
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


class MissingColumn(BadRow):
    """A row without a column the benchmark needs (``column``): usually the whole file lacks it."""

    def __init__(self, message: str, column: str) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class PromptParts:
    """A k-shot prompt in its pieces, so it can be written as plain text or as chat turns.

    The plain prompt is ``preamble + (shot question + shot answer + sep) * k + question``
    (the paper's framing), except that the item's question ends without its trailing spaces
    (``"...\nA:"``, not ``"...\nA: "``): the space that opens the answer belongs to the answer,
    as in lm-eval's target delimiter. A prompt ending in a lone space token is out of
    distribution for sentencepiece and byte-level BPE tokenizers alike (every exemplar has
    ``":" "▁The"``, never ``":" "▁"``): measured on 16 built-in facts items, SmolLM2-135M's strict
    accuracy went from 2/16 to 5/16 and Gemma-3-270M's from 4/16 to 6/16 without it, and
    Gemma-3-270M stopped starting every answer with ``"1"``.

    As chat turns (lm-eval's multi-turn few-shot convention), each exemplar is a user turn (its
    question) and an assistant turn (its worked answer), the preamble opens the first user turn,
    and the item's question is the last user turn.

    Attributes:
        preamble: text before the first exemplar (an instruction line), possibly empty.
        shots: ``(question text, answer text)`` per exemplar, as written in the plain prompt.
        question: the item's question text (ends where the model's answer starts).
        sep: what follows each exemplar's answer in the plain prompt.
    """

    preamble: str
    shots: tuple[tuple[str, str], ...]
    question: str
    sep: str = "\n\n"

    def text(self) -> str:
        """The plain prompt (ending where the answer's first space would be)."""
        body = "".join(q + a + self.sep for q, a in self.shots)
        return self.preamble + body + self.question.rstrip(" ")

    def messages(self, system_prompt: str | None = None) -> list[dict[str, str]]:
        """The prompt as chat messages (``[{"role": ..., "content": ...}, ...]``)."""
        out: list[dict[str, str]] = []
        if system_prompt:
            out.append({"role": "system", "content": system_prompt})
        preamble = self.preamble
        for question, answer in self.shots:
            out.append({"role": "user", "content": (preamble + question).strip()})
            out.append({"role": "assistant", "content": answer.strip()})
            preamble = ""
        out.append({"role": "user", "content": (preamble + self.question).strip()})
        return out


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
        """The full k-shot plain prompt for ``item``."""
        return self.parts(item).text()

    def parts(self, item: Item, n_shots: int | None = None) -> PromptParts:
        """The pieces of ``item``'s prompt, with its first ``n_shots`` exemplars (default all)."""
        shots = self.shots_for(item)
        if n_shots is not None:
            shots = shots[:n_shots]
        return self.benchmark.prompt_parts(item, shots)

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
        prompt_parts: ``(item, exemplars) -> PromptParts`` (plain text or chat turns).
        extractor: ``(output, stop) -> answer or None`` (strict reading).
        is_correct: ``(extracted answer, item) -> bool``.
        loader: reads the items and exemplars (see :data:`Loader`).
        grouped: exemplars must share the item's group (MMLU-Pro category, C-Eval subject).
        columns: header of headerless TSV files (MGSM's original files), else ``None``.
        stop: where the model starts a question of its own; generation stops there and the
            answer is searched before it (``"\\nQ:"``, C-Eval ``"\\n问题："``). The one place a
            benchmark's stop is set: the extractors are given it.
        flexible_extractor: ``(output, stop) -> answer or None``, the flexible reading
            (``\\boxed{}`` first, else the last number / letter); ``None``: the strict one.
        thinking_max_new_tokens: default generation length for thinking models (the think block
            comes before the answer).
        gold_form: ``item -> gold continuation`` in the exemplars' answer form (e.g.
            ``"The final answer is 42."``), whose log-probability after the prompt is the
            ``gold_logprob`` outcome; ``None``: the gold answer itself.
        answer_marker: for benchmarks whose exemplars show their working before the answer
            (GSM8K, MGSM, built-in arithmetic: ``"... 3 + 4 = 7. The final answer is 7."``), the
            phrase just before the answer (``"The final answer is"``): the continuous outcome is
            then ``answer_logprob``, the answer's log-probability after the model's own working
            up to this phrase (see :meth:`answer_text`). ``None``: a short-answer benchmark,
            whose outcome is ``gold_logprob``.
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
    prompt_parts: Callable[[Item, Sequence[Item]], PromptParts]
    extractor: Callable[[str, str], str | None]
    is_correct: Callable[[str | None, Item], bool]
    loader: Loader
    grouped: bool = False
    columns: tuple[str, ...] | None = None
    stop: str = QA_STOP
    flexible_extractor: Callable[[str, str], str | None] | None = None
    thinking_max_new_tokens: int = 4096
    gold_form: Callable[[Item], str] | None = None
    answer_marker: str | None = None

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

    def build_prompt(self, item: Item, shots: Sequence[Item]) -> str:
        """The plain prompt of ``item`` after the exemplars ``shots``."""
        return self.prompt_parts(item, shots).text()

    def extract(self, output: str) -> str | None:
        """The strict reading of ``output``: the benchmark's own answer phrase, else ``None``.

        A think block (``<think>...</think>``) is skipped: the answer is read after it, and an
        output that opens one without closing it has no answer.
        """
        _, answer = split_thinking(output)
        return None if answer is None else self.extractor(answer, self.stop)

    def extract_flexible(self, output: str) -> str | None:
        """The flexible reading of ``output`` (lm-eval's "flexible-extract"): the last
        ``\\boxed{...}`` when there is one, else the last number (numeric benchmarks; read whole
        or not at all) or option letter (multiple choice) of the answer region; the whole answer
        region for containment benchmarks. Think blocks are skipped as in :meth:`extract`."""
        _, answer = split_thinking(output)
        if answer is None:
            return None
        reader = self.flexible_extractor or self.extractor
        return reader(answer, self.stop)

    def correct(self, extracted: str | None, item: Item) -> bool:
        """Whether an extracted answer is right for ``item`` (``None`` is wrong)."""
        return bool(extracted is not None and self.is_correct(extracted, item))

    def score(self, output: str, item: Item) -> tuple[str | None, bool]:
        """``(extracted, correct)`` for one model output, strict reading."""
        extracted = self.extract(output)
        return extracted, self.correct(extracted, item)

    def score_flexible(self, output: str, item: Item) -> tuple[str | None, bool]:
        """``(extracted, correct)`` for one model output, flexible reading."""
        extracted = self.extract_flexible(output)
        return extracted, self.correct(extracted, item)

    def gold_text(self, item: Item) -> str:
        """The gold continuation of ``item``'s prompt, in the exemplars' answer form.

        It is tokenized alone (no special tokens) and appended to the prompt's ids to score
        ``log p(gold_text | prompt)``; see ``lirefs.evaluation.outcomes.gold_logprobs``.
        """
        return self.gold_form(item) if self.gold_form is not None else item.answer

    def answer_text(self, item: Item) -> str | None:
        """The gold answer as scored right after :attr:`answer_marker`: the rest of
        :meth:`gold_text` after the marker, i.e. a space, the answer and the exemplars' closing
        period (``" 7."`` for ``"The final answer is 7."``); the period is scored too, so
        ``" 7"`` followed by more digits does not count. ``None`` without a marker.

        Raises:
            DataError: the gold text does not start with the marker (a benchmark whose two
                settings disagree).
        """
        marker = self.answer_marker
        if marker is None:
            return None
        gold = self.gold_text(item)
        if not gold.startswith(marker) or len(gold) == len(marker):
            raise DataError(
                f"benchmark {self.name!r}: the gold text {gold!r} does not start with its answer "
                f"marker {marker!r}; set gold_form and answer_marker to the same phrase"
            )
        return gold[len(marker) :]


def continuation(prompt: str, text: str) -> str:
    """``text`` as the continuation of ``prompt``: with one space before it unless either side
    already has whitespace at the join (lm-eval's target delimiter).

    Scored continuations are tokenized alone and appended to the prompt's ids, so the join must
    be where the tokenizer would split the whole text anyway: ``"A:"`` + ``" The answer is 4."``
    tokenizes as the two pieces do, ``"A: "`` + ``"The answer is 4."`` does not. A chat prompt
    ends with its template's newline and takes ``text`` as it is.
    """
    if not prompt or not text or prompt[-1].isspace() or text[0].isspace():
        return text
    return " " + text


#: What the numeric exemplars' worked answers say just before the answer.
FINAL_ANSWER = "The final answer is"


def final_answer_form(item: Item) -> str:
    """``"The final answer is <answer>."``: how the numeric exemplars (GSM8K, MGSM, built-in
    arithmetic) end, so the gold continuation skips the worked steps and states the answer."""
    return f"{FINAL_ANSWER} {item.answer}."


def answer_is_form(item: Item) -> str:
    """``"The answer is <answer>."``: the built-in facts exemplars' whole answer."""
    return f"The answer is {item.answer}."


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


def parse_builtin_row(row: Mapping[str, Any], where: str, n: int) -> Item:
    """A row of a built-in items file (``id``, ``question``, ``answer``, optional ``aliases`` and
    ``group``); :func:`load_builtin` reads the shipped files through ``lirefs.data`` instead."""
    try:
        question, answer = str(row["question"]), str(row["answer"])
    except KeyError as exc:
        raise BadRow(f"no {exc.args[0]!r} field") from None
    ident = str(row["id"]) if row.get("id") not in (None, "") else f"{n - 1}"
    aliases = tuple(str(a) for a in row.get("aliases") or ())
    group = row.get("group")
    return Item(
        ident, question, answer, aliases=aliases, group=None if group is None else str(group)
    )
