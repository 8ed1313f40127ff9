"""Row readers for the small text tables lirefs reads: JSONL and CSV/TSV, one implementation each.

Both the direction data (``lirefs.data``) and the evaluation benchmarks (``lirefs.evaluation``)
read user files row by row and report problems by line. The readers here only split a text into
rows and say where each row is; the caller decides what a malformed row means (an error naming the
file and line in ``lirefs.data``, a skippable row in the benchmark loaders, a crash-cut last line in
the evaluation records).

Line numbers are physical lines of the file (1-based): a quoted CSV field may span lines, and a
JSON string may hold U+2028 or U+2029, which are not line breaks in JSONL (``str.splitlines``
would split there, so it is never used).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .errors import DataError
from .store import check_json_depth

__all__ = ["JsonLine", "delimited_rows", "jsonl_lines", "read_text"]


class JsonLine(NamedTuple):
    """One non-blank line of a JSONL text.

    Attributes:
        line_no: 1-based physical line number.
        record: the JSON object, or ``None`` when the line is not one.
        problem: why the line is not a JSON object (``None`` when it is), e.g.
            ``"not valid JSON (Expecting value at column 12)"`` or ``"a JSON list, expected an
            object"``.
    """

    line_no: int
    record: dict[str, Any] | None
    problem: str | None


def read_text(path: str | Path, where: str) -> str:
    """The UTF-8 text of ``path`` (a leading byte-order mark dropped, newlines normalised).

    Raises:
        DataError: the file is missing, unreadable, or not UTF-8; the message starts with ``where``.
    """
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where} is not UTF-8 text ({exc}); save it as UTF-8") from exc
    except FileNotFoundError:
        raise DataError(f"{where} does not exist; check the path") from None
    except OSError as exc:
        raise DataError(f"{where} cannot be read ({exc.strerror})") from exc


def jsonl_lines(text: str) -> Iterator[JsonLine]:
    """Every non-blank line of a JSONL text as a :class:`JsonLine` (objects and problems alike)."""
    # Split on "\n" only: str.splitlines would also split inside JSON strings holding U+2028 etc.
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            check_json_depth(line, what="the line")
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield JsonLine(line_no, None, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        except ValueError as exc:  # nested too deep: refused before parsing
            yield JsonLine(line_no, None, str(exc).replace("the line is ", "", 1))
            continue
        if not isinstance(record, dict):
            yield JsonLine(line_no, None, f"a JSON {type(record).__name__}, expected an object")
            continue
        yield JsonLine(line_no, record, None)


def delimited_rows(
    text: str,
    delimiter: str,
    where: str,
    *,
    columns: Sequence[str] | None = None,
    strict: bool = False,
) -> Iterator[tuple[int, list[str], list[str]]]:
    """``(line_no, header, cells)`` for every data row of a CSV/TSV text; blank rows are skipped.

    The first non-blank row is the header (its cells stripped, a byte-order mark dropped), unless
    ``columns`` is given and that row does not name all of them: then every row, the first
    included, is data in ``columns`` order (MGSM's original TSV files have no header). ``cells``
    may have another length than ``header``: the caller says what that means. ``line_no`` is the
    physical line where the row ends.

    Raises:
        DataError: malformed CSV (with ``strict``, e.g. an unterminated quote), naming ``where``
            and the line.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=strict)
    header: list[str] | None = None
    try:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            if header is None:
                named = [c.strip().lstrip("\ufeff") for c in cells]
                if columns is None or set(columns) <= set(named):
                    header = named
                    continue
                header = list(columns)
            yield reader.line_num, header, cells
    except csv.Error as exc:
        raise DataError(f"{where}, line {reader.line_num}: malformed CSV ({exc})") from exc
