"""Reading an evaluation result back from the folder ``EvalResult.save`` wrote (``EvalResult.load``).

``result.json`` holds every summary number (``EvalResult.to_dict``); ``records.jsonl`` holds the
per-item records, of this run and possibly of other alphas or items of earlier runs (a resumed
run appends to it): the records of the result are those of its alphas and item ``indices``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError
from ..store import check_metadata, loads_json
from .baselines import BaselineResult
from .groups import GroupResult
from .groups import pair_of as _pair
from .records import read_records
from .stats import PairedTest

if TYPE_CHECKING:  # result imports this module
    from .result import EvalResult

__all__ = ["ResultFileError", "load_result"]


class ResultFileError(DataError):
    """A folder or ``result.json`` that is not a lirefs evaluation result."""


def _read_json(folder: Path) -> dict[str, Any]:
    path = folder / "result.json"
    if not folder.is_dir():
        raise ResultFileError(
            f"evaluation folder {str(folder)!r} does not exist or is not a folder; give the "
            "folder `lirefs evaluate --out` (or EvalResult.save) wrote"
        )
    if not path.is_file():
        raise ResultFileError(
            f"{folder} has no result.json; give the folder `lirefs evaluate --out` wrote"
        )
    try:
        obj = loads_json(path.read_bytes(), what=str(path), error=ResultFileError)
    except ResultFileError as exc:
        raise ResultFileError(f"{exc}; expected an evaluation result") from None
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("lirefs_version"), str):
        raise ResultFileError(
            f"{path} is JSON but not a lirefs evaluation result (no metadata with a lirefs "
            "version); give the folder `lirefs evaluate --out` wrote"
        )
    if meta.get("kind") != "evaluation":
        raise ResultFileError(
            f"{path} holds a lirefs {meta.get('kind')!r}, not an evaluation result; give the "
            "folder `lirefs evaluate --out` wrote"
        )
    check_metadata(meta, what=str(path), kind="evaluation")
    if not isinstance(obj.get("results"), list) or not isinstance(obj.get("alphas"), list):
        raise ResultFileError(f"{path} is an evaluation result without results; rerun it")
    return obj


def _test(value: Any) -> PairedTest | None:
    return None if value is None else PairedTest.from_dict(value)


def _from_dict(
    cls: type[EvalResult], obj: dict[str, Any], records: list[dict[str, Any]]
) -> EvalResult:
    """An ``EvalResult`` from its ``to_dict`` form and its records (controls from
    ``control_results``; each control's records are passed in ``records`` too)."""
    result = cls(
        benchmark=obj["benchmark"],
        alphas=[float(a) for a in obj["alphas"]],
        n_items=int(obj["n_items"]),
        accuracy={},
        ci={},
        no_answer_rate={},
        paired={},
        flexible_accuracy={},
        flexible_ci={},
        records=[],
        metadata=obj["metadata"],
        layer=obj.get("layer"),
        layer_source=obj.get("layer_source"),
    )
    for row in obj["results"]:
        _fill_row(result, row)
    for key, groups in (obj.get("by_group") or {}).items():
        result.by_group[float(key)] = {n: GroupResult.from_dict(g) for n, g in groups.items()}
    name = (obj["metadata"].get("control") or {}).get("name")
    indices = [int(i) for i in obj.get("indices") or []]
    result.records = _select(records, result.alphas, indices, name)
    for b in obj.get("prompt_baselines") or []:
        own = {
            int(r["index"]): r
            for r in records
            if r.get("baseline") == b["text"] and float(r["alpha"]) == 0.0
        }
        kept = [own[i] for i in indices] if all(i in own for i in indices) else []
        result.prompt_baselines[str(b["text"])] = BaselineResult.from_dict(b, kept)
    for control, sub in (obj.get("control_results") or {}).items():
        result.controls[control] = _from_dict(cls, sub, records)
    return result


def _fill_row(result: EvalResult, row: dict[str, Any]) -> None:
    alpha = float(row["alpha"])
    result.accuracy[alpha] = float(row["accuracy"])
    result.ci[alpha] = _pair(row["ci"])
    result.flexible_accuracy[alpha] = float(row["flexible_accuracy"])
    result.flexible_ci[alpha] = _pair(row["flexible_ci"])
    result.no_answer_rate[alpha] = float(row["no_answer_rate"])
    for key, table in (
        ("paired", result.paired),
        ("gold_logprob_paired", result.gold_logprob_paired),
        ("answer_logprob_paired", result.answer_logprob_paired),
        ("degenerate_paired", result.degenerate_paired),
    ):
        test = _test(row.get(key))
        if test is not None:
            table[alpha] = test
    if row.get("gold_logprob") is not None:
        result.gold_logprob[alpha] = float(row["gold_logprob"])
        result.gold_logprob_ci[alpha] = _pair(row["gold_logprob_ci"])
    if row.get("answer_logprob") is not None:
        result.answer_logprob[alpha] = float(row["answer_logprob"])
        if row.get("answer_logprob_ci") is not None:
            result.answer_logprob_ci[alpha] = _pair(row["answer_logprob_ci"])
    if row.get("answer_logprob_n") is not None:
        result.answer_logprob_n[alpha] = int(row["answer_logprob_n"])
        result.answer_logprob_missing[alpha] = int(row["answer_logprob_missing"])
    if row.get("degenerate") is not None:
        result.degenerate[alpha] = float(row["degenerate"])
    for control, cells in (row.get("controls") or {}).items():
        tests = cells.get("real_minus_control") or {}
        if tests:
            result.vs_controls.setdefault(alpha, {})[control] = {
                k: PairedTest.from_dict(v) for k, v in tests.items()
            }


def _select(
    records: list[dict[str, Any]], alphas: list[float], indices: list[int], control: str | None
) -> list[dict[str, Any]]:
    """The records of one direction at ``alphas`` x ``indices`` (a control shares alpha 0 with
    the real direction); empty when the file does not hold them all."""
    keyed = {
        (r.get("control"), float(r["alpha"]), int(r["index"])): r
        for r in records
        if r.get("baseline") is None  # a prompt baseline's rows are its own
    }
    out = []
    for alpha in alphas:
        owner = None if alpha == 0.0 else control
        for index in indices:
            record = keyed.get((owner, alpha, index))
            if record is None:
                return []
            out.append(record)
    return out


def load_result(cls: type[EvalResult], folder: Path) -> EvalResult:
    """See ``EvalResult.load``."""
    obj = _read_json(folder)
    path = folder / "records.jsonl"
    meta = obj["metadata"]
    records = read_records(path, meta) if path.is_file() else []
    return _from_dict(cls, obj, records)
