"""Where benchmark rows come from: local tables, split files in a folder, and the Hugging Face Hub.

Local files may be JSONL, JSON (a list of row objects), CSV, TSV or parquet, in the Hub dataset's
columns. A folder holds one file per split (``test.jsonl``, ``train.jsonl``, Hub parquet shards
``test-00000-of-00001.parquet``, MGSM's ``mgsm_de.tsv`` beside ``mgsm_de_train.tsv`` ...).
Rows are turned into :class:`~lirefs.evaluation.tasks.base.Item` s by the benchmark's row parser;
a malformed row is an error naming its file and row, or is skipped (and listed) under
``skip_bad_rows``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...store import check_json_depth
from ...tables import delimited_rows, jsonl_lines, read_text
from .base import BadRow, Benchmark, BenchmarkData, Item, RowParser
from .extract import canonical_number, parse_number

__all__ = [
    "ERROR_KEY",
    "TABLE_SUFFIXES",
    "cell_list",
    "cell_number",
    "cell_text",
    "collect_items",
    "group_shots",
    "hub_rows",
    "load_standard",
    "local_files",
    "read_table",
    "split_file",
]

TABLE_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")

#: Key of the row that stands in for a malformed one (its value says why).
ERROR_KEY = "__error__"

Rows = Iterator[tuple[str, Mapping[str, Any]]]


# ---------------------------------------------------------------------------------------------
# reading local tables


def read_table(path: Path, *, columns: Sequence[str] | None = None) -> Iterator[tuple[str, dict]]:
    """Rows of a JSONL/JSON/CSV/TSV/parquet file as ``(where, row)``, ``where`` = ``"file row N"``.

    CSV and TSV files need a header row, unless ``columns`` is given and the first row does not
    name all of them: then every row, the first included, is data in that column order
    (MGSM's original TSV files have no header; the official code lost their first item by treating
    it as one). A malformed row comes as ``{ERROR_KEY: why}``.

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
            f"{', '.join(TABLE_SUFFIXES)}"
        )


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    for n, line in enumerate(jsonl_lines(read_text(path, f"data file {str(path)!r}")), 1):
        where = f"{path} row {n} (line {line.line_no})"
        yield where, line.record if line.record is not None else {ERROR_KEY: line.problem}


def _read_json(path: Path) -> Iterator[tuple[str, dict]]:
    text = read_text(path, f"data file {str(path)!r}")
    check_json_depth(text, what=str(path), error=DataError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); fix the file") from None
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), list):
        data = next(iter(data.values()))
    if not isinstance(data, list):
        raise DataError(f"{path} must hold a JSON list of row objects; got {type(data).__name__}")
    for n, row in enumerate(data, 1):
        where = f"{path} row {n}"
        if not isinstance(row, dict):
            yield where, {ERROR_KEY: f"a JSON {type(row).__name__}, expected an object"}
        else:
            yield where, row


def _read_delimited(
    path: Path, delimiter: str, columns: Sequence[str] | None
) -> Iterator[tuple[str, dict]]:
    text = read_text(path, f"data file {str(path)!r}")
    rows = delimited_rows(text, delimiter, str(path), columns=columns)
    for n, (line_no, header, cells) in enumerate(rows, 1):
        where = f"{path} row {n} (line {line_no})"
        if len(cells) != len(header):
            why = f"has {len(cells)} fields, expected {len(header)} ({', '.join(header)})"
            yield where, {ERROR_KEY: why}
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


def split_file(folder: Path, split: str, *, prefix: str = "") -> Path | None:
    """The one file in ``folder`` holding ``split``: ``<split>.<ext>``, ``<split>-*.<ext>`` (Hub
    parquet shards), ``<prefix>_<split>.<ext>`` or ``*_<split>.<ext>``."""
    found = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.suffix.lower() not in TABLE_SUFFIXES:
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


def local_files(bench: Benchmark, path: Path) -> tuple[Path, Path | None]:
    """Eval file and exemplar file for a local ``data_path`` (a file or a folder)."""
    if path.is_dir():
        eval_file = split_file(path, bench.eval_split)
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
    shot_file = split_file(folder, bench.shot_split, prefix=stem)
    if shot_file is None:
        shot_file = split_file(folder, bench.shot_split)
    if shot_file is None or shot_file == eval_file:
        raise DataError(
            f"{bench.name} takes its {bench.n_shots} exemplars from the {bench.shot_split!r} split, "
            f"but {folder} has no such file; put it beside the items as {bench.shot_split}.jsonl "
            f"(or {stem}_{bench.shot_split}.tsv, .csv, .parquet)"
        )
    return eval_file, shot_file


