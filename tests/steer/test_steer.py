"""Steered generation: lirefs.generate against a plain-PyTorch hook reference, token for token."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from reference_hooks import reference_forward, reference_generate, reference_logits

import lirefs
import tracers
from lirefs.steer import MODES, SteeringError, StopStringWarning, get_mode, plan, unmatched_stops

FAMILIES = ["llama", "gpt2", "gemma2", "gpt_neox"]
NEW = 8


def _direction(model: Any, seed: int = 1) -> torch.Tensor:
    """A fixed random ``[d_model]`` float64 direction for a model."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(lirefs.model_info(model).d_model, generator=g, dtype=torch.float64)


def _ref(model: Any, prompts: list[str], **kw: Any) -> list[list[int]]:
    return reference_generate(model._module, model.tokenizer, prompts, **kw)


def _run(model: Any, prompts: list[str], r: torch.Tensor | None, **kw: Any) -> list[list[int]]:
    out = lirefs.generate(model, prompts, direction=r, batch_size=len(prompts), **kw)
    assert len(out.token_ids) == len(prompts) == len(out.texts)
    return out.token_ids


# --------------------------------------------------------------------------------------------
# equality with the reference


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("mode", "alpha"), [("project", 0.1), ("project", -0.1), ("project", 3.0), ("ablate", 0.0)]
)
def test_projection_modes_match_reference(
    make_tiny: Callable[[str], Any], prompts: list[str], family: str, mode: str, alpha: float
) -> None:
    model = make_tiny(family)
    r = _direction(model)
    got = _run(model, prompts, r, alpha=alpha, mode=mode, layer=None, max_new_tokens=NEW)
    want = _ref(model, prompts, vector=r, alpha=alpha, mode=mode, max_new_tokens=NEW)
    assert got == want
    if mode == "project" and alpha == 3.0:  # a strong edit must change something
        plain = _ref(model, prompts, vector=None, alpha=0.0, mode=mode, max_new_tokens=NEW)
        assert got != plain


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("layer", [1, 3])
def test_add_matches_reference(
    make_tiny: Callable[[str], Any], prompts: list[str], family: str, layer: int
) -> None:
    model = make_tiny(family)
    r = _direction(model)
    got = _run(model, prompts, r, alpha=8.0, mode="add", layer=layer, max_new_tokens=NEW)
    want = _ref(model, prompts, vector=r, alpha=8.0, mode="add", layer=layer, max_new_tokens=NEW)
    assert got == want
    plain = _ref(model, prompts, vector=None, alpha=0.0, mode="add", max_new_tokens=NEW)
    assert got != plain


@pytest.mark.parametrize("positions", ["prompt", "generated", (-1, -2)])
def test_positions_match_reference(
    make_tiny: Callable[[str], Any], prompts: list[str], positions: Any
) -> None:
    model = make_tiny("llama")
    r = _direction(model)
    kw = {"alpha": 3.0, "mode": "project", "positions": positions, "max_new_tokens": NEW}
    got = _run(model, prompts, r, **kw)
    assert got == _ref(model, prompts, vector=r, **kw)


