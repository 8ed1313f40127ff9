"""An evaluation run written as lm-evaluation-harness 0.4.13 writes its own runs.

``lm_eval --output_path OUT --log_samples`` leaves, through ``EvaluationTracker``:

* ``OUT/<model name, sanitised>/results_<date id>.json``: the aggregated results (``results``,
  ``group_subtasks``, ``configs``, ``versions``, ``n-shot``, ``higher_is_better``, ``n-samples``,
  ``config`` with ``model`` and ``model_args``, ``date``, ``task_hashes`` and the general settings
  ``model_source``, ``model_name``, ``model_name_sanitized``...);
* ``OUT/<model name, sanitised>/samples_<task>_<date id>.jsonl``: one line per item AND filter
  (``filter`` is one string, ``filtered_resps`` that filter's answer, the metric under its own
  name), ``arguments`` as ``{"gen_args_0": {"arg_0": prompt, "arg_1": generation kwargs}}``,
  ``resps``/``filtered_resps`` as strings, ``doc_hash``/``prompt_hash``/``target_hash``.

lm-eval finds these files by name (``lm_eval.utils.get_results_filenames`` needs ``/results_``,
``get_latest_filename`` the date after the last ``_``), so lirefs writes the very same names and
fields. Each alpha is one task, ``<benchmark>_alpha<+a>``, with the two filters lm-eval's own
generation tasks report: ``strict-match`` (the benchmark's answer phrase) and
``flexible-extract`` (``\\boxed{}`` first, else the last number / letter).

lm-eval is not a dependency of lirefs (measured: its package alone is 78 MB installed, before
``datasets``), and ``lm_eval.loggers.evaluation_tracker`` imports the ``datasets`` package at
import time (measured: about 7 s on a busy 2-core machine), so the writer below mirrors
``EvaluationTracker.save_results_aggregated`` / ``.save_results_samples`` (same keys, same sanitising, same JSON
options and hashes) instead of calling it; tests/evaluation/test_lm_eval_files.py checks that lm-eval's own
tracker writes identical files from the same input, and reads ours back with lm-eval's readers.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..models import hub_id
from ..store import atomic_path
from .stats import sample_stderr

if TYPE_CHECKING:
    from .result import EvalResult

__all__ = [
    "FILTERS",
    "lm_eval_payload",
    "lm_eval_results",
    "sanitize_model_name",
    "save_lm_eval",
    "write_lm_eval",
]

#: lm-eval filter name -> the record key of its extracted answer and of its correctness.
FILTERS: dict[str, tuple[str, str]] = {
    "strict-match": ("extracted", "correct"),
    "flexible-extract": ("extracted_flexible", "correct_flexible"),
}

#: Version of the task definition lirefs writes under ``versions`` (lm-eval's ``VERSION``).
TASK_VERSION = 1.0


def _hash_string(text: str) -> str:
    """``lm_eval.utils.hash_string``: sha256 hex of the UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _non_serializable(o: Any) -> Any:
    """``lm_eval.utils.handle_non_serializable``: numpy scalars to Python, sets to lists, else str."""
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, set):
        return list(o)
    return str(o)


def _sanitize_list(sub: Any) -> Any:
    """``lm_eval.utils.sanitize_list``: every leaf of nested lists/tuples as a string."""
    if isinstance(sub, list):
        return [_sanitize_list(item) for item in sub]
    if isinstance(sub, tuple):
        return tuple(_sanitize_list(item) for item in sub)
    return str(sub)


