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


def test_every_error_and_warning_class_lives_in_errors_and_keeps_its_old_name() -> None:
    import lirefs.analysis.plots as plots
    import lirefs.collect as collect
    import lirefs.errors as errors
    import lirefs.export as export
    import lirefs.ndif as ndif
    import lirefs.reading as reading
    import lirefs.steer as steer

    moved = [
        (steer, "SteeringError"),
        (steer, "StopStringWarning"),
        (export, "ExportError"),
        (ndif, "RemoteVersionWarning"),
        (collect, "ContextLengthWarning"),
        (reading, "ReadMismatchWarning"),
        (plots, "PlotsUnavailableError"),
    ]
    for module, name in moved:
        assert getattr(module, name) is getattr(errors, name), name
    assert issubclass(errors.SteeringError, errors.LirefsError)


@pytest.mark.parametrize("bad", [None, "0.1", True, math.nan, math.inf])
def test_one_alpha_check(bad: Any) -> None:
    from lirefs.checks import check_alpha

    with pytest.raises(lirefs.SteeringError, match="alpha must be"):
        check_alpha(bad)
    assert check_alpha(np.float32(0.5)) == 0.5 and str(check_alpha(-0.0)) == "0.0"


def test_one_deprecation_helper() -> None:
    from lirefs.errors import deprecated

    with pytest.warns(DeprecationWarning, match=r"f\(x=\.\.\.\) is deprecated: pass y=; the old"):
        deprecated("f(x=...)", "pass y=", stacklevel=2)
