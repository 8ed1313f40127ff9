"""Evaluation benchmarks: where the items come from, how prompts are built, how answers are read.

A :class:`Benchmark` bundles everything ``lirefs.evaluate`` needs for one task:

* a **loader**: the Hugging Face Hub through ``datasets.load_dataset`` (``data_path=None``) or a
  local file/folder in the same columns (JSONL, JSON, CSV, TSV or parquet);
* the **few-shot exemplars**, taken from the benchmark's own train/dev/validation split, never from
  the items being scored;
* a **prompt builder** (``"Q: ...\\nA: "`` framing, METHOD.md section 2, with k exemplars before);
* an **extractor** (output -> answer string, or ``None`` when there is no answer) and a **scorer**.

Extraction policy (strict): the output is first cut where the model starts a new exemplar of its own
(``"\\nQ:"``, or ``"\\n问题："`` for C-Eval); within what remains the answer pattern is searched with
``re.search``, so the FIRST match wins. An output with no match has no answer and counts as wrong:
there is never a random-guess fallback.

Numeric answers (GSM8K, MGSM, built-in arithmetic) extend the paper's regex
``The final answer is (\\d+\\.?\\d*)`` to an optional leading minus sign and thousands separators
(``1,234``), and compare numerically as exact decimals: ``12.0`` equals ``12``, ``1,234`` equals
``1234``, ``-5`` equals ``-5`` (the paper's regex cannot match a negative number at all).

Containment answers (PopQA, built-in facts) are case-insensitive and whole-word: an accepted answer
counts only where it is not part of a longer word (PopQA's alias ``"CA"`` is not found in
``"because"``). PopQA searches the whole answer region, built-in facts its first non-empty line.

``lirefs.benchmarks()`` lists the names; :func:`get_benchmark` returns one definition.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import DataError
from .store import hash_texts

__all__ = [
    "CEVAL_HUMANITIES",
    "MGSM_LANGUAGES",
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

#: MGSM languages (juletxara/mgsm configs).
MGSM_LANGUAGES = ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")

#: C-Eval subjects of the "Humanities" category (ceval/ceval-exam configs) -> Chinese name.
CEVAL_HUMANITIES: dict[str, str] = {
    "modern_chinese_history": "近代史纲要",
    "ideological_and_moral_cultivation": "思想道德修养与法律基础",
    "logic": "逻辑学",
    "law": "法学",
    "chinese_language_and_literature": "中国语言文学",
    "art_studies": "艺术学",
    "professional_tour_guide": "导游资格",
    "legal_professional": "法律职业资格",
    "high_school_chinese": "高中语文",
    "high_school_history": "高中历史",
    "middle_school_history": "初中历史",
}

_TABLE_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
_LETTERS = "ABCDEFGHIJ"


# ---------------------------------------------------------------------------------------------
# items


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


class _BadRow(Exception):
    """A row that cannot become an :class:`Item` (caught and reported with its row number)."""


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
        return [self.prompt(item) for item in self.items]

    def hash(self) -> str:
        """Hash of every prompt and gold answer (detects changed data on resume)."""
        parts = []
        for item in self.items:
            parts.append(self.prompt(item))
            parts.append("\x1f".join(item.accepted))
        return hash_texts(parts, self.benchmark.name)


# ---------------------------------------------------------------------------------------------
# extraction and scoring

_NUMBER = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_FINAL_ANSWER = re.compile(r"the final answer is[:\s]*\$?\s*(" + _NUMBER + r")", re.IGNORECASE)
_CHOICE = re.compile(r"(?i:answer is)\s*\(?([A-J])(?![A-Za-z0-9])")
#: Where a continuation starts a question of its own (C-Eval prompts are framed in Chinese).
QA_STOP = "\nQ:"
CEVAL_STOP = "\n问题："
_CEVAL = re.compile(r"所以答案是\s*[:：]?\s*([ABCD])(?![A-Za-z0-9])")


def answer_region(output: str, stop: str = QA_STOP) -> str:
    """``output`` up to where the model starts a new question of its own (``stop``)."""
    cut = output.find(stop)
    return output if cut < 0 else output[:cut]


def _canonical(number: Decimal) -> str:
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def parse_number(text: str) -> Decimal | None:
    """``"1,234"`` -> 1234, ``"-5"`` -> -5, ``"12.0"`` -> 12.0; ``None`` if not a number."""
    cleaned = text.strip().replace(",", "")
    if not re.fullmatch(r"-?\d+(?:\.\d+)?", cleaned):
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def extract_number(output: str) -> str | None:
    """The number after the first ``The final answer is`` (case-insensitive), canonicalised.

    Accepts an optional colon and dollar sign after the marker, a leading minus, thousands
    separators and decimals: ``"The final answer is 1,234."`` -> ``"1234"``, ``"... is 12.0"`` ->
    ``"12"``, ``"... is -5"`` -> ``"-5"``. A sentence-ending full stop is not part of the number.
    Returns ``None`` when the marker (followed by a number) is absent.
    """
    match = _FINAL_ANSWER.search(answer_region(output))
    if match is None:
        return None
    number = parse_number(match.group(1))
    return None if number is None else _canonical(number)


def numbers_equal(extracted: str | None, gold: str) -> bool:
    """Exact numeric equality of two decimal strings (commas allowed); ``None`` is wrong."""
    if extracted is None:
        return False
    a, b = parse_number(extracted), parse_number(gold)
    return a is not None and b is not None and a == b


def extract_choice(output: str, letters: str = _LETTERS) -> str | None:
    """The letter of the first ``answer is (X)`` / ``answer is X`` (MMLU-Pro regex).

    The paper's ``answer is \\(?([A-J])\\)?`` with two strict changes: ``answer is`` matches in
    any case (``"The answer is"``), and the letter must not be the start of a word
    (``"the answer is Correct"`` has no answer). Only letters in ``letters`` count.
    """
    match = _CHOICE.search(answer_region(output))
    if match is None or match.group(1) not in letters:
        return None
    return match.group(1)


def extract_ceval(output: str) -> str | None:
    """The letter of the first ``所以答案是X`` (spaces or a colon allowed before the letter)."""
    match = _CEVAL.search(answer_region(output, CEVAL_STOP))
    return None if match is None else match.group(1)


def _says_something(text: str) -> bool:
    """Whether ``text`` has a letter or digit (any script): ``"$$$$"`` or ``"..."`` answers nothing."""
    return any(ch.isalnum() for ch in text)


def extract_first_line(output: str) -> str | None:
    """The first non-empty line of the answer region, stripped.

    ``None`` (no answer) when there is no such line, or when it has no letter or digit: a
    collapsed output like ``"$$$$"`` is not an answer, so it counts in the no-answer rate.
    """
    for line in answer_region(output).splitlines():
        if line.strip():
            return line.strip() if _says_something(line) else None
    return None


def _casefold(text: str) -> str:
    return " ".join(text.casefold().split())


def contains_any(text: str | None, accepted: Sequence[str], *, whole_words: bool) -> bool:
    """Case-insensitive containment of any accepted answer in ``text``.

    With ``whole_words`` the match must not sit inside a longer word (``"Tin"`` does not accept
    ``"Ti"``); whitespace runs compare as one space.
    """
    if text is None:
        return False
    hay = _casefold(text)
    for answer in accepted:
        needle = _casefold(answer)
        if not needle:
            continue
        if not whole_words:
            if needle in hay:
                return True
            continue
        pattern = r"(?<!\w)" + re.escape(needle) + r"(?!\w)"
        if re.search(pattern, hay):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# reading local tables


def read_table(path: Path, *, columns: Sequence[str] | None = None) -> Iterator[tuple[str, dict]]:
    """Rows of a JSONL/JSON/CSV/TSV/parquet file as ``(where, row)``, ``where`` = ``"file row N"``.

    CSV and TSV files need a header row, unless ``columns`` is given and the first row does not
    name all of them: then every row, the first included, is data in that column order
    (MGSM's original TSV files have no header; the official code lost their first item by treating
    it as one).

    Raises:
        DataError: the file is missing, has an unsupported suffix, or is not valid in its format.
    """
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist; check --data-path")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _read_jsonl(path)
    elif suffix == ".json":
        yield from _read_json(path)
    elif suffix in (".csv", ".tsv"):
        yield from _read_delimited(path, "\t" if suffix == ".tsv" else ",", columns)
    elif suffix == ".parquet":
        yield from _read_parquet(path)
    else:
        raise DataError(
            f"data file {str(path)!r} has suffix {suffix!r}; expected one of "
            f"{', '.join(_TABLE_SUFFIXES)}"
        )


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    with open(path, encoding="utf-8") as fh:
        n = 0
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            n += 1
            where = f"{path} row {n} (line {line_no})"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield where, {"__error__": f"not valid JSON ({exc.msg})"}
                continue
            if not isinstance(row, dict):
                yield where, {"__error__": f"expected a JSON object, got {type(row).__name__}"}
                continue
            yield where, row


def _read_json(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); fix the file") from None
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), list):
        data = next(iter(data.values()))
    if not isinstance(data, list):
        raise DataError(f"{path} must hold a JSON list of row objects; got {type(data).__name__}")
    for n, row in enumerate(data, 1):
        where = f"{path} row {n}"
        if not isinstance(row, dict):
            yield where, {"__error__": f"expected a JSON object, got {type(row).__name__}"}
        else:
            yield where, row


def _read_delimited(
    path: Path, delimiter: str, columns: Sequence[str] | None
) -> Iterator[tuple[str, dict]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header: list[str] | None = None
        n = 0
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            if header is None:
                stripped = [c.strip().lstrip("\ufeff") for c in cells]
                if columns is None or set(columns) <= set(stripped):
                    header = stripped
                    continue
                header = list(columns)
            n += 1
            where = f"{path} row {n} (line {reader.line_num})"
            if len(cells) != len(header):
                yield (
                    where,
                    {
                        "__error__": f"has {len(cells)} fields, expected {len(header)} ({', '.join(header)})"
                    },
                )
                continue
            yield where, dict(zip(header, cells, strict=True))


def _read_parquet(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"reading {path} needs pyarrow: pip install pyarrow (or lirefs[datasets])"
        ) from None
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path} is not a readable parquet file: {exc}") from None
    for n, row in enumerate(rows, 1):
        yield f"{path} row {n}", row


def _split_file(folder: Path, split: str, *, prefix: str = "") -> Path | None:
    """The one file in ``folder`` holding ``split``: ``<split>.<ext>``, ``<split>-*.<ext>`` (Hub
    parquet shards), ``<prefix>_<split>.<ext>`` or ``*_<split>.<ext>``."""
    found = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.suffix.lower() not in _TABLE_SUFFIXES:
            continue
        stem = p.name[: -len(p.suffix)]
        if (
            stem == split
            or stem.startswith(f"{split}-")
            or (prefix and stem == f"{prefix}_{split}")
            or (not prefix and stem.endswith(f"_{split}"))
        ):
            found.append(p)
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DataError(
            f"{folder} holds several files for split {split!r} ({names}); keep one of them"
        )
    return found[0] if found else None


# ---------------------------------------------------------------------------------------------
# the benchmark definition


RowParser = Callable[[Mapping[str, Any], str, int], Item]


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
        grouped: exemplars must share the item's group (MMLU-Pro category, C-Eval subject).
        columns: header of headerless TSV files (MGSM's original files), else ``None``.
        stop: where the model starts a question of its own; generation stops there and the
            answer is searched before it (``"\\nQ:"``, C-Eval ``"\\n问题："``).
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
    extract: Callable[[str], str | None]
    is_correct: Callable[[str | None, Item], bool]
    grouped: bool = False
    columns: tuple[str, ...] | None = None
    stop: str = QA_STOP
    loader: Callable[[Benchmark, Path | None, bool], BenchmarkData] | None = None

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
        loader = self.loader or _load_standard
        data = loader(self, path, skip_bad_rows)
        if not data.items:
            raise DataError(f"{data.source} holds no {self.name} items; check the file")
        for item in data.items[:1]:
            data.shots_for(item)  # fail early when exemplars are missing
        return data

    def score(self, output: str, item: Item) -> tuple[str | None, bool]:
        """``(extracted, correct)`` for one model output."""
        extracted = self.extract(output)
        return extracted, bool(extracted is not None and self.is_correct(extracted, item))


_REGISTRY: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    """Add a benchmark to the registry (name must be new)."""
    if benchmark.name in _REGISTRY:
        raise ValueError(f"benchmark {benchmark.name!r} is already registered")
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


# ---------------------------------------------------------------------------------------------
# loading


def _collect(
    bench: Benchmark,
    rows: Iterator[tuple[str, Mapping[str, Any]]],
    parse: RowParser,
    skip_bad_rows: bool,
    skipped: list[str],
) -> list[Item]:
    items: list[Item] = []
    seen: set[str] = set()
    for n, (where, row) in enumerate(rows, 1):
        try:
            if "__error__" in row:
                raise _BadRow(str(row["__error__"]))
            item = parse(row, where, n)
            if item.id in seen:
                raise _BadRow(f"duplicate id {item.id!r}")
        except _BadRow as exc:
            if not skip_bad_rows:
                raise DataError(
                    f"{bench.name}: {where}: {exc}; fix the row or pass skip_bad_rows=True "
                    "(--skip-bad-rows) to leave it out"
                ) from None
            skipped.append(f"{where}: {exc}")
            continue
        seen.add(item.id)
        items.append(item)
    return items


def _hub_rows(
    bench: Benchmark, config: str | None, split: str
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"loading {bench.name} from the Hub needs the datasets package: "
            "pip install 'lirefs[datasets]', or pass data_path= to local files"
        ) from None
    args = (bench.source, config) if config is not None else (bench.source,)
    try:
        ds = datasets.load_dataset(*args, split=split)
    except Exception as exc:  # the Hub and datasets raise many types (network, missing config...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        label = f"{bench.source}" + (f" ({config})" if config else "")
        raise DataError(
            f"could not load {label} split {split!r} from the Hugging Face Hub: {first}; "
            "check the network or pass data_path= (--data-path) to a local copy"
        ) from None
    label = f"{bench.source}" + (f"/{config}" if config else "") + f" [{split}]"
    for n, row in enumerate(ds, 1):
        yield f"{label} row {n}", row


def _load_standard(bench: Benchmark, path: Path | None, skip_bad_rows: bool) -> BenchmarkData:
    skipped: list[str] = []
    shots: dict[str | None, list[Item]] = {}
    if path is None:
        config = bench.config[0] if bench.config else None
        items = _collect(
            bench,
            _hub_rows(bench, config, bench.eval_split),
            bench.parse_eval,
            skip_bad_rows,
            skipped,
        )
        source = f"{bench.source}" + (f"/{config}" if config else "")
        if bench.n_shots and bench.shot_split and bench.parse_shot:
            exemplars = _collect(
                bench,
                _hub_rows(bench, config, bench.shot_split),
                bench.parse_shot,
                skip_bad_rows,
                skipped,
            )
            shots = _group(bench, exemplars)
        return BenchmarkData(bench, items, shots, source, skipped)

    eval_file, shot_file = _local_files(bench, path)
    items = _collect(
        bench,
        read_table(eval_file, columns=bench.columns),
        bench.parse_eval,
        skip_bad_rows,
        skipped,
    )
    source = str(eval_file)
    if shot_file is not None and bench.parse_shot is not None:
        exemplars = _collect(
            bench,
            read_table(shot_file, columns=bench.columns),
            bench.parse_shot,
            skip_bad_rows,
            skipped,
        )
        shots = _group(bench, exemplars)
        source += f" + {shot_file}"
    return BenchmarkData(bench, items, shots, source, skipped)


def _local_files(bench: Benchmark, path: Path) -> tuple[Path, Path | None]:
    """Eval file and exemplar file for a local ``data_path`` (a file or a folder)."""
    if path.is_dir():
        eval_file = _split_file(path, bench.eval_split)
        if eval_file is None:
            raise DataError(
                f"{path} has no file for the {bench.name} {bench.eval_split!r} split; expected "
                f"e.g. {bench.eval_split}.jsonl (or .csv/.tsv/.parquet)"
            )
        folder = path
    else:
        eval_file, folder = path, path.parent
    if not bench.n_shots or bench.shot_split is None:
        return eval_file, None
    stem = eval_file.name[: -len(eval_file.suffix)]
    shot_file = _split_file(folder, bench.shot_split, prefix=stem)
    if shot_file is None:
        shot_file = _split_file(folder, bench.shot_split)
    if shot_file is None or shot_file == eval_file:
        raise DataError(
            f"{bench.name} takes its {bench.n_shots} exemplars from the {bench.shot_split!r} split, "
            f"but {folder} has no such file; put it beside the items as {bench.shot_split}.jsonl "
            f"(or {stem}_{bench.shot_split}.tsv, .csv, .parquet)"
        )
    return eval_file, shot_file


def _group(bench: Benchmark, exemplars: list[Item]) -> dict[str | None, list[Item]]:
    groups: dict[str | None, list[Item]] = {}
    for item in exemplars:
        groups.setdefault(item.group if bench.grouped else None, []).append(item)
    return groups


# ---------------------------------------------------------------------------------------------
# row parsers


def _text(row: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        if required:
            raise _BadRow(f"column {key!r} is missing or empty")
        return ""
    text = str(value).strip()
    if required and not text:
        raise _BadRow(f"column {key!r} is empty")
    return text


def _number_text(value: Any, column: str) -> str:
    if isinstance(value, bool) or value is None:
        raise _BadRow(f"column {column!r} must be a number, got {value!r}")
    number = parse_number(str(value))
    if number is None:
        raise _BadRow(f"column {column!r} must be a number, got {value!r}")
    return _canonical(number)


def _list_of_strings(value: Any, column: str) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _BadRow(
                f"column {column!r} must be a JSON list of strings, got {value!r}"
            ) from None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _BadRow(f"column {column!r} must be a list of strings, got {value!r}")
    return value


_CALC = re.compile(r"<<[^<>]*>>")


def _gsm8k_row(row: Mapping[str, Any], where: str, n: int) -> Item:
    question = _text(row, "question")
    answer = _text(row, "answer")
    if "####" not in answer:
        raise _BadRow("column 'answer' has no '#### <number>' final line")
    rationale, final = answer.rsplit("####", 1)
    gold = _number_text(final.strip(), "answer (after ####)")
    rationale = _CALC.sub("", rationale).strip()
    ident = str(row["id"]) if row.get("id") not in (None, "") else f"{n - 1}"
    return Item(id=ident, question=question, answer=gold, rationale=rationale)


_LABEL = re.compile(r"^[^\n:：]{1,30}[:：]\s*")


def _mgsm_row(row: Mapping[str, Any], where: str, n: int) -> Item:
    question = _text(row, "question")
    gold = _number_text(row.get("answer_number"), "answer_number")
    rationale = _text(row, "answer", required=False) or None
    ident = str(row["id"]) if row.get("id") not in (None, "") else f"{n - 1}"
    return Item(id=ident, question=question, answer=gold, rationale=rationale)


def _mgsm_shot(row: Mapping[str, Any], where: str, n: int) -> Item:
    item = _mgsm_row(row, where, n)
    if not item.rationale:
        raise _BadRow("exemplar has no worked answer in column 'answer'")
    # The train split prefixes both fields with a localised label ("Question:", "问题：",
    # "Step-by-Step Answer:", "逐步解答："); drop it so exemplars match the Q:/A: framing.
    return Item(
        id=item.id,
        question=_LABEL.sub("", item.question, count=1),
        answer=item.answer,
        rationale=_LABEL.sub("", item.rationale or "", count=1),
    )


def _numeric_prompt(item: Item, shots: Sequence[Item]) -> str:
    parts = []
    for shot in shots:
        worked = (shot.rationale or "").strip()
        if extract_number(worked) is None:  # the exemplar states its answer in the paper's words
            worked = f"{worked} The final answer is {shot.answer}.".strip()
        parts.append(f"Q: {shot.question}\nA: {worked}\n\n")
    parts.append(f"Q: {item.question}\nA: ")
    return "".join(parts)


def _numeric_correct(extracted: str | None, item: Item) -> bool:
    return numbers_equal(extracted, item.answer)


def _mmlu_pro_row(row: Mapping[str, Any], where: str, n: int) -> Item:
    question = _text(row, "question")
    options = [o.strip() for o in _list_of_strings(row.get("options"), "options")]
    options = [o for o in options if o and o != "N/A"]
    if not 2 <= len(options) <= 10:
        raise _BadRow(f"column 'options' must hold 2 to 10 options, got {len(options)}")
    answer = _text(row, "answer").upper()
    if len(answer) != 1 or answer not in _LETTERS[: len(options)]:
        raise _BadRow(
            f"column 'answer' must be a letter A-{_LETTERS[len(options) - 1]}, got {answer!r}"
        )
    index = row.get("answer_index")
    if index not in (None, "") and str(index).strip() != str(_LETTERS.index(answer)):
        raise _BadRow(f"answer_index {index!r} disagrees with answer {answer!r}")
    ident = str(row["question_id"]) if row.get("question_id") not in (None, "") else f"{n - 1}"
    cot = _text(row, "cot_content", required=False) or None
    return Item(
        id=ident,
        question=question,
        answer=answer,
        choices=tuple(options),
        rationale=cot,
        group=_text(row, "category"),
    )


def _mmlu_pro_shot(row: Mapping[str, Any], where: str, n: int) -> Item:
    item = _mmlu_pro_row(row, where, n)
    if not item.rationale:
        raise _BadRow("exemplar has no chain of thought in column 'cot_content'")
    return item


def _options_block(choices: Sequence[str]) -> str:
    return "\n".join(f"({_LETTERS[i]}) {c}" for i, c in enumerate(choices))


def _mmlu_pro_prompt(item: Item, shots: Sequence[Item]) -> str:
    parts = [
        f"The following are multiple choice questions (with answers) about {item.group}. "
        'Think step by step and then finish your answer with "the answer is (X)" where X is '
        "the correct letter choice.\n\n"
    ]
    for shot in shots:
        cot = (shot.rationale or "").strip()
        if not cot.startswith("A:"):
            cot = f"A: {cot}"
        parts.append(f"Q: {shot.question}\nOptions:\n{_options_block(shot.choices)}\n{cot}\n\n")
    parts.append(
        f"Q: {item.question}\nOptions:\n{_options_block(item.choices)}\n"
        "A: Let's think step by step."
    )
    return "".join(parts)


def _choice_correct(extracted: str | None, item: Item) -> bool:
    return extracted is not None and extracted == item.answer


def _ceval_row(row: Mapping[str, Any], where: str, n: int) -> Item:
    question = _text(row, "question")
    choices = tuple(_text(row, letter) for letter in "ABCD")
    answer = _text(row, "answer").upper()
    if answer not in ("A", "B", "C", "D"):
        raise _BadRow(f"column 'answer' must be one of A, B, C, D, got {answer!r}")
    subject = _text(row, "subject", required=False) or None
    if subject is not None and subject not in CEVAL_HUMANITIES:
        raise _BadRow(
            f"subject {subject!r} is not a C-Eval humanities subject "
            f"({', '.join(CEVAL_HUMANITIES)})"
        )
    ident = str(row["id"]).strip() if row.get("id") not in (None, "") else f"{n - 1}"
    if subject is not None:
        ident = f"{subject}-{ident}"
    explanation = _text(row, "explanation", required=False) or None
    return Item(
        id=ident,
        question=question,
        answer=answer,
        choices=choices,
        rationale=explanation,
        group=subject,
    )


def _ceval_prompt(item: Item, shots: Sequence[Item]) -> str:
    subject = CEVAL_HUMANITIES.get(item.group or "", item.group or "")
    parts = [f"以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n"]

    def block(q: Item) -> str:
        opts = "\n".join(
            f"{letter}. {text}" for letter, text in zip("ABCD", q.choices, strict=True)
        )
        return f"问题：{q.question}\n{opts}\n答案：让我们一步一步思考，\n"

    for shot in shots:
        worked = f"{shot.rationale.strip()}\n" if shot.rationale else ""
        parts.append(f"{block(shot)}{worked}所以答案是{shot.answer}。\n\n")
    parts.append(block(item))
    return "".join(parts)


def _popqa_row(row: Mapping[str, Any], where: str, n: int) -> Item:
    question = _text(row, "question")
    answers = [a.strip() for a in _list_of_strings(row.get("possible_answers"), "possible_answers")]
    answers = [a for a in answers if a]
    if not answers:
        raise _BadRow("column 'possible_answers' holds no answer")
    ident = str(row["id"]) if row.get("id") not in (None, "") else f"{n - 1}"
    return Item(id=ident, question=question, answer=answers[0], aliases=tuple(answers[1:]))


def _qa_prompt(item: Item, shots: Sequence[Item]) -> str:
    parts = [f"Q: {shot.question}\nA: {shot.rationale or shot.answer}\n\n" for shot in shots]
    parts.append(f"Q: {item.question}\nA: ")
    return "".join(parts)


def _contains_correct(extracted: str | None, item: Item) -> bool:
    return contains_any(extracted, item.accepted, whole_words=True)


def _extract_region(output: str) -> str | None:
    region = answer_region(output).strip()
    return region if _says_something(region) else None


# -- C-Eval: one Hub config (and one official CSV pair) per subject -------------------------------


def _load_ceval(bench: Benchmark, path: Path | None, skip_bad_rows: bool) -> BenchmarkData:
    skipped: list[str] = []
    items: list[Item] = []
    exemplars: list[Item] = []

    def with_subject(
        rows: Iterator[tuple[str, Mapping[str, Any]]], subject: str
    ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for where, row in rows:
            yield where, {**row, "subject": row.get("subject") or subject}

    if path is None:
        for subject in CEVAL_HUMANITIES:
            items += _collect(
                bench,
                with_subject(_hub_rows(bench, subject, "val"), subject),
                _ceval_row,
                skip_bad_rows,
                skipped,
            )
            exemplars += _collect(
                bench,
                with_subject(_hub_rows(bench, subject, "dev"), subject),
                _ceval_row,
                skip_bad_rows,
                skipped,
            )
        source = f"{bench.source} (humanities: val items, dev exemplars)"
        return BenchmarkData(bench, items, _group(bench, exemplars), source, skipped)

    if path.is_dir():
        # The official ceval-exam.zip layout: val/<subject>_val.csv and dev/<subject>_dev.csv.
        missing = []
        for subject in CEVAL_HUMANITIES:
            files = {}
            for split in ("val", "dev"):
                hits = [
                    p
                    for p in sorted(path.rglob(f"{subject}_{split}.*"))
                    if p.suffix.lower() in _TABLE_SUFFIXES
                ]
                if len(hits) != 1:
                    missing.append(f"{subject}_{split}")
                    continue
                files[split] = hits[0]
            if len(files) != 2:
                continue
            items += _collect(
                bench,
                with_subject(read_table(files["val"]), subject),
                _ceval_row,
                skip_bad_rows,
                skipped,
            )
            exemplars += _collect(
                bench,
                with_subject(read_table(files["dev"]), subject),
                _ceval_row,
                skip_bad_rows,
                skipped,
            )
        if missing:
            raise DataError(
                f"{path} lacks (or has several of) {', '.join(missing)} (.csv/.jsonl/.tsv/"
                ".parquet); point --data-path at the unzipped ceval-exam folder, or at one file "
                "of items with a 'subject' column"
            )
        source = f"{path} (val items, dev exemplars)"
        return BenchmarkData(bench, items, _group(bench, exemplars), source, skipped)

    eval_file, shot_file = _local_files(bench, path)
    assert shot_file is not None
    for parsed, file in ((items, eval_file), (exemplars, shot_file)):
        rows = _collect(bench, read_table(file), _ceval_row, skip_bad_rows, skipped)
        bad = [r.id for r in rows if r.group is None]
        if bad:
            raise DataError(
                f"{file} needs a 'subject' column (a C-Eval humanities subject) in every row; "
                f"rows {bad[:5]} have none"
            )
        parsed += rows
    return BenchmarkData(
        bench, items, _group(bench, exemplars), f"{eval_file} + {shot_file}", skipped
    )


# -- built-in sets (lirefs.data) -------------------------------------------------------------------


def _load_builtin(bench: Benchmark, path: Path | None, skip_bad_rows: bool) -> BenchmarkData:
    if path is not None:
        raise DataError(
            f"{bench.name} is a built-in set shipped with lirefs; it takes no data_path "
            f"(got {str(path)!r})"
        )
    from . import data as _data

    name = bench.config[0]
    assert name is not None
    questions, exemplars = _data.load_eval(name)
    items = [
        Item(id=q.id, question=q.text, answer=q.answer, aliases=tuple(q.aliases), group=q.group)
        for q in questions
    ]
    shots = [
        Item(id=e.id, question=e.text, answer=e.answer, rationale=e.solution) for e in exemplars
    ]
    return BenchmarkData(bench, items, {None: shots}, f"lirefs builtin {name!r}", [])


# ---------------------------------------------------------------------------------------------
# the registry

register(
    Benchmark(
        name="gsm8k",
        kind="reasoning",
        description="GSM8K grade-school math, 8-shot chain of thought, numeric answer",
        source="openai/gsm8k",
        config=("main",),
        eval_split="test",
        shot_split="train",
        n_shots=8,
        max_new_tokens=200,
        answer_type="numeric",
        parse_eval=_gsm8k_row,
        parse_shot=_gsm8k_row,
        build_prompt=_numeric_prompt,
        extract=extract_number,
        is_correct=_numeric_correct,
    )
)

for _lang in MGSM_LANGUAGES:
    register(
        Benchmark(
            name=f"mgsm-{_lang}",
            kind="reasoning",
            description=f"MGSM ({_lang}) translated GSM8K, 8-shot chain of thought, numeric answer",
            source="juletxara/mgsm",
            config=(_lang,),
            eval_split="test",
            shot_split="train",
            n_shots=8,
            max_new_tokens=200,
            answer_type="numeric",
            parse_eval=_mgsm_row,
            parse_shot=_mgsm_shot,
            build_prompt=_numeric_prompt,
            extract=extract_number,
            is_correct=_numeric_correct,
            columns=("question", "answer_number"),
        )
    )

register(
    Benchmark(
        name="mmlu-pro",
        kind="reasoning",
        description="MMLU-Pro, 5-shot chain of thought per category, letter A-J",
        source="TIGER-Lab/MMLU-Pro",
        config=(None,),
        eval_split="test",
        shot_split="validation",
        n_shots=5,
        max_new_tokens=200,
        answer_type="choice",
        parse_eval=_mmlu_pro_row,
        parse_shot=_mmlu_pro_shot,
        build_prompt=_mmlu_pro_prompt,
        extract=extract_choice,
        is_correct=_choice_correct,
        grouped=True,
    )
)

register(
    Benchmark(
        name="ceval-humanities",
        kind="memory",
        description="C-Eval humanities subjects, 5-shot per subject, letter A-D",
        source="ceval/ceval-exam",
        config=tuple(CEVAL_HUMANITIES),
        eval_split="val",
        shot_split="dev",
        n_shots=5,
        max_new_tokens=200,
        answer_type="choice",
        parse_eval=_ceval_row,
        parse_shot=_ceval_row,
        build_prompt=_ceval_prompt,
        extract=extract_ceval,
        is_correct=_choice_correct,
        grouped=True,
        stop=CEVAL_STOP,
        loader=_load_ceval,
    )
)

register(
    Benchmark(
        name="popqa",
        kind="memory",
        description="PopQA long-tail entity facts, zero-shot, any possible answer in the output",
        source="akariasai/PopQA",
        config=(None,),
        eval_split="test",
        shot_split=None,
        n_shots=0,
        max_new_tokens=200,
        answer_type="contains",
        parse_eval=_popqa_row,
        parse_shot=None,
        build_prompt=_qa_prompt,
        extract=_extract_region,
        is_correct=_contains_correct,
    )
)

register(
    Benchmark(
        name="builtin-arithmetic",
        kind="reasoning",
        description="lirefs built-in arithmetic word problems (offline), few-shot, numeric answer",
        source="lirefs builtin",
        config=("arithmetic",),
        eval_split="eval",
        shot_split="shots",
        n_shots=8,
        max_new_tokens=128,
        answer_type="numeric",
        parse_eval=_mgsm_row,
        parse_shot=None,
        build_prompt=_numeric_prompt,
        extract=extract_number,
        is_correct=_numeric_correct,
        loader=_load_builtin,
    )
)

register(
    Benchmark(
        name="builtin-facts",
        kind="memory",
        description="lirefs built-in factual recall (offline), few-shot, answer in the first line",
        source="lirefs builtin",
        config=("facts",),
        eval_split="eval",
        shot_split="shots",
        n_shots=5,
        max_new_tokens=24,
        answer_type="contains",
        parse_eval=_popqa_row,
        parse_shot=None,
        build_prompt=_qa_prompt,
        extract=extract_first_line,
        is_correct=_contains_correct,
        loader=_load_builtin,
    )
)