def sanitize_model_name(model_name: str) -> str:
    """``lm_eval.utils.sanitize_model_name``: the folder name lm-eval files a model's runs under."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", model_name)


def _dumps(obj: Any, **kw: Any) -> str:
    return json.dumps(obj, default=_non_serializable, ensure_ascii=False, **kw)


def lm_eval_payload(result: EvalResult) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """``(results, samples)`` as ``lm_eval.simple_evaluate`` returns them (``samples`` popped),
    before ``EvaluationTracker`` adds ``task_hashes`` and its general settings.

    ``results["config"]["model_args"]`` names the model by its Hub id (``pretrained``), the
    direction (its unit-vector hash), ``layer``, ``mode`` and the ``alpha`` values; each task's
    ``configs[task]["metadata"]`` carries its own ``alpha``. ``samples[task]`` holds one dict per
    item and filter, ``arguments`` still as lm-eval's ``[(prompt, gen_kwargs)]``.
    """
    meta = result.metadata
    settings = meta.get("settings") or {}
    model = meta.get("model") or {}
    total = (meta.get("data") or {}).get("n_total", result.n_items)
    gen = {"until": settings.get("stop"), "max_new_tokens": settings.get("max_new_tokens")}
    direction = settings.get("direction") or {}
    results: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    n_shot: dict[str, Any] = {}
    n_samples: dict[str, Any] = {}
    samples: dict[str, list[dict[str, Any]]] = {}
    for alpha in result.alphas:
        task = result.task_name(alpha)
        recs = sorted((r for r in result.records if r["alpha"] == alpha), key=lambda r: r["index"])
        entry: dict[str, Any] = {"alias": task}
        for name, (_, correct_key) in FILTERS.items():
            outcomes = np.array([bool(r.get(correct_key)) for r in recs], dtype=np.float64)
            entry[f"exact_match,{name}"] = float(outcomes.mean()) if outcomes.size else None
            entry[f"exact_match_stderr,{name}"] = sample_stderr(outcomes)
        results[task] = entry
        shots = recs[0].get("n_shots", settings.get("n_shots")) if recs else settings.get("n_shots")
        n_shot[task] = shots
        n_samples[task] = {"original": total, "effective": len(recs)}
        configs[task] = {
            "task": task,
            "output_type": "generate_until",
            "num_fewshot": shots,
            "generation_kwargs": gen,
            "metric_list": [
                {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}
            ],
            "filter_list": [{"name": name} for name in FILTERS],
            "metadata": {
                "version": TASK_VERSION,
                "benchmark": result.benchmark,
                "alpha": alpha,
                "layer": result.layer,
                "mode": settings.get("mode"),
                "lirefs_version": meta.get("lirefs_version"),
            },
        }
        samples[task] = [_sample(r, gen, name) for r in recs for name in FILTERS]
    model_args = {
        "pretrained": hub_id(model.get("name"), model.get("repo_id")),
        "direction": direction.get("unit_hash"),
        "layer": result.layer,
        "mode": settings.get("mode"),
        "alpha": list(result.alphas),
    }
    out: dict[str, Any] = {
        "results": results,
        "group_subtasks": {task: [] for task in results},
        "configs": dict(sorted(configs.items())),
        "versions": dict(sorted((task, TASK_VERSION) for task in results)),
        "n-shot": dict(sorted(n_shot.items())),
        "higher_is_better": dict(sorted((task, {"exact_match": True}) for task in results)),
        "n-samples": n_samples,
        "config": {
            "model": "lirefs",
            "model_args": model_args,
            "batch_size": settings.get("batch_size"),
            "limit": settings.get("limit"),
            "bootstrap_iters": settings.get("n_boot"),
            "gen_kwargs": gen,
            "random_seed": settings.get("seed"),
        },
        "date": _date(meta.get("created")),
        "lirefs": meta,
    }
    return out, samples


def _date(created: Any) -> float:
    """lm-eval's ``date`` (a Unix time) from the metadata's ISO ``created``, else now."""
    try:
        return _dt.datetime.fromisoformat(str(created)).timestamp()
    except ValueError:
        return time.time()


def _sample(record: dict[str, Any], gen: dict[str, Any], name: str) -> dict[str, Any]:
    """One lm-eval sample line of ``record`` under filter ``name`` (as ``evaluator.py`` builds it)."""
    extracted_key, correct_key = FILTERS[name]
    doc = {"id": record["id"], "accepted": record.get("accepted", [record["gold"]])}
    prompt = record.get("prompt") or ""
    target = record["gold"]
    sample: dict[str, Any] = {
        "doc_id": record["index"],
        "doc": doc,
        "target": target,
        "arguments": [(prompt, gen)],
        "resps": [[record["output"]]],
        "filtered_resps": [record.get(extracted_key)],
        "filter": name,
        "metrics": ["exact_match"],
        "doc_hash": _hash_string(_dumps(doc, indent=2)),
        "prompt_hash": _hash_string(prompt),
        "target_hash": _hash_string(str(target)),
        "exact_match": float(bool(record.get(correct_key))),
    }
    if "thinking" in record:
        sample["thinking"] = record["thinking"]
    return sample


def _general_config(result: EvalResult, model_args: dict[str, Any]) -> dict[str, Any]:
    """``asdict(GeneralConfigTracker)`` after ``log_experiment_args`` (model name from
    ``model_args["pretrained"]``, system instruction and chat template with their sha256)."""
    settings = result.metadata.get("settings") or {}
    name = str(model_args.get("pretrained"))
    system = settings.get("system_prompt") or None
    template = settings.get("chat_template")
    template = template if isinstance(template, str) and template else None
    return {
        "model_source": "lirefs",
        "model_name": name,
        "model_name_sanitized": sanitize_model_name(name),
        "system_instruction": system,
        "system_instruction_sha": _hash_string(system) if system else None,
        "fewshot_as_multiturn": False,
        "chat_template": template,
        "chat_template_sha": _hash_string(template) if template else None,
        "total_evaluation_time_seconds": None,
    }


def lm_eval_results(result: EvalResult) -> dict[str, Any]:
    """The aggregated results as they are written to ``results_<date id>.json``."""
    results, samples = lm_eval_payload(result)
    return _aggregated(result, results, samples)


def _aggregated(
    result: EvalResult, results: dict[str, Any], samples: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    task_hashes = {
        task: _hash_string(
            "".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in rows)
        )
        for task, rows in samples.items()
    }
    out = {**results, "task_hashes": task_hashes}
    out.update(_general_config(result, results["config"]["model_args"]))
    return out


def write_lm_eval(
    folder: str | Path,
    aggregated: dict[str, Any],
    samples: dict[str, list[dict[str, Any]]],
    *,
    date_id: str | None = None,
) -> list[Path]:
    """Write ``aggregated`` and ``samples`` under ``folder/<model_name_sanitized>/`` exactly as
    ``EvaluationTracker(output_path=folder)`` does; returns the files written (results first).

    ``date_id`` defaults to now, ``datetime.now().isoformat().replace(":", "-")`` as lm-eval.
    Each file is written atomically.
    """
    date_id = date_id or _dt.datetime.now().isoformat().replace(":", "-")
    path = Path(folder) / str(aggregated["model_name_sanitized"])
    path.mkdir(parents=True, exist_ok=True)
    written = [path / f"results_{date_id}.json"]
    with atomic_path(written[0]) as tmp:
        tmp.write_text(_dumps(aggregated, indent=2), encoding="utf-8")
    for task, rows in samples.items():
        target = path / f"samples_{task}_{date_id}.jsonl"
        with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                sample = dict(row)
                sample["arguments"] = {
                    f"gen_args_{i}": {f"arg_{j}": value for j, value in enumerate(arg)}
                    for i, arg in enumerate(row["arguments"])
                }
                sample["resps"] = _sanitize_list(row["resps"])
                sample["filtered_resps"] = _sanitize_list(row["filtered_resps"])
                sample["target"] = str(row["target"])
                fh.write(_dumps(sample) + "\n")
        written.append(target)
    return written


def save_lm_eval(result: EvalResult, folder: str | Path) -> Path:
    """Write ``result`` as lm-eval's files under ``folder``; returns the model folder inside it
    (``folder/<model name, sanitised>``, holding ``results_<date id>.json`` and one
    ``samples_<task>_<date id>.jsonl`` per alpha)."""
    results, samples = lm_eval_payload(result)
    written = write_lm_eval(folder, _aggregated(result, results, samples), samples)
    return written[0].parent