def test_layer_range_and_calibrated_match_reference(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("gpt2")
    r = _direction(model)
    got = _run(model, prompts, r, alpha=2.0, mode="project", blocks=[1, 2], max_new_tokens=NEW)
    want = _ref(
        model, prompts, vector=r, alpha=2.0, mode="project", blocks=[1, 2], max_new_tokens=NEW
    )
    assert got == want
    per = lirefs.calibrated_alpha(2.0, 3)
    assert (1 + per) ** 3 == pytest.approx(3.0)
    got = _run(model, prompts, r, alpha=2.0, mode="project-calibrated", max_new_tokens=NEW)
    assert got == _ref(model, prompts, vector=r, alpha=per, mode="project", max_new_tokens=NEW)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_alpha_zero_is_plain_hf_generate(
    make_tiny: Callable[[str], Any], prompts: list[str], family: str
) -> None:
    model = make_tiny(family)
    r = _direction(model)
    plain = _ref(model, prompts, vector=None, alpha=0.0, mode="project", max_new_tokens=NEW)
    # batch_size 2: prompts are re-batched by length and returned in the caller's order
    out = lirefs.generate(model, prompts, direction=r, alpha=0.0, batch_size=2, max_new_tokens=NEW)
    assert out.token_ids == plain
    assert out.texts == model.tokenizer.batch_decode(plain, skip_special_tokens=True)


def test_sweep_equals_single_runs(make_tiny: Callable[[str], Any], prompts: list[str]) -> None:
    model = make_tiny("gpt_neox")
    r = _direction(model)
    swept = lirefs.generate(model, prompts, direction=r, alpha=[0.0, 3.0], max_new_tokens=NEW)
    assert list(swept) == [0.0, 3.0]
    for a in (0.0, 3.0):
        single = lirefs.generate(model, prompts, direction=r, alpha=a, max_new_tokens=NEW)
        assert swept[a].token_ids == single.token_ids
        assert swept[a].settings["alpha"] == a


# --------------------------------------------------------------------------------------------
# what the edits do to the states


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox"])
def test_ablation_leaves_no_component(
    make_tiny: Callable[[str], Any], prompts: list[str], family: str
) -> None:
    model = make_tiny(family)
    u = tracers.unit_vector(_direction(model))
    n = tracers.n_layers(model)
    inputs = next(lirefs.batching.prompt_batches(model, prompts, 8)).inputs
    outs: list[Any] = []
    with torch.inference_mode(), model.trace(inputs):
        for i in range(n):
            tracers.ablate(model, u, blocks=[i])
            outs.append(tracers.block(model, i).output.save())
    plain: list[Any] = []
    with torch.inference_mode(), model.trace(inputs):
        for i in range(n):
            plain.append(tracers.block(model, i).output.save())
    for i in range(n):
        along = outs[i] @ u.float()
        scale = outs[i].abs().max()
        assert along.abs().max() <= 1e-5 * scale, (i, float(along.abs().max()))
        assert (plain[i] @ u.float()).abs().max() > 1e-2 * plain[i].abs().max()


def test_position_restricted_edit_leaves_other_tokens(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    v = _direction(model)
    inputs = next(lirefs.batching.prompt_batches(model, prompts, 8)).inputs
    before: list[Any] = []
    after: list[Any] = []
    with torch.inference_mode(), model.trace(inputs):
        before.append(tracers.block(model, 1).input.save())
        tracers.add(model, 1, v, 5.0, positions=[-1])
        after.append(tracers.block(model, 1).input.save())
        after.append(tracers.residual(model, 3).save())
    plain: list[Any] = []
    with torch.inference_mode(), model.trace(inputs):
        plain.append(tracers.residual(model, 3).save())
    x, y = before[0], after[0]
    assert torch.equal(y[:, :-1], x[:, :-1])
    assert torch.equal(y[:, -1], x[:, -1] + 5.0 * v.float())
    # causal attention: earlier tokens are unchanged downstream, the edited one is not
    assert torch.equal(after[1][:, :-1], plain[0][:, :-1])
    assert not torch.allclose(after[1][:, -1], plain[0][:, -1])


def test_position_mask_table() -> None:
    assert tracers.position_mask(4, "all", 3) is None
    assert tracers.position_mask(4, "prompt", None) is None
    assert not tracers.position_mask(1, "prompt", 2).any()
    assert not tracers.position_mask(4, "generated", 0).any()
    assert tracers.position_mask(1, "generated", 1) is None
    assert tracers.position_mask(4, [-1, 0], 0).tolist() == [True, False, False, True]
    assert not tracers.position_mask(1, [-1], 1).any()
    with pytest.raises(tracers.PositionError, match="outside"):
        tracers.position_mask(4, [4], 0)
    with pytest.raises(tracers.PositionError, match="middle"):
        tracers.position_mask(4, "middle", 0)


def test_tensor_edits_cast_and_scale() -> None:
    x = torch.randn(2, 3, 8, dtype=torch.bfloat16)
    u = tracers.unit_vector(torch.randn(8, dtype=torch.float64))
    y = tracers.scale_component(x, u, 0.5)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape
    x32 = torch.randn(2, 3, 8)
    u32 = u.float()
    along = x32 @ u32
    y32 = tracers.scale_component(x32, u, 0.5)
    assert torch.allclose(y32 @ u32, 1.5 * along, atol=1e-5)
    assert torch.allclose(tracers.remove_component(x32, u) @ u32, torch.zeros(2, 3), atol=1e-5)
    assert torch.equal(tracers.add_vector(x32, u, 2.0, "prompt", step=1), x32)


# --------------------------------------------------------------------------------------------
# persistent steering, remote path


def test_persistent_steering_restores_exactly(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    r = _direction(model)
    plain = lirefs.generate(model, prompts, max_new_tokens=NEW).token_ids
    once = lirefs.generate(model, prompts, direction=r, alpha=3.0, max_new_tokens=NEW).token_ids
    assert once != plain
    handle = lirefs.steered(model, r, alpha=3.0)
    with handle as steered_model:
        assert lirefs.generate(steered_model, prompts, max_new_tokens=NEW).token_ids == once
        assert lirefs.generate(steered_model, prompts, max_new_tokens=NEW).token_ids == once
        assert lirefs.generate(model, prompts, max_new_tokens=NEW).token_ids == plain
    assert not handle.active
    assert lirefs.generate(handle.model, prompts, max_new_tokens=NEW).token_ids == plain
    assert lirefs.generate(model, prompts, max_new_tokens=NEW).token_ids == plain


@pytest.mark.remote
def test_remote_local_equals_local(make_tiny: Callable[[str], Any], prompts: list[str]) -> None:
    model = make_tiny("gpt2")
    r = _direction(model)
    kw: dict[str, Any] = {"direction": r, "alpha": 3.0, "max_new_tokens": NEW}
    local = lirefs.generate(model, prompts[:3], **kw)
    via = lirefs.generate(model, prompts[:3], remote="local", **kw)
    assert via.token_ids == local.token_ids
    # remote requests leave the stop to the client: the rows must still end at the same token
    stop = _stop_inside(model, local.token_ids[0])
    local = lirefs.generate(model, prompts[:3], stop=stop, **kw)
    via = lirefs.generate(model, prompts[:3], stop=stop, remote="local", **kw)
    assert via.token_ids == local.token_ids and local.stopped[0]


# --------------------------------------------------------------------------------------------
# stop strings


def _stop_inside(model: Any, ids: list[int]) -> str:
    """Three characters from the middle of the text of ``ids``: a stop string the row reaches."""
    text = model.tokenizer.decode(ids, skip_special_tokens=True)
    assert len(text) >= 6, text
    return text[len(text) // 2 : len(text) // 2 + 3]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_stop_cuts_at_the_first_token_that_completes_it(
    make_tiny: Callable[[str], Any], prompts: list[str], family: str
) -> None:
    model = make_tiny(family)
    free = lirefs.generate(model, prompts, max_new_tokens=2 * NEW, batch_size=len(prompts))
    stop = _stop_inside(model, free.token_ids[1])
    got = lirefs.generate(
        model, prompts, max_new_tokens=2 * NEW, batch_size=len(prompts), stop=[stop]
    )
    tok = model.tokenizer
    for f_ids, g_ids, g_text, g_stopped in zip(
        free.token_ids, got.token_ids, got.texts, got.stopped, strict=True
    ):
        assert f_ids[: len(g_ids)] == g_ids  # stopping never changes the tokens before the stop
        if stop in tok.decode(f_ids, skip_special_tokens=True):
            assert stop in g_text and g_stopped
            assert stop not in tok.decode(g_ids[:-1], skip_special_tokens=True)
        else:
            assert g_ids == f_ids
    assert len(got.token_ids[1]) < len(free.token_ids[1])
    assert got.settings["stop"] == [stop]


def test_a_stop_string_that_never_occurs_warns_and_cuts_nothing(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    free = lirefs.generate(model, prompts, max_new_tokens=NEW, batch_size=len(prompts))
    absent = "\u2603never\u2603"  # not in the vocabulary's text at all
    with pytest.warns(StopStringWarning, match="occurred in none of the"):
        got = lirefs.generate(
            model, prompts, max_new_tokens=NEW, batch_size=len(prompts), stop=[absent]
        )
    assert got.token_ids == free.token_ids and got.texts == free.texts
    reached = _stop_inside(model, free.token_ids[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", StopStringWarning)
        lirefs.generate(model, prompts, max_new_tokens=NEW, batch_size=len(prompts),
                        stop=[reached])  # fmt: skip
    assert unmatched_stops(["a\nQ: b", "c"], ["\nQ:", "\\nQ:"]) == ["\\nQ:"]


# --------------------------------------------------------------------------------------------
# compounding


def test_effective_scale_and_table() -> None:
    assert lirefs.effective_scale(0.1, 30) == pytest.approx(1.1**30)
    assert lirefs.effective_scale(0.1, 30) > 17
    table = lirefs.scale_table([0.1, -0.1], 30)
    assert len(table) == 30
    assert table[-1]["0.1"] == pytest.approx(1.1**30)
    assert table[0]["-0.1"] == pytest.approx(0.9)
    calibrated = lirefs.scale_table([0.1], 30, mode="project-calibrated")
    assert calibrated[-1]["0.1"] == pytest.approx(1.1)
    assert lirefs.calibrated_alpha(-1.0, 30) == -1.0
    with pytest.raises(SteeringError, match=">= -1"):
        lirefs.calibrated_alpha(-2.0, 30)


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "boost", "alpha": 0.1}, SteeringError, "boost"),
        ({"positions": "middle", "alpha": 0.1}, SteeringError, "middle"),
        ({"positions": [0], "alpha": 0.1}, SteeringError, "negative"),
        ({"alpha": math.nan}, SteeringError, "finite"),
        ({"alpha": math.inf}, SteeringError, "finite"),
        ({"alpha": 0.1, "layer": 9}, lirefs.LayerError, "0..3"),
        ({"alpha": 0.1, "mode": "add"}, lirefs.LayerError, "layer="),
        ({"alpha": 0.1, "blocks": [3]}, lirefs.LayerError, "blocks 0..2"),
        ({"alpha": -2.0, "mode": "project-calibrated"}, SteeringError, ">= -1"),
        ({"alpha": 0.1, "max_new_tokens": 0}, SteeringError, "max_new_tokens"),
        ({"alpha": 0.1, "stop": [""]}, SteeringError, "stop"),
        ({"alpha": 0.1, "stop": [3]}, SteeringError, "stop"),
    ],
)
def test_bad_settings_raise(
    make_tiny: Callable[[str], Any],
    prompts: list[str],
    kwargs: dict[str, Any],
    error: type,
    match: str,
) -> None:
    model = make_tiny("llama")
    with pytest.raises(error, match=match):
        lirefs.generate(model, prompts, direction=_direction(model), **kwargs)


def test_bad_directions_raise(make_tiny: Callable[[str], Any], prompts: list[str]) -> None:
    llama, gpt2 = make_tiny("llama"), make_tiny("gpt2")
    with pytest.raises(lirefs.DirectionError, match=r"\[64\]"):
        lirefs.generate(llama, prompts, direction=torch.ones(65), alpha=0.1)
    with pytest.raises(lirefs.DirectionError, match="norm"):
        lirefs.generate(llama, prompts, direction=torch.zeros(64), alpha=0.1)
    with pytest.raises(SteeringError, match="needs direction"):
        lirefs.generate(llama, prompts, alpha=0.1)
    acts = torch.randn(4, 4, 64)
    liref = lirefs.Direction.from_activations(acts[:2], acts[2:] + 1, model=llama)
    with pytest.raises(lirefs.LayerError, match="layer="):
        lirefs.generate(llama, prompts, direction=liref, alpha=0.1)
    with pytest.raises((lirefs.DirectionError, lirefs.MetadataMismatchError)):
        lirefs.generate(gpt2, prompts, direction=liref, layer=2, alpha=0.1)
    with pytest.raises(lirefs.DataError, match="single string"):
        lirefs.generate(llama, "Q: hi\nA: ", direction=liref, layer=2, alpha=0.1)


# --------------------------------------------------------------------------------------------
# the real model


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "alpha"), [("project", 0.1), ("project", -0.1), ("ablate", 0.0)])
def test_smollm2_matches_reference(
    smollm2: Any, prompts: list[str], mode: str, alpha: float
) -> None:
    r = _direction(smollm2, seed=3)
    got = _run(smollm2, prompts[:3], r, alpha=alpha, mode=mode, max_new_tokens=10)
    want = _ref(smollm2, prompts[:3], vector=r, alpha=alpha, mode=mode, max_new_tokens=10)
    assert got == want