# ---------------------------------------------------------------------------------------------
# the Hub


def hub_rows(bench: Benchmark, config: str | None, split: str) -> Rows:
    """Rows of ``bench.source`` (``config``, ``split``) through ``datasets.load_dataset``.

    Raises:
        DataError: ``datasets`` is not installed, or the Hub cannot give the split.
    """
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


# ---------------------------------------------------------------------------------------------
# rows -> items


def collect_items(
    bench: Benchmark,
    rows: Rows,
    parse: RowParser,
    skip_bad_rows: bool,
    skipped: list[str],
) -> list[Item]:
    """Parse ``rows`` into items; a bad row (or a repeated id) raises, or is listed in ``skipped``.

    Raises:
        DataError: a malformed row without ``skip_bad_rows``, naming the row and the fix.
    """
    items: list[Item] = []
    seen: set[str] = set()
    for n, (where, row) in enumerate(rows, 1):
        try:
            if ERROR_KEY in row:
                raise BadRow(str(row[ERROR_KEY]))
            item = parse(row, where, n)
            if item.id in seen:
                raise BadRow(f"duplicate id {item.id!r}")
        except BadRow as exc:
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


def group_shots(bench: Benchmark, exemplars: list[Item]) -> dict[str | None, list[Item]]:
    """Exemplars by group (one ``None`` group when the benchmark is not grouped)."""
    groups: dict[str | None, list[Item]] = {}
    for item in exemplars:
        groups.setdefault(item.group if bench.grouped else None, []).append(item)
    return groups


def load_standard(bench: Benchmark, path: Path | None, skip_bad_rows: bool) -> BenchmarkData:
    """The usual loader: one Hub config (or one local file/folder), eval split + exemplar split."""
    skipped: list[str] = []
    shots: dict[str | None, list[Item]] = {}
    if path is None:
        config = bench.config[0] if bench.config else None
        items = collect_items(
            bench,
            hub_rows(bench, config, bench.eval_split),
            bench.parse_eval,
            skip_bad_rows,
            skipped,
        )
        source = f"{bench.source}" + (f"/{config}" if config else "")
        if bench.n_shots and bench.shot_split and bench.parse_shot:
            exemplars = collect_items(
                bench,
                hub_rows(bench, config, bench.shot_split),
                bench.parse_shot,
                skip_bad_rows,
                skipped,
            )
            shots = group_shots(bench, exemplars)
        return BenchmarkData(bench, items, shots, source, skipped)

    eval_file, shot_file = local_files(bench, path)
    items = collect_items(
        bench,
        read_table(eval_file, columns=bench.columns),
        bench.parse_eval,
        skip_bad_rows,
        skipped,
    )
    source = str(eval_file)
    if shot_file is not None and bench.parse_shot is not None:
        exemplars = collect_items(
            bench,
            read_table(shot_file, columns=bench.columns),
            bench.parse_shot,
            skip_bad_rows,
            skipped,
        )
        shots = group_shots(bench, exemplars)
        source += f" + {shot_file}"
    return BenchmarkData(bench, items, shots, source, skipped)


# ---------------------------------------------------------------------------------------------
# cells


def cell_text(row: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    """``row[key]`` as stripped text; :class:`BadRow` when required and missing or empty."""
    value = row.get(key)
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        if required:
            raise BadRow(f"column {key!r} is missing or empty")
        return ""
    text = str(value).strip()
    if required and not text:
        raise BadRow(f"column {key!r} is empty")
    return text


def cell_number(value: Any, column: str) -> str:
    """A cell holding a number, canonicalised (``"1,234"`` -> ``"1234"``); else :class:`BadRow`."""
    if isinstance(value, bool) or value is None:
        raise BadRow(f"column {column!r} must be a number, got {value!r}")
    number = parse_number(str(value))
    if number is None:
        raise BadRow(f"column {column!r} must be a number, got {value!r}")
    return canonical_number(number)


def cell_list(value: Any, column: str) -> list[str]:
    """A cell holding a list of strings (a real list, or JSON text of one); else :class:`BadRow`."""
    if isinstance(value, str):
        try:
            check_json_depth(value, what=f"column {column!r}")
            value = json.loads(value)
        except ValueError:  # not JSON, or nested too deep
            raise BadRow(
                f"column {column!r} must be a JSON list of strings, got {value!r}"
            ) from None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRow(f"column {column!r} must be a list of strings, got {value!r}")
    return value
