"""Bad arguments to the Python API are the package's own errors, and numpy scalars are numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import lirefs
from lirefs.checks import finite_number, positive_int
from lirefs.errors import DataError, DirectionError


@pytest.mark.parametrize("bad", [None, 3, "", "  ", ["builtin"]])
def test_data_load_refuses_what_is_not_a_source(bad: Any) -> None:
    with pytest.raises(DataError, match="source must be 'builtin'"):
        lirefs.data.load(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(np.float32(0.1), float(np.float32(0.1))), (np.int64(2), 2.0), (0.5, 0.5), (-3, -3.0)],
)
def test_numpy_scalars_are_numbers(value: Any, expected: float) -> None:
    assert finite_number(value, "alpha") == expected


@pytest.mark.parametrize(
    "bad", [None, "0.1", True, math.nan, math.inf, -math.inf, np.float64("nan")]
)
def test_what_is_not_a_finite_number_is_refused(bad: Any) -> None:
    with pytest.raises(DirectionError, match="alpha must be a"):
        finite_number(bad, "alpha", DirectionError)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None, "8", np.float64(2.0)])
def test_what_is_not_a_positive_whole_number_is_refused(bad: Any) -> None:
    with pytest.raises(DataError, match=r"batch_size must be a whole number >= 1"):
        positive_int(bad, "batch_size")


def test_numpy_integers_are_whole_numbers() -> None:
    assert positive_int(np.int32(3), "batch_size") == 3