@pytest.mark.slow
def test_smollm2_add_and_plain(smollm2: Any, prompts: list[str]) -> None:
    r = _direction(smollm2, seed=3)
    got = _run(smollm2, prompts[:3], r, alpha=20.0, mode="add", layer=15, max_new_tokens=10)
    want = _ref(smollm2, prompts[:3], vector=r, alpha=20.0, mode="add", layer=15, max_new_tokens=10)
    assert got == want
    plain = _run(smollm2, prompts[:3], None, max_new_tokens=10)
    assert plain == _ref(
        smollm2, prompts[:3], vector=None, alpha=0.0, mode="add", max_new_tokens=10
    )
    assert got != plain  # adding 20 r̂ at layer 15 changes the generations


# --------------------------------------------------------------------------------------------
# command line


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Any:
    """A tiny random Llama saved as an HF folder, so the CLI can load it by path."""
    from tiny_models import tiny_config
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config("llama")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    model = lirefs.load_model(str(folder), device="cpu")
    acts = torch.randn(6, 4, 64, generator=torch.Generator().manual_seed(2))
    liref = lirefs.Direction.from_activations(acts[:3] + 1, acts[3:], model=model)
    path = tmp_path_factory.mktemp("direction") / "liref.safetensors"
    liref.save(path)  # outside the model folder: its weight files are part of its fingerprint
    return folder, model, liref, path


