"""The resumable per-item records file (``records.jsonl``) of an evaluation run.

Line 1 is a header ``{"format": RECORDS_FORMAT, "metadata": {...}}``; every further line is one
:class:`Record` (one alpha and item, or one control, alpha and item). A rerun with the same model,
data and resume key (:data:`RESUME_KEYS` of the settings, :func:`resume_key`) reuses the records
and generates only what is missing; other settings are refused.

Resuming never trusts a verdict on disk: :func:`resume` re-derives every kept record's readings,
verdicts and degeneration from its ``output`` with the current rule (``.scoring.rescore``), and
fills what older records lack (the flexible reading, the item's group). A record without an
output, with a non-integer index or an index outside the data, or a header that is not an object
is refused with a :class:`RecordsError` naming the file and line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import DataError, MetadataMismatchError
from ..store import atomic_path, check_metadata
from ..tables import jsonl_lines

if TYPE_CHECKING:
    from .tasks import Benchmark, Item

__all__ = [
    "RECORDS_FORMAT",
    "RESUME_DEFAULTS",
    "RESUME_KEYS",
    "Record",
    "RecordsError",
    "baseline_label",
    "header",
    "open_records",
    "read_records",
    "resume",
    "resume_key",
    "write_records",
]

#: First-line marker of a records file.
RECORDS_FORMAT = "lirefs-eval-records/1"

#: Settings that must match for a records file to be resumed (alphas and limit may change:
#: records are keyed by alpha and item, and batches are compared one by one).
RESUME_KEYS = (
    "layer",
    "mode",
    "max_new_tokens",
    "batch_size",
    "direction",
    "n_shots",
    "chat_template",
    "system_prompt",
    "thinking",
)

#: What a records file made before a setting existed used (it was resumable with it).
RESUME_DEFAULTS: dict[str, Any] = {"chat_template": False, "system_prompt": None, "thinking": False}


class RecordsError(DataError):
    """A records file holds a line that is not a usable evaluation record."""


_FIELDS = (
    "alpha", "index", "id", "prompt", "thinking", "think_closed", "output", "extracted",
    "extracted_flexible", "gold", "correct", "correct_flexible", "batch", "n_tokens", "n_shots",
    "gold_text", "gold_logprob", "answer_text", "answer_logprob", "degenerate",
    "degenerate_reasons", "accepted", "group", "control", "control_hash", "baseline",
)  # fmt: skip
#: Fields written only when set (thinking runs, items with aliases or groups, controls, the
#: answer outcome of benchmarks with an answer marker).
_OPTIONAL = (
    "thinking", "think_closed", "accepted", "group", "control", "control_hash", "answer_text",
    "answer_logprob", "baseline",
)  # fmt: skip


@dataclass(frozen=True)
class Record:
    """One scored output: one alpha (and control direction) and one item.

    Attributes:
        alpha: steering strength (0: unsteered).
        index: the item's position in the benchmark's data.
        id: the item's id.
        prompt: the full prompt text.
        output: the answer text (after ``</think>`` for thinking runs; ``""`` when it never
            closed).
        extracted: strict reading, ``None`` when there is no answer.
        extracted_flexible: flexible reading.
        gold: the gold answer.
        correct: strict verdict.
        correct_flexible: flexible verdict.
        batch: ``[lo, hi)`` positions of the batch it was generated in.
        n_tokens: generated tokens.
        n_shots: exemplars in its prompt.
        gold_text: the scored gold continuation.
        gold_logprob: ``log p(gold_text | prompt)`` (nats) under the same steering, or ``None``.
        answer_text: benchmarks with an answer marker: the scored gold answer (``" 7."``,
            ``Benchmark.answer_text``); set whenever the answer outcome was computed.
        answer_logprob: ``log p(answer_text | prompt + own output up to the marker)`` (nats)
            under the same steering; ``None`` when the output never reaches the marker.
        degenerate: whether the output collapsed; ``degenerate_reasons`` says how.
        thinking: thinking runs: the think block; ``think_closed``: whether it closed.
        accepted: every accepted answer (items with aliases).
        group: the item's group (MMLU-Pro category, C-Eval subject, built-in template).
        control: the control direction's name (``None``: the real direction);
            ``control_hash`` its unit-vector hash.
        baseline: a prompt-baseline row: the text added to the item's question (unsteered,
            ``alpha`` 0); ``None`` for steering rows.
        extra: fields of a newer lirefs, kept as they are.
    """

    alpha: float
    index: int
    output: str
    id: str | None = None
    prompt: str | None = None
    extracted: str | None = None
    extracted_flexible: str | None = None
    gold: str | None = None
    correct: bool = False
    correct_flexible: bool = False
    batch: list[int] | None = None
    n_tokens: int | None = None
    n_shots: int | None = None
    gold_text: str | None = None
    gold_logprob: float | None = None
    answer_text: str | None = None
    answer_logprob: float | None = None
    degenerate: bool = False
    degenerate_reasons: list[str] = field(default_factory=list)
    thinking: str | None = None
    think_closed: bool | None = None
    accepted: list[str] | None = None
    group: str | None = None
    control: str | None = None
    control_hash: str | None = None
    baseline: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready record (fields of :data:`_OPTIONAL` only when set)."""
        out = {
            name: getattr(self, name)
            for name in _FIELDS
            if name not in _OPTIONAL or getattr(self, name) is not None
        }
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, obj: Any, where: str = "record") -> Record:
        """A record from its dict, checked: ``alpha`` a finite number, ``index`` an integer,
        ``output`` a string.

        Raises:
            RecordsError: with ``where`` (file and line) and how to fix.
        """
        fix = "delete the file (or that line) to start over"
        if not isinstance(obj, Mapping):
            raise RecordsError(f"{where} is not a JSON object; {fix}")
        missing = [k for k in ("alpha", "index", "output") if k not in obj]
        if missing:
            raise RecordsError(
                f"{where} is not an evaluation record (no {', '.join(missing)}; a record needs "
                f"alpha, index and output); {fix}"
            )
        alpha, index, output = obj["alpha"], obj["index"], obj["output"]
        if (
            isinstance(alpha, bool)
            or not isinstance(alpha, int | float)
            or not math.isfinite(alpha)
        ):
            raise RecordsError(f"{where}: alpha {alpha!r} is not a finite number; {fix}")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise RecordsError(f"{where}: index {index!r} is not an integer >= 0; {fix}")
        if not isinstance(output, str):
            raise RecordsError(f"{where}: output is {type(output).__name__}, not text; {fix}")
        known = {k: obj[k] for k in _FIELDS if k in obj and k not in ("alpha", "index")}
        extra = {k: v for k, v in obj.items() if k not in _FIELDS}
        return cls(alpha=float(alpha) + 0.0, index=index, extra=extra, **known)

    @property
    def key(self) -> tuple[str | None, float, int]:
        """``(run, alpha, index)``: what one record stands for; the run is the control's name,
        the prompt baseline's label (:func:`baseline_label`) or ``None`` (the real direction)."""
        run = self.control if self.baseline is None else baseline_label(self.baseline)
        return run, self.alpha, self.index


