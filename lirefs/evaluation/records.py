"""The resumable per-item records file (``records.jsonl``) of an evaluation run.

Line 1 is a header ``{"format": RECORDS_FORMAT, "metadata": {...}}``; every further line is one
record (one alpha and item). A rerun with the same model, data and :data:`RESUME_KEYS` settings
reuses the records and generates only what is missing; other settings are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from ..errors import DataError, MetadataMismatchError
from ..store import atomic_path, check_metadata
from ..tables import jsonl_lines

__all__ = [
    "RECORDS_FORMAT",
    "RESUME_DEFAULTS",
    "RESUME_KEYS",
    "header",
    "open_records",
    "read_records",
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


def read_records(path: Path, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """Records of an earlier run in ``path`` after checking its header against ``metadata``.

    A last line cut short by a crash is dropped; anything else malformed is an error.

    Raises:
        MetadataMismatchError: the file is not a records file, or was made with another model,
            data set or settings.
        DataError: a malformed line other than the last.
    """
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
    first = lines[0]
    if first.line_no != 1 or first.record is None or first.record.get("format") != RECORDS_FORMAT:
        raise MetadataMismatchError(
            f"{path} is not a lirefs evaluation records file (its first line is not a "
            f"{RECORDS_FORMAT!r} header); choose another records path"
        )
    old = first.record.get("metadata") or {}
    what = f"records file {path}"
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
    for key in RESUME_KEYS:
        was = (old.get("settings") or {}).get(key, RESUME_DEFAULTS.get(key))
        now = metadata["settings"].get(key)
        if key == "direction":  # the same vector may be read from a moved or copied file
            was, now = _without_path(was), _without_path(now)
        if was != now:
            raise MetadataMismatchError(
                f"{what} was made with {key}={was!r}, now {key}={now!r}; use the same settings "
                "to resume, or another records path to start over"
            )
    records = []
    last = lines[-1].line_no
    for line in lines[1:]:
        record = line.record
        if record is None:
            if line.line_no == last:  # a write cut short by a crash
                break
            raise DataError(
                f"{path} line {line.line_no} is not valid JSON; delete the file to start over"
            )
        if not {"alpha", "index", "correct"} <= set(record):
            raise DataError(
                f"{path} line {line.line_no} is not an evaluation record (needs alpha, index, "
                "correct); delete the file to start over"
            )
        records.append(record)
    return records


def open_records(path: Path, metadata: dict[str, Any]) -> tuple[list[dict[str, Any]], IO[str]]:
    """Existing records (if any) and a handle to append new ones.

    The file is rewritten first (atomically, keeping the latest record of each control, alpha and item) so
    a line cut short by a crash never sits before new records. The caller closes the handle.
    """
    old = read_records(path, metadata) if path.is_file() else []
    latest = {(r.get("control"), float(r["alpha"]), int(r["index"])): r for r in old}
    kept = list(latest.values())
    write_records(path, metadata, kept)
    return kept, open(path, "a", encoding="utf-8")