def test_cli_json_matches_api(tiny_folder: Any) -> None:
    import json

    from click.testing import CliRunner

    from lirefs.cli import main

    folder, model, liref, path = tiny_folder
    questions = ["Who wrote Hamlet?", "What is 12 times 7?"]
    args = ["steer", *questions, "--model", str(folder), "-d", str(path)]
    args += ["-l", "2", "-a", "0", "--alpha", "3", "-n", "5", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [run["alpha"] for run in report["runs"]] == [0.0, 3.0]
    assert report["runs"][1]["effective_scale"] == pytest.approx(4.0**3)
    prompts = [f"Q: {q}\nA: " for q in questions]
    for run in report["runs"]:
        api = lirefs.generate(
            model, prompts, direction=liref, layer=2, alpha=run["alpha"], max_new_tokens=5
        )
        assert [o["token_ids"] for o in run["outputs"]] == api.token_ids
        assert [o["prompt"] for o in run["outputs"]] == prompts


def test_cli_bad_input_is_one_line(tiny_folder: Any) -> None:
    from click.testing import CliRunner

    from lirefs.cli import main

    folder, _, _, path = tiny_folder
    liref = str(path)
    runner = CliRunner()
    for extra, words in [
        (["--positions", "middle"], "middle"),
        (["-l", "9"], "out of range"),
        (["-l", "2", "-a", "nan"], "finite"),
    ]:
        result = runner.invoke(main, ["steer", "hi", "--model", str(folder), "-d", liref, *extra])
        assert result.exit_code == 2, result.output
        assert words in result.stderr and "Traceback" not in result.output


# --------------------------------------------------------------------------------------------
# the modes table and the public edit block


def test_modes_table_names_and_unknown_mode() -> None:
    assert list(MODES) == ["project", "project-calibrated", "add", "ablate"]
    assert get_mode("add") is MODES["add"] and not MODES["add"].projects
    with pytest.raises(SteeringError, match="'boost' is not one of project"):
        get_mode("boost")


@pytest.mark.parametrize(
    ("mode", "alpha", "per_edit", "scale"),
    [
        ("project", 0.1, 0.1, 1.1**30),
        ("project-calibrated", 0.5, 1.5 ** (1 / 30) - 1, 1.5),
        ("ablate", -1.0, -1.0, 0.0),
        ("ablate", 0.0, -1.0, 0.0),
    ],
)
def test_mode_rows_give_per_edit_and_effective_scale(
    mode: str, alpha: float, per_edit: float, scale: float
) -> None:
    row = get_mode(mode)
    assert row.per_edit(alpha, 30) == pytest.approx(per_edit)
    assert row.effective_scale(alpha, 30) == pytest.approx(scale)
    assert get_mode("add").effective_scale(4.0, 30) is None


def test_ablate_refuses_an_alpha_it_would_ignore(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    with pytest.raises(SteeringError, match=r"'ablate' does not accept alpha=0\.5"):
        lirefs.generate(model, prompts, direction=_direction(model), alpha=0.5, mode="ablate")


def test_overflowing_effective_scale_is_inf() -> None:
    assert lirefs.effective_scale(1e308, 30) == math.inf
    assert lirefs.effective_scale(-1e308, 3) == -math.inf
    assert lirefs.scale_table([1e308], 3)[-1]["1e+308"] == math.inf


@pytest.mark.parametrize(("mode", "alpha", "layer"), [("project", 1e20, None), ("add", 1e30, 1)])
def test_non_finite_states_are_an_error_naming_alpha(
    make_tiny: Callable[[str], Any], prompts: list[str], mode: str, alpha: float, layer: Any
) -> None:
    model = make_tiny("llama")
    r = _direction(model)
    inputs = next(lirefs.batching.prompt_batches(model, prompts, 8)).inputs
    hooked = reference_forward(model._module, inputs, vector=r, alpha=alpha, mode=mode, layer=layer)
    # the plain-PyTorch edit leaves float32 too: a state's squared norm (what RMSNorm takes) is inf
    squares = [h.float().pow(2).sum(-1) for h in hooked.hidden_states]
    assert not all(torch.isfinite(q).all() for q in squares)
    with pytest.raises(SteeringError, match=re.escape(f"alpha={alpha:g}") + ".*NaN/inf"):
        lirefs.generate(
            model, prompts, direction=r, alpha=alpha, mode=mode, layer=layer, max_new_tokens=2
        )


@pytest.mark.parametrize(
    ("mode", "alpha", "layer", "blocks"),
    [("project", 3.0, None, None), ("add", 8.0, 1, None), ("ablate", 0.0, None, [0, 2])],
)
@pytest.mark.parametrize("remote", [False, "local"])
def test_apply_edit_in_a_plain_trace_matches_hooks(
    make_tiny: Callable[[str], Any],
    prompts: list[str],
    mode: str,
    alpha: float,
    layer: Any,
    blocks: Any,
    remote: Any,
) -> None:
    """Teacher-forced logits under steering: the public block inside a plain model.trace."""
    from lirefs.ndif import trace_kwargs

    model = make_tiny("gpt2")
    r = _direction(model)
    inputs = next(lirefs.batching.prompt_batches(model, prompts, 8)).inputs
    kw = plan(model, r, layer, alpha, mode, blocks=blocks).tracer_kwargs()
    logits: Any = None
    with torch.inference_mode(), model.trace(inputs, **trace_kwargs(remote)):
        tracers.apply_edit(model, step=None, **kw)
        logits = model.output.logits.save()
    want = reference_logits(
        model._module, inputs, vector=r, alpha=alpha, mode=mode, layer=layer, blocks=blocks
    )
    plain = reference_logits(model._module, inputs, vector=None, alpha=0.0, mode=mode)
    assert torch.allclose(logits, want, atol=1e-5, rtol=0)
    assert not torch.allclose(want, plain, atol=1e-3)


def test_plan_without_edit_leaves_the_trace_plain(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    steering = plan(model, _direction(model), None, 0.0, "project")
    assert not steering.edits and steering.tracer_kwargs()["unit"] is None


# --------------------------------------------------------------------------------------------
# block numbers are blocks=; the old layers= still works for one release


def test_generate_layers_keyword_is_deprecated_and_equal(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("gpt2")
    r = _direction(model)
    kw: dict[str, Any] = {"direction": r, "alpha": 2.0, "max_new_tokens": NEW}
    new = lirefs.generate(model, prompts, blocks=[1, 2], **kw)
    with pytest.warns(DeprecationWarning, match=r"pass blocks="):
        old = lirefs.generate(model, prompts, layers=[1, 2], **kw)
    assert old.token_ids == new.token_ids
    assert old.settings["blocks"] == [1, 2]
    with pytest.warns(DeprecationWarning, match=r"lirefs.sweep\(layers=...\) is deprecated"):
        lirefs.sweep(model, prompts, [2.0], layers=[1, 2], direction=r, max_new_tokens=1)
    with pytest.raises(SteeringError, match="blocks= only"):
        lirefs.generate(model, prompts, blocks=[1], layers=[1], **kw)


def test_steered_layers_keyword_is_deprecated(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    with pytest.warns(DeprecationWarning, match=r"lirefs.steered\(layers=...\)"):
        handle = lirefs.steered(model, _direction(model), alpha=3.0, layers=[1])
    assert handle.plan.blocks == [1]
    handle.remove()


def test_tracers_layers_keyword_is_deprecated(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    u = tracers.unit_vector(_direction(model))
    inputs = next(lirefs.batching.prompt_batches(model, prompts, 8)).inputs
    new: list[Any] = []
    old: list[Any] = []
    with torch.inference_mode(), model.trace(inputs):
        tracers.paper_project(model, u, 2.0, blocks=[1])
        new.append(model.output.logits.save())
    warns = pytest.warns(DeprecationWarning, match=r"tracers.paper_project\(layers=...\)")
    with warns, torch.inference_mode(), model.trace(inputs):
        tracers.paper_project(model, u, 2.0, layers=[1])
        old.append(model.output.logits.save())
    assert torch.equal(new[0], old[0])
    warns = pytest.warns(DeprecationWarning, match=r"tracers.ablate\(layers=...\)")
    with warns, torch.inference_mode(), model.trace(inputs):
        tracers.ablate(model, u, layers=[0])


# --------------------------------------------------------------------------------------------
# tracers' shape checks survive python -O


def test_edit_shape_checks_raise_tracer_errors() -> None:
    with pytest.raises(tracers.ShapeError, match="batch, tokens, d_model"):
        tracers.scale_component(torch.zeros(3, 8), torch.ones(8), 0.1)
    with pytest.raises(tracers.ShapeError, match="d_model is 8"):
        tracers.add_vector(torch.zeros(1, 2, 8), torch.ones(7), 1.0)
    with pytest.raises(tracers.ShapeError, match=r"\[d_model\]"):
        tracers.unit_vector(torch.ones(2, 2))
    assert issubclass(tracers.ShapeError, tracers.TracerError)


def test_edit_shape_checks_survive_python_optimize() -> None:
    import subprocess
    import sys

    code = (
        "import torch, tracers\n"
        "try:\n"
        "    tracers.scale_component(torch.zeros(3, 8), torch.ones(8), 0.1)\n"
        "except tracers.ShapeError:\n"
        "    print('raised')\n"
    )
    out = subprocess.run(
        [sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == "raised", out.stderr


def test_cli_refuses_alphas_the_mode_cannot_use(tiny_folder: Any) -> None:
    from click.testing import CliRunner

    from lirefs.cli import main

    folder, _, _, path = tiny_folder
    base = ["steer", "hi", "--model", str(folder), "-d", str(path), "-l", "2", "-n", "2"]
    runner = CliRunner()
    for extra, words in [
        (["--mode", "ablate", "-a", "0.5"], "'ablate' does not accept alpha=0.5"),
        (["-a", "1e308"], "alpha=1e+308"),
        (["--mode", "add", "-a", "1e30"], "alpha=1e+30"),
        (["-a", ","], "gives no number"),
    ]:
        result = runner.invoke(main, [*base, *extra])
        assert result.exit_code == 2, result.output
        assert words in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_cli_blocks_option_and_deprecated_layers(tiny_folder: Any) -> None:
    import json

    from click.testing import CliRunner

    from lirefs.cli import main

    folder, model, liref, path = tiny_folder
    base = ["steer", "hi", "--model", str(folder), "-d", str(path), "-l", "2", "-n", "3"]
    base += ["-a", "3", "--json"]
    runner = CliRunner()
    new = runner.invoke(main, [*base, "--blocks", "1-2"])
    old = runner.invoke(main, [*base, "--layers", "1-2"])
    assert new.exit_code == 0 and old.exit_code == 0, new.output + old.output
    assert "--layers is deprecated" in old.stderr and "--blocks" in old.stderr
    got = json.loads(new.stdout)["runs"][0]
    assert got["settings"]["blocks"] == [1, 2]
    assert json.loads(old.stdout)["runs"][0]["outputs"] == got["outputs"]
    api = lirefs.generate(
        model, ["Q: hi\nA: "], direction=liref, layer=2, alpha=3.0, blocks=[1, 2], max_new_tokens=3
    )
    assert [o["token_ids"] for o in got["outputs"]] == api.token_ids
    help_text = runner.invoke(main, ["steer", "--help"]).output
    for name in MODES:
        assert name in help_text


# --------------------------------------------------------------------------------------------
# one steering value, one engine interface


def test_a_plan_steers_generate_as_the_keywords_do(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    r = _direction(model)
    steering = plan(model, r, alpha=3.0)
    by_plan = lirefs.generate(model, prompts, plan=steering, max_new_tokens=NEW)
    by_keywords = lirefs.generate(model, prompts, direction=r, alpha=3.0, max_new_tokens=NEW)
    assert by_plan.token_ids == by_keywords.token_ids
    assert by_plan.settings == by_keywords.settings
    none = lirefs.SteeringPlan.none(model)
    assert not none.edits and none.effective_scale == 1.0
    plain = lirefs.generate(model, prompts, plan=none, max_new_tokens=NEW)
    assert plain.token_ids == _ref(
        model, prompts, vector=None, alpha=0.0, mode="project", max_new_tokens=NEW
    )
    assert plain.token_ids != by_plan.token_ids
    with pytest.raises(SteeringError, match="plan= and alpha="):
        lirefs.generate(model, prompts, plan=steering, alpha=0.1)
    with pytest.raises(SteeringError, match=r"plan must be a lirefs\.steer\.SteeringPlan"):
        lirefs.generate(model, prompts, plan={"alpha": 0.1})  # type: ignore[arg-type]


def test_sweep_takes_plans_and_generate_lists_are_deprecated(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("gpt2")
    r = _direction(model)
    plans = [lirefs.SteeringPlan.none(model), plan(model, r, alpha=3.0)]
    by_plans = lirefs.sweep(model, prompts, plans, max_new_tokens=NEW)
    by_alphas = lirefs.sweep(model, prompts, [0.0, 3.0], direction=r, max_new_tokens=NEW)
    assert list(by_plans) == [0.0, 3.0]
    assert [o.token_ids for o in by_plans.values()] == [o.token_ids for o in by_alphas.values()]
    with pytest.warns(DeprecationWarning, match=r"lirefs.sweep\(model, prompts, alphas"):
        old: Any = lirefs.generate(
            model, prompts, direction=r, alpha=[0.0, 3.0], max_new_tokens=NEW
        )
    assert [o.token_ids for o in old.values()] == [o.token_ids for o in by_alphas.values()]


def test_ablation_takes_no_alpha_and_the_old_spelling_warns(
    make_tiny: Callable[[str], Any], prompts: list[str]
) -> None:
    model = make_tiny("llama")
    r = _direction(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        ablation = plan(model, r, mode="ablate")  # no alpha: no warning
    assert ablation.edits and ablation.per_edit == -1.0 and ablation.effective_scale == 0.0
    want = _ref(model, prompts, vector=r, alpha=-1.0, mode="ablate", max_new_tokens=NEW)
    assert lirefs.generate(model, prompts, plan=ablation, max_new_tokens=NEW).token_ids == want
    for old in (0.0, -1.0):
        with pytest.warns(DeprecationWarning, match="ablation takes no alpha"):
            steering = plan(model, r, alpha=old, mode="ablate")
        assert steering.tracer_kwargs()["alpha"] == -1.0 and steering.edits
    with pytest.raises(SteeringError, match=r"does not accept alpha=0\.5"):
        plan(model, r, alpha=0.5, mode="ablate")
    # alpha 0 is no edit in every mode that takes an alpha
    for mode in ("project", "project-calibrated", "add"):
        assert not plan(model, r, layer=1, alpha=0.0, mode=mode).edits


def test_engines_share_one_protocol(make_tiny: Callable[[str], Any], prompts: list[str]) -> None:
    from lirefs.evaluation.outcomes import GoldScorer, NextTokenScorer
    from lirefs.evaluation.prefix import PrefixEngine
    from lirefs.steer import Engine, NnsightEngine

    model = make_tiny("llama")
    engines = [
        NnsightEngine(model),
        PrefixEngine(model, [1, 2]),
        GoldScorer(model, [" 4"] * len(prompts)),
        NextTokenScorer(model),
    ]
    assert all(isinstance(e, Engine) for e in engines)
    steering = plan(model, _direction(model), alpha=3.0)
    ids = [list(x) for x in model.tokenizer(prompts)["input_ids"]]
    by_text = NnsightEngine(model, batch_size=2).run(prompts, steering, max_new_tokens=NEW)
    by_ids = NnsightEngine(model, batch_size=2).run(ids, steering, max_new_tokens=NEW)
    assert by_ids.token_ids == by_text.token_ids


def test_remote_is_decided_once_as_a_value(make_tiny: Callable[[str], Any]) -> None:
    from lirefs.tracing import Remote

    model = make_tiny("llama")
    here = Remote.of(model)
    assert here.local and not here.ndif and not here.inprocess and here.trace_kwargs() == {}
    assert Remote.of(model, "local").inprocess and Remote.of(model, True).ndif
    assert Remote.of(model, here) is here
    with pytest.raises(lirefs.RemoteError, match="remote must be"):
        Remote.of(model, "yes")


def test_a_direction_resolves_its_layer_or_says_how(make_tiny: Callable[[str], Any]) -> None:
    model = make_tiny("llama")
    n, width = lirefs.model_info(model).n_layers, lirefs.model_info(model).d_model
    zeros = torch.zeros(n + 1, width, dtype=torch.float64)
    d = lirefs.Direction(torch.randn(n + 1, width, dtype=torch.float64), zeros, zeros, 2, 2)
    assert d.resolve_layer(2) == 2
    with pytest.raises(lirefs.LayerError, match="pass layer="):
        d.resolve_layer()
    with pytest.raises(lirefs.LayerError, match="out of range"):
        d.resolve_layer(n + 1)
