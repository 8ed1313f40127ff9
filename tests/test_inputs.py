"""Smaller bad inputs are one line of the package's own error, never an assertion or a crash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import lirefs
from lirefs.errors import DataError, DeviceError, DirectionError, SteeringError, StopArgumentError
from lirefs.inputs import MAX_PROMPT_CHARS, check_not_meta, check_prompts, check_stop


def _one_line(exc: BaseException) -> None:
    assert "\n" not in str(exc)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((torch.zeros(3, 4, dtype=torch.float32),) * 3 + (1, 1), "float64"),
        ((torch.zeros(3, 4, dtype=torch.float64),) * 3 + (-1, 1), "n_reasoning"),
        ((torch.zeros(3, 4, dtype=torch.float64),) * 3 + (1, 2.5), "n_memory"),
        ((torch.zeros(4, dtype=torch.float64),) * 3 + (1, 1), "d_model"),
        (("a", "b", "c", 1, 1), "three tensors"),
    ],
)
def test_direction_constructor_refuses_bad_parts(args: tuple[Any, ...], words: str) -> None:
    with pytest.raises(DirectionError, match=words) as err:
        lirefs.Direction(*args)
    _one_line(err.value)


def test_states_whose_class_means_overflow_are_one_line() -> None:
    from lirefs.errors import ActivationError

    huge = torch.full((2, 3, 4), 1e308, dtype=torch.float64)  # finite, but the sum overflows
    with pytest.raises(ActivationError, match="overflow") as err:
        lirefs.Direction.from_activations(huge, huge.clone())
    _one_line(err.value)


@pytest.mark.parametrize(
    "template",
    [
        "{{ raise_exception('no system turns') }}",  # TemplateError
        "{{ ''.__class__.__mro__ }}",  # SecurityError in the sandbox
        "{{ messages[0]['content'] + 5 }}",  # TypeError
        "{% for x in range(10**12) %}{% endfor %}",  # OverflowError
    ],
)
def test_a_chat_template_that_raises_is_one_line(tokenizer: Any, template: str) -> None:
    from copy import deepcopy

    tok = deepcopy(tokenizer)
    tok.chat_template = template
    with pytest.raises(DataError, match="cannot apply a chat template") as err:
        lirefs.data.format_prompt("Q?", chat_template=True, tokenizer=tok)
    _one_line(err.value)


@pytest.mark.parametrize("stop", [5, [1, 2], {"a": 1}, [""], ""])
def test_bad_stop_is_one_line_of_both_error_types(stop: Any) -> None:
    # a stop argument is caller input (DataError) and a steering setting (SteeringError)
    with pytest.raises(StopArgumentError, match="stop") as err:
        check_stop(stop)
    assert isinstance(err.value, DataError) and isinstance(err.value, SteeringError)
    _one_line(err.value)


def test_good_stop_passes() -> None:
    assert check_stop(None) == []
    assert check_stop("\n") == ["\n"]
    assert check_stop(("a", "b")) == ["a", "b"]


def test_each_input_check_has_one_implementation() -> None:
    import lirefs.checks
    import lirefs.steer.stopping

    assert lirefs.checks.check_prompts is check_prompts
    assert lirefs.steer.stopping.check_stop is check_stop


@pytest.mark.parametrize(
    ("prompts", "words"),
    [
        (["x" * (MAX_PROMPT_CHARS + 1)], "characters long"),
        (["ok", "bad \udcff bytes"], "not valid UTF-8"),
        ([b"bytes"], "non-empty strings"),
        (["ok", ""], "non-empty strings"),
        ("one prompt", "wrap it in a list"),
        ([], "at least one prompt"),
        (None, "is None"),
        (5, "list of strings"),
    ],
)
def test_bad_prompts_are_one_line(prompts: Any, words: str) -> None:
    with pytest.raises(DataError, match=words) as err:
        check_prompts(prompts)
    _one_line(err.value)


def test_a_meta_model_is_refused_for_a_local_run() -> None:
    with torch.device("meta"):
        module = torch.nn.Linear(2, 2)
    with pytest.raises(DeviceError, match="meta device"):
        check_not_meta(module)
    check_not_meta(module, remote=True)
    check_not_meta(torch.nn.Linear(2, 2))


def test_non_utf8_system_prompt_is_one_line_before_loading(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from lirefs.cli import main

    args = ["evaluate", "-B", "builtin-arithmetic", "--chat-template", "--system", "bad \udcff"]
    result = CliRunner().invoke(main, [*args, "-m", "/nonexistent/never-read"])
    assert result.exit_code == 2
    out = result.output.strip()
    assert "--system" in out and "UTF-8" in out and "\n" not in out and "never-read" not in out


# the API entry points call these checks first


def test_generate_refuses_a_stop_that_is_not_text(make_tiny: Callable[[str], Any]) -> None:
    from lirefs.errors import SteeringError

    model = make_tiny("llama")
    with pytest.raises(SteeringError, match="stop must be"):
        lirefs.generate(model, ["Q: 1 + 1?\nA:"], max_new_tokens=2, stop=5)  # type: ignore[arg-type]


def test_generate_and_collect_refuse_a_meta_model(make_tiny: Callable[[str], Any]) -> None:
    import copy

    from lirefs.errors import DeviceError

    model = make_tiny("llama")
    meta = copy.copy(model)
    meta._module = copy.deepcopy(model._module).to("meta")
    with pytest.raises(DeviceError, match="meta device"):
        lirefs.generate(meta, ["Q: 1 + 1?\nA:"], max_new_tokens=2)
    with pytest.raises(DeviceError, match="meta device"):
        lirefs.collect_activations(meta, ["Q: 1 + 1?\nA:"])


def test_generate_refuses_an_oversized_prompt(make_tiny: Callable[[str], Any]) -> None:
    from lirefs.errors import DataError
    from lirefs.inputs import MAX_PROMPT_CHARS

    with pytest.raises(DataError, match="MAX_PROMPT_CHARS"):
        lirefs.generate(make_tiny("llama"), ["x" * (MAX_PROMPT_CHARS + 1)], max_new_tokens=2)