def baseline_label(text: str) -> str:
    """The run name of the prompt baseline ``text``: ``"prompt: <text>"``."""
    return f"prompt: {text}"


def resume_key(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that must match for records to be resumed (:data:`RESUME_KEYS`; a setting
    older files lack takes :data:`RESUME_DEFAULTS`; the direction without its file path)."""
    out = {}
    for key in RESUME_KEYS:
        value = settings.get(key, RESUME_DEFAULTS.get(key))
        out[key] = _without_path(value) if key == "direction" else value
    return out


def header(metadata: dict[str, Any]) -> dict[str, Any]:
    """The first line of a records file."""
    return {"format": RECORDS_FORMAT, "metadata": metadata}


def write_records(path: Path, metadata: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """Write the header and ``records`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(header(metadata), ensure_ascii=False) + "\n")
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def _without_path(summary: Any) -> Any:
    # the same vector may sit in another file; prompt_format was not recorded by older runs
    if isinstance(summary, dict):
        return {k: v for k, v in summary.items() if k not in ("path", "prompt_format")}
    return summary


def _check_header(path: Path, first: Any, metadata: dict[str, Any]) -> None:
    what = f"records file {path}"
    if first is None or first.line_no != 1 or first.record is None:
        raise MetadataMismatchError(
            f"{path} is not a lirefs evaluation records file (its first line is not a "
            f"{RECORDS_FORMAT!r} header object); choose another records path"
        )
    old = first.record.get("metadata")
    if first.record.get("format") != RECORDS_FORMAT or not isinstance(old or {}, dict):
        raise MetadataMismatchError(
            f"{path} is not a lirefs evaluation records file (its first line is not a "
            f"{RECORDS_FORMAT!r} header with a metadata object); choose another records path"
        )
    old = old or {}
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
    settings = old.get("settings") or {}
    was, now = (
        resume_key(settings if isinstance(settings, dict) else {}),
        resume_key(metadata["settings"]),
    )
    for key in RESUME_KEYS:
        if was[key] != now[key]:
            raise MetadataMismatchError(
                f"{what} was made with {key}={was[key]!r}, now {key}={now[key]!r}; use the same "
                "settings to resume, or another records path to start over"
            )


def _read(path: Path, metadata: dict[str, Any]) -> list[tuple[int, Record]]:
    """``(line number, Record)`` of every record of ``path`` after checking its header."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataMismatchError(
            f"{path} is not a lirefs evaluation records file (not UTF-8 text: byte {exc.start}, "
            f"{exc.reason}); choose another records path or delete the file to start over"
        ) from None
    lines = list(jsonl_lines(text))
    if not lines:
        return []
    _check_header(path, lines[0], metadata)
    records = []
    last = lines[-1].line_no
    for line in lines[1:]:
        if line.record is None:
            if line.line_no == last:  # a write cut short by a crash
                break
            raise RecordsError(
                f"{path} line {line.line_no} is not an evaluation record ({line.problem}); "
                "delete the file to start over"
            )
        records.append((line.line_no, Record.from_dict(line.record, f"{path} line {line.line_no}")))
    return records


def read_records(path: Path, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """Records of an earlier run in ``path`` (as dicts) after checking its header against
    ``metadata``; their verdicts are as written (:func:`resume` re-derives them).

    A last line cut short by a crash is dropped; anything else malformed is an error.

    Raises:
        MetadataMismatchError: the file is not a records file, or was made with another model,
            data set or settings.
        RecordsError: a malformed line other than the last (a ``DataError``).
    """
    return [record.to_dict() for _, record in _read(path, metadata)]


def open_records(path: Path, metadata: dict[str, Any]) -> tuple[list[dict[str, Any]], IO[str]]:
    """Existing records (if any, as written) and a handle to append new ones; see :func:`resume`."""
    kept, fh = _open(path, metadata, None)
    return [r.to_dict() for r in kept], fh


def resume(
    path: Path,
    metadata: dict[str, Any],
    bench: Benchmark,
    items: Sequence[Item],
    control_hashes: Mapping[str, str],
) -> tuple[dict[tuple[str | None, float, int], Record], IO[str]]:
    """The usable records of an earlier run, re-scored, and a handle to append new ones.

    Every record's verdicts are re-derived from its ``output`` against ``items[record.index]``
    (``.scoring.rescore``); records of a control whose unit-vector hash differs from
    ``control_hashes`` (another seed or width) stay in the file but are not used. The caller
    closes the handle.

    Raises:
        RecordsError: a record whose index is outside ``items``, or a malformed line.
        MetadataMismatchError: see :func:`read_records`.
    """
    from .scoring import rescore

    def upgrade(line_no: int, record: Record) -> Record:
        if record.index >= len(items):
            raise RecordsError(
                f"{path} line {line_no}: index {record.index} is outside the {len(items)} items "
                f"of {bench.name}; delete the file to start over"
            )
        return rescore(record, bench, items[record.index])

    kept, fh = _open(path, metadata, upgrade)
    done = {}
    for record in kept:
        name = record.control
        if name is not None and record.control_hash != control_hashes.get(name):
            continue  # a control of another seed or width: not this run's direction
        done[record.key] = record
    return done, fh


def _open(
    path: Path, metadata: dict[str, Any], upgrade: Callable[[int, Record], Record] | None
) -> tuple[list[Record], IO[str]]:
    """The file is rewritten first (atomically, keeping the latest record of each control, alpha
    and item, upgraded) so a line cut short by a crash never sits before new records."""
    old = _read(path, metadata) if path.is_file() else []
    latest = {
        record.key: (upgrade(line_no, record) if upgrade is not None else record)
        for line_no, record in old
    }
    kept = list(latest.values())
    write_records(path, metadata, [r.to_dict() for r in kept])
    return kept, open(path, "a", encoding="utf-8")
