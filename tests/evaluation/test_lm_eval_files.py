"""lirefs' lm-eval files, read back with lm-eval 0.4.13's own readers and compared with what its
own ``EvaluationTracker`` writes from the same results."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lirefs.evaluation.lm_eval_files import lm_eval_payload, save_lm_eval, write_lm_eval
from lirefs.evaluation.result import EvalResult

lm_utils = pytest.importorskip("lm_eval.utils")

# per alpha: (output, strict answer, strict correct, flexible answer, flexible correct)
OUTCOMES = {
    0.0: [("A: 18", "18", True, "18", True), ("so 7", None, False, "7", True)],
    0.5: [("A: 3", "3", False, "3", False), ("", None, False, None, False)],
}
GOLD = ["18", "7"]


def _result(model_name: str = "smollm2-135m") -> EvalResult:
    records = []
    for alpha, rows in OUTCOMES.items():
        for index, (out, strict, ok, flex, ok_flex) in enumerate(rows):
            records.append(
                {
                    "alpha": alpha,
                    "index": index,
                    "id": f"item-{index}",
                    "prompt": f"Q: question {index}?\nA:",
                    "output": out,
                    "extracted": strict,
                    "extracted_flexible": flex,
                    "gold": GOLD[index],
                    "correct": ok,
                    "correct_flexible": ok_flex,
                    "n_shots": 0,
                }
            )
    metadata = {
        "lirefs_version": "0.1.0",
        "kind": "evaluation",
        "model": {"name": model_name, "repo_id": None, "architecture": "llama"},
        "data": {"benchmark": "gsm8k", "n_total": 10},
        "settings": {
            "mode": "add",
            "max_new_tokens": 16,
            "stop": ["\n\n"],
            "n_shots": 0,
            "seed": 0,
            "n_boot": 2000,
            "system_prompt": "Be brief.",
            "direction": {"unit_hash": "abc123"},
        },
        "created": "2026-12-07T16:00:00+00:00",
    }

    def share(key: str, alpha: float) -> float:
        return float(np.mean([r[key] for r in records if r["alpha"] == alpha]))

    alphas = list(OUTCOMES)
    return EvalResult(
        benchmark="gsm8k",
        alphas=alphas,
        n_items=2,
        accuracy={a: share("correct", a) for a in alphas},
        ci={a: (0.0, 1.0) for a in alphas},
        no_answer_rate={a: 0.0 for a in alphas},
        paired={},
        flexible_accuracy={a: share("correct_flexible", a) for a in alphas},
        flexible_ci={a: (0.0, 1.0) for a in alphas},
        records=records,
        metadata=metadata,
        layer=12,
        layer_source="given by the user",
    )


def test_lm_eval_readers_find_and_parse_the_files(tmp_path: Path) -> None:
    folder = save_lm_eval(_result(), tmp_path / "lm_eval")
    assert folder == tmp_path / "lm_eval" / "HuggingFaceTB__SmolLM2-135M-Instruct"
    names = [str(p) for p in sorted(folder.iterdir())]
    results_files = lm_utils.get_results_filenames(names)
    sample_files = lm_utils.get_sample_results_filenames(names)
    assert len(results_files) == 1 and len(sample_files) == 2
    latest = lm_utils.get_latest_filename(results_files)
    results = json.loads(Path(latest).read_text(encoding="utf-8"))
    assert results["model_name"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert results["model_name_sanitized"] == "HuggingFaceTB__SmolLM2-135M-Instruct"
    args = results["config"]["model_args"]
    assert args["pretrained"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert (args["layer"], args["mode"], args["alpha"]) == (12, "add", [0.0, 0.5])
    task = results["results"]["gsm8k_alpha+0"]
    assert task["exact_match,strict-match"] == 0.5
    assert task["exact_match,flexible-extract"] == 1.0
    assert task["exact_match_stderr,strict-match"] == pytest.approx(np.std([1, 0], ddof=1) / 2**0.5)
    assert results["versions"]["gsm8k_alpha+0.5"] == 1.0
    assert results["n-shot"]["gsm8k_alpha+0.5"] == 0
    assert results["higher_is_better"]["gsm8k_alpha+0.5"] == {"exact_match": True}
    assert results["configs"]["gsm8k_alpha+0.5"]["metadata"]["alpha"] == 0.5
    assert isinstance(results["date"], float)
    # lm-eval's own table of the results (what `lm_eval` prints)
    pytest.importorskip("pytablewriter")
    table = lm_utils.make_table(results)
    assert "gsm8k_alpha+0.5" in table and "flexible-extract" in table
    # samples: one line per item and filter, the task name recovered from the file name
    by_task = {lm_utils.get_file_task_name(Path(f).name): f for f in sample_files}
    assert set(by_task) == {"gsm8k_alpha+0", "gsm8k_alpha+0.5"}
    lines = [json.loads(x) for x in Path(by_task["gsm8k_alpha+0"]).read_text().splitlines()]
    assert [(s["doc_id"], s["filter"]) for s in lines] == [
        (0, "strict-match"),
        (0, "flexible-extract"),
        (1, "strict-match"),
        (1, "flexible-extract"),
    ]
    assert [s["filtered_resps"] for s in lines] == [["18"], ["18"], ["None"], ["7"]]
    assert [s["exact_match"] for s in lines] == [1.0, 1.0, 0.0, 1.0]
    assert lines[0]["arguments"]["gen_args_0"]["arg_0"] == "Q: question 0?\nA:"
    assert lines[0]["target"] == "18" and lines[0]["resps"] == [["A: 18"]]
    assert lines[0]["prompt_hash"] == lm_utils.hash_string("Q: question 0?\nA:")


def test_same_files_as_lm_evals_own_tracker(tmp_path: Path) -> None:
    tracker_mod = pytest.importorskip("lm_eval.loggers.evaluation_tracker")
    result = _result()
    results, samples = lm_eval_payload(result)
    date_id = "2026-12-07T16-00-00.000000"

    tracker = tracker_mod.EvaluationTracker(output_path=str(tmp_path / "theirs"))
    tracker.general_config_tracker.log_experiment_args(
        model_source="lirefs",
        model_args=copy.deepcopy(results["config"]["model_args"]),
        system_instruction="Be brief.",
        chat_template=None,
        fewshot_as_multiturn=False,
    )
    theirs_results = copy.deepcopy(results)
    tracker.save_results_aggregated(results=theirs_results, samples=copy.deepcopy(samples))
    for task, rows in samples.items():
        tracker.save_results_samples(task_name=task, samples=copy.deepcopy(rows))
    their_folder = tmp_path / "theirs" / "HuggingFaceTB__SmolLM2-135M-Instruct"
    their_files = sorted(their_folder.iterdir())
    assert len(their_files) == 3

    from lirefs.evaluation.lm_eval_files import lm_eval_results

    ours = write_lm_eval(tmp_path / "ours", lm_eval_results(result), samples, date_id=date_id)

    def normalised(path: Path) -> Any:
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            data["total_evaluation_time_seconds"] = None  # the tracker times itself
            return data
        return path.read_text(encoding="utf-8")

    def key(path: Path) -> str:
        return path.name.replace(tracker.date_id, "DATE").replace(date_id, "DATE")

    mine = {key(p): normalised(p) for p in ours}
    theirs = {key(p): normalised(p) for p in their_files}
    assert (
        set(mine)
        == set(theirs)
        == {
            "results_DATE.json",
            "samples_gsm8k_alpha+0_DATE.jsonl",
            "samples_gsm8k_alpha+0.5_DATE.jsonl",
        }
    )
    assert mine == theirs


def test_result_save_writes_the_lm_eval_folder(tmp_path: Path) -> None:
    result = _result(model_name="/some/local/folder")
    result.save(tmp_path / "out")
    folder = tmp_path / "out" / "lm_eval" / "__some__local__folder"
    names = [str(p) for p in folder.iterdir()]
    assert len(lm_utils.get_results_filenames(names)) == 1
    assert result.lm_eval_results()["model_name"] == "/some/local/folder"
