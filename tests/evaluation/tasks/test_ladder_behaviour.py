"""scripts/ladder_behaviour.py: the counts of operation switches, equation errors and skipped
working on hand-written ladder records (expected values worked out by hand)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[3] / "scripts" / "ladder_behaviour.py"


@pytest.fixture(scope="module")
def lb() -> Any:
    spec = importlib.util.spec_from_file_location("ladder_behaviour", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(question: str, output: str, gold: str, **extra: Any) -> dict[str, Any]:
    prompt = f"Q: Sam has 5 coins. He trades away 2.\nA: 5 - 2 = 3.\n\nQ: {question}\nA:"
    return {"prompt": prompt, "output": output, "gold": gold, "alpha": 0.0, **extra}


def test_a_subtraction_done_as_an_addition_is_a_switch(lb: Any) -> None:
    rec = _record(
        "Mia has 6 erasers. She gives 3 to Hana.", " 6 + 3 = 9. The final answer is 9.", "3"
    )
    got = lb.behaviour(rec)
    assert got["switch"] == 1 and got["known"] == 1 and got["eq_error"] == 0
    assert got["working"] == 1 and got["skipped"] == 0 and got["no_answer"] == 0


def test_right_operations_with_a_wrong_sum_are_an_equation_error(lb: Any) -> None:
    rec = _record("What is 26 + 20?", " 26 + 20 = 48. The final answer is 48.", "46")
    got = lb.behaviour(rec)
    assert got["eq_error"] == 1 and got["switch"] == 0 and got["known"] == 1


def test_chained_equations_and_unspaced_operators(lb: Any) -> None:
    q = "Lily has 9 marbles. She loses 2. Theo gives her 4 more."  # 9 - 2 + 4 = 11, unique
    assert lb.gold_signs(q, 11) == ["-", "+"]
    ok = lb.behaviour(_record(q, " 9-2 = 7. 7 + 4 = 11. The final answer is 11.", "11"))
    assert (ok["eq_error"], ok["switch"]) == (0, 0)
    chained = lb.behaviour(_record(q, " 9 + 2 + 4 = 15. The final answer is 15.", "11"))
    assert (chained["eq_error"], chained["switch"]) == (0, 1)


def test_an_answer_without_working_and_no_answer(lb: Any) -> None:
    skipped = lb.behaviour(_record("What is 2 + 3?", " The final answer is 5.", "5"))
    assert (skipped["working"], skipped["skipped"], skipped["known"]) == (0, 1, 0)
    none = lb.behaviour(_record("What is 2 + 3?", " 2 + 3 = 5. 5 5 5 5", "5"))
    assert (none["no_answer"], none["working"], none["skipped"]) == (1, 0, 0)


def test_several_sign_choices_are_ambiguous(lb: Any) -> None:
    q = "Felix has 8 crayons. He gives away 2. Sofia gives him 7 more. Then he loses 5."
    assert lb.gold_signs(q, 8) is None  # 8 - 2 + 7 - 5 and 8 + 2 - 7 + 5
    got = lb.behaviour(
        _record(q, " 8 - 2 = 6. 6 + 7 = 13. 13 - 5 = 8. The final answer is 8.", "8")
    )
    assert (got["ambiguous"], got["known"], got["switch"]) == (1, 0, 0)


def test_tally_groups_by_run_and_rung(lb: Any) -> None:
    records = [
        _record("What is 2 + 3?", " 2 + 3 = 5. The final answer is 5.", "5", id="ladder-sum-1+1-001",
                correct=True),
        _record("What is 2 + 3?", " 2 + 3 = 6. The final answer is 6.", "5", id="ladder-sum-1+1-002",
                correct=False, control="random-0", alpha=0.1),
    ]  # fmt: skip
    table = lb.tally(records)
    assert table["direction +0"]["sum-1+1"]["correct"] == 1
    assert table["random-0 +0.1"]["all"]["eq_error"] == 1
