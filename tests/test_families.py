"""Further model families: collection, the paper's edit and the NDIF payload, each against a reference.

For every family of ``tiny_models.MORE_FAMILIES`` (a tiny random model built in-process from its
config): ``collect_activations`` equals plain-transformers ``output_hidden_states`` (so
``hidden_states[L]`` is the output of the layout's final norm), the paper's edit and additive
steering give the token ids of the plain-PyTorch hook reference (tests/reference_hooks.py), and the
NDIF request payload asks the server to import nothing it lacks. Parallel attention + MLP blocks
and the families without an exact layout are checked for what docs/steering.md says lirefs does.

Run as a script (``python test_families.py probe FAMILY ...``) this module is the payload probe
that the payload test starts in its own process (``remote="local"`` leaks state between traces).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import reference_hooks
import torch
from tiny_models import MORE_FAMILIES, PARALLEL_FAMILIES, PROMPTS, tiny_config

import lirefs
import tracers

NEW = 6
#: Three prompts of different lengths (so the batch is left-padded), kept few for CPU time.
STEER_PROMPTS = [PROMPTS[0], PROMPTS[1], PROMPTS[4]]

#: Written from each family's transformers source, independently of ``tracers.ARCHITECTURES``:
#: model_type -> (blocks, final norm, attention contribution, MLP contribution), the table the hook
#: reference uses. Bloom's attention and MLP modules return residual + contribution, so its
#: contributions are their output projections. OPT's MLP has no [batch, tokens, d] output (None).

EDITABLE = [f for f in MORE_FAMILIES if f != "opt"]


def model_type(family: str) -> str:
    return family.split("-")[0]


def dotted_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``getattr`` that follows dotted paths (``"self_attention.dense"``)."""
    try:
        for part in name.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        if default:
            return default[0]
        raise
    return obj


@pytest.fixture
def reference() -> Callable[..., list[list[int]]]:
    """``reference_hooks.reference_generate`` on an nnsight-wrapped model's HF module."""

    def run(model: Any, prompts: list[str], **kw: Any) -> list[list[int]]:
        return reference_hooks.reference_generate(model._module, model.tokenizer, prompts, **kw)

    return run


def direction(model: Any, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(lirefs.model_info(model).d_model, generator=g, dtype=torch.float64)


def steered(model: Any, prompts: list[str], r: torch.Tensor, **kw: Any) -> list[list[int]]:
    out = lirefs.generate(model, prompts, direction=r, batch_size=len(prompts), **kw)
    return out.token_ids


def hf_last_token_states(model: Any, prompts: list[str]) -> torch.Tensor:
    """Plain transformers, one prompt at a time (no padding): ``[n, L + 1, d]``."""
    rows = []
    for p in prompts:
        enc = model.tokenizer(p, return_tensors="pt")
        with torch.no_grad():
            hs = model._module(**enc, output_hidden_states=True).hidden_states
        rows.append(torch.stack([h[0, -1] for h in hs]))
    return torch.stack(rows).float()


# ---------------------------------------------------------------------------------------------
# layouts


@pytest.mark.parametrize("family", MORE_FAMILIES)
def test_layout_names_the_modules_of_the_reference_table(make_tiny: Any, family: str) -> None:
    model = make_tiny(family)
    lay = tracers.layout_of(model)
    blocks, norm, attn, mlp = reference_hooks.MODULES[model_type(family)]
    assert (lay.blocks, lay.final_norm, lay.mlp) == (blocks, norm, mlp)
    assert lay.attn == attn
    assert tracers.n_layers(model) == 3


@pytest.mark.parametrize("family", MORE_FAMILIES)
def test_last_hidden_state_is_the_final_norm_output(make_tiny: Any, family: str) -> None:
    """HF's hidden_states[L] is taken AFTER the final norm; the layout names that norm."""
    model = make_tiny(family)
    hf = model._module
    norm = dotted_getattr(hf, reference_hooks.MODULES[model_type(family)][1])
    seen: list[torch.Tensor] = []
    handle = norm.register_forward_hook(lambda m, a, out: seen.append(out))
    enc = model.tokenizer(PROMPTS[0], return_tensors="pt")
    try:
        with torch.no_grad():
            hs = hf(**enc, output_hidden_states=True).hidden_states
    finally:
        handle.remove()
    assert len(hs) == 4 and len(seen) == 1
    torch.testing.assert_close(hs[-1], seen[0], rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# collection


@pytest.mark.parametrize("family", MORE_FAMILIES)
def test_collection_equals_hf_hidden_states(make_tiny: Any, family: str) -> None:
    model = make_tiny(family)
    acts = lirefs.collect_activations(model, list(PROMPTS), batch_size=3)
    ref = hf_last_token_states(model, list(PROMPTS))
    assert acts.shape == ref.shape == (len(PROMPTS), 4, 64)
    scale = ref.abs().amax(dim=(0, 2), keepdim=True).clamp_min(1.0)
    worst = ((acts - ref).abs() / scale).max().item()
    assert worst <= 1e-5, f"relative difference {worst:.2e}"


# ---------------------------------------------------------------------------------------------
# steering against the hook reference


@pytest.mark.parametrize("family", EDITABLE)
@pytest.mark.parametrize(("mode", "alpha"), [("project", 3.0), ("ablate", 0.0)])
def test_paper_edit_equals_the_hook_reference(
    make_tiny: Any, reference: Any, family: str, mode: str, alpha: float
) -> None:
    model = make_tiny(family)
    r = direction(model)
    prompts = list(STEER_PROMPTS)
    got = steered(model, prompts, r, alpha=alpha, mode=mode, max_new_tokens=NEW)
    assert got == reference(model, prompts, vector=r, alpha=alpha, mode=mode, max_new_tokens=NEW)
    if mode == "project":  # a strong edit must change something
        plain = reference(model, prompts, vector=None, alpha=0.0, mode=mode, max_new_tokens=NEW)
        assert got != plain


@pytest.mark.parametrize("family", MORE_FAMILIES)
def test_additive_steering_equals_the_hook_reference(
    make_tiny: Any, reference: Any, family: str
) -> None:
    model = make_tiny(family)
    r = direction(model)
    prompts = list(STEER_PROMPTS)
    got = steered(model, prompts, r, alpha=8.0, mode="add", layer=2, max_new_tokens=NEW)
    want = reference(model, prompts, vector=r, alpha=8.0, mode="add", layer=2, max_new_tokens=NEW)
    assert got == want


def test_opt_refuses_the_paper_edit_in_one_line(make_tiny: Any) -> None:
    """OPT's MLP runs on a flattened [batch * tokens, d] view: no MLP output to edit exactly."""
    model = make_tiny("opt")
    with pytest.raises(lirefs.ArchitectureError, match=r"no mlp sub-module .*mode='add'") as err:
        steered(model, list(PROMPTS[:2]), direction(model), alpha=0.1, max_new_tokens=2)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# parallel attention + MLP blocks


@pytest.mark.parametrize("family", [*PARALLEL_FAMILIES, "falcon-sequential", "gpt_neox-sequential"])
def test_ablation_leaves_no_component_in_the_block_output(make_tiny: Any, family: str) -> None:
    """Parallel or not, x + attn(x) + mlp(x) with all three edited carries nothing along r̂."""
    model = make_tiny(family)
    r_hat = tracers.unit_vector(direction(model)).float()
    lay = tracers.layout_of(model)
    enc = model.tokenizer(PROMPTS[1], return_tensors="pt")
    with torch.no_grad(), model.trace(enc["input_ids"]):
        tracers.ablate(model, r_hat, layers=[1])  # block 1 only: its output is read next
        out = tracers.block(model, 1, lay).output.save()
    hidden = out[0] if isinstance(out, tuple) else out
    plain = hf_last_token_states(model, [PROMPTS[1]])[0, 2]
    assert float((plain @ r_hat).abs()) > 1e-3, "the direction must be present without the edit"
    assert float((hidden[0] @ r_hat).abs().max()) < 1e-5


@pytest.mark.parametrize("family", PARALLEL_FAMILIES)
def test_parallel_mlp_reads_the_edited_block_input(make_tiny: Any, family: str) -> None:
    """In a parallel block the MLP's input is a norm of the edited block input, not of x + attn."""
    model = make_tiny(family)
    r_hat = tracers.unit_vector(direction(model)).float()
    enc = model.tokenizer(PROMPTS[1], return_tensors="pt")
    hf = model._module
    blocks_path, _, _, mlp_name = reference_hooks.MODULES[model_type(family)]
    blk = dotted_getattr(hf, blocks_path)[1]
    norms = [m for n, m in blk.named_children() if "norm" in n or n.startswith("ln")]
    mlp = dotted_getattr(blk, str(mlp_name))
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        mlp.register_forward_pre_hook(lambda m, a: seen.setdefault("mlp_in", a[0])),
        norms[0].register_forward_pre_hook(lambda m, a: seen.setdefault("block_in", a[0])),
    ]
    try:
        with torch.no_grad(), model.trace(enc["input_ids"]):
            tracers.paper_project(model, r_hat, 0.5)
    finally:
        for h in hooks:
            h.remove()
    torch.testing.assert_close(seen["mlp_in"], norms[0](seen["block_in"]), rtol=1e-6, atol=1e-6)
    assert float((seen["block_in"][0] @ r_hat).abs().max()) > 0  # the norm saw the edited input


# ---------------------------------------------------------------------------------------------
# unsupported architectures and variants


def test_unsupported_architecture_lists_the_families_and_the_hand_layout(make_tiny: Any) -> None:
    fake = type("M", (), {"config": type("C", (), {"model_type": "mamba"})()})()
    with pytest.raises(tracers.UnsupportedArchitectureError) as err:
        tracers.layout_of(fake)
    message = str(err.value)
    for family in ("gptj", "opt", "bloom", "falcon", "qwen3_moe", "gemma3_text", "cohere", "olmo2"):
        assert f" {family}," in message or f" {family})" in message
    assert "layout=tracers.Layout(blocks=" in message and "load_model(..., layout=...)" in message
    assert "\n" not in message


def test_a_hand_layout_makes_an_unknown_model_work(make_tiny: Any, tokenizer: Any) -> None:
    """A Llama whose config claims an unknown type, steered through a layout given by hand."""
    from copy import deepcopy

    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(tiny_config("llama"), dtype=torch.float32).eval()
    hf.config.model_type = "my-own-llama"
    with pytest.raises(lirefs.ArchitectureError, match="known families: bloom, cohere"):
        lirefs.wrap(hf, deepcopy(tokenizer), name="mine")
    lay = tracers.Layout(blocks="model.layers", final_norm="model.norm")
    model = lirefs.wrap(hf, deepcopy(tokenizer), name="mine", layout=lay)
    acts = lirefs.collect_activations(model, list(PROMPTS[:2]), batch_size=2)
    torch.testing.assert_close(acts, hf_last_token_states(model, list(PROMPTS[:2])))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"do_layer_norm_before": False}, "do_layer_norm_before=False"),
        ({"word_embed_proj_dim": 32}, "embedding width 32 and d_model 64"),
    ],
)
def test_opt_variants_without_an_exact_layout_are_refused(change: dict, reason: str) -> None:
    config = tiny_config("opt")
    for key, value in change.items():
        setattr(config, key, value)
    fake = type("M", (), {"config": config})()
    with pytest.raises(tracers.UnsupportedArchitectureError, match=reason):
        tracers.layout_of(fake)


def test_gemma3_with_a_vision_tower_is_refused_with_the_text_layout() -> None:
    config = tiny_config("gemma3_text")
    config.architectures = ["Gemma3ForConditionalGeneration"]
    fake = type("M", (), {"config": config})()
    with pytest.raises(
        tracers.UnsupportedArchitectureError, match=r"model\.language_model\.layers"
    ):
        tracers.layout_of(fake)


# ---------------------------------------------------------------------------------------------
# NDIF payloads


@pytest.mark.remote
@pytest.mark.slow
def test_payloads_of_every_family_import_only_what_the_server_has(tmp_path: Path) -> None:
    env = {**os.environ, "LIREFS_PROGRESS": "0"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    env.pop("NDIF_API_KEY", None)
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), "probe", *MORE_FAMILIES],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    server = {"torch", "nnsight", "cloudpickle", "transformers", "numpy", "builtins"}
    assert sorted(report) == sorted(MORE_FAMILIES)
    for family, got in report.items():
        assert got["n_payloads"] >= 2, family
        roots = {g.split(".")[0] for g in got["globals"] + got["subimports"]}
        assert not roots & {"lirefs", "tracers"}, (family, sorted(roots))
        assert roots <= server | sys.stdlib_module_names, (family, sorted(roots - server))
        assert got["load_errors"] == [], family
        assert got["bytecode_functions"] == [], family
        assert got["same_as_local"], family


def probe(families: list[str]) -> dict[str, Any]:
    """For each family: collect and generate locally and with ``remote="local"``; payload facts."""
    import cloudpickle.cloudpickle as cp
    from nnsight.intervention import serialization
    from nnsight.intervention.serialization import CustomCloudUnpickler
    from nnsight.schema.request import RequestModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lirefs.models import smollm2_folder

    blobs: list[bytes] = []
    bytecode: list[str] = []
    serialize = RequestModel.serialize.__func__  # type: ignore[attr-defined]
    reduce = serialization.CustomCloudPickler._dynamic_function_reduce

    def recording_serialize(cls: Any, tracer: Any, compress: bool = False) -> bytes:
        blobs.append(serialize(cls, tracer, compress))
        return blobs[-1]

    def recording_reduce(self: Any, func: Any) -> tuple:
        reduced = reduce(self, func)
        if reduced[0] is not serialization._load_function:
            bytecode.append(f"{func.__module__}.{func.__qualname__}")
        return reduced

    RequestModel.serialize = classmethod(recording_serialize)  # type: ignore[method-assign,assignment]
    serialization.CustomCloudPickler._dynamic_function_reduce = recording_reduce  # type: ignore[method-assign]

    def load_blocked(blob: bytes, persistent: dict[str, Any]) -> dict[str, Any]:
        found: set[str] = set()
        subimports: set[str] = set()

        def recording_subimport(name: str) -> Any:
            subimports.add(name)
            return cp.subimport(name)

        class Recorder(CustomCloudUnpickler):
            def find_class(self, module: str, name: str) -> Any:
                found.add(f"{module}.{name}")
                if (module, name) == ("cloudpickle.cloudpickle", "subimport"):
                    return recording_subimport
                return super().find_class(module, name)

        class Blocker:
            def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
                if name.split(".")[0] in ("lirefs", "tracers"):
                    raise ModuleNotFoundError(f"No module named {name!r}")

        saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ("lirefs", "tracers")}
        for k in saved:
            del sys.modules[k]
        blocker = Blocker()
        sys.meta_path.insert(0, blocker)  # type: ignore[arg-type]
        error = None
        try:
            Recorder(io.BytesIO(blob), persistent).load()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            sys.meta_path.remove(blocker)  # type: ignore[arg-type]
            sys.modules.update(saved)
        return {"globals": sorted(found), "subimports": sorted(subimports), "error": error}

    tok = AutoTokenizer.from_pretrained(str(smollm2_folder()))
    prompts = list(PROMPTS[:3])
    report: dict[str, Any] = {}
    for family in families:
        torch.manual_seed(0)
        hf = AutoModelForCausalLM.from_config(tiny_config(family), dtype=torch.float32).eval()
        model = lirefs.wrap(hf, tok, name=f"tiny-{family}")
        r = direction(model)
        mode = "add" if family == "opt" else "project"

        def run(remote: bool | str) -> tuple[torch.Tensor, list[list[int]]]:
            acts = lirefs.collect_activations(model, prompts, batch_size=3, remote=remote)  # noqa: B023
            out = lirefs.generate(
                model,  # noqa: B023
                prompts[:2],
                direction=r,  # noqa: B023
                alpha=2.0,
                mode=mode,  # noqa: B023
                layer=1,
                max_new_tokens=3,
                remote=remote,
            )
            return acts, out.token_ids

        local = run(False)
        blobs.clear()
        bytecode.clear()
        remote = run("local")
        loads = [load_blocked(b, model._remoteable_persistent_objects()) for b in blobs]
        report[family] = {
            "n_payloads": len(blobs),
            "same_as_local": bool(torch.equal(local[0], remote[0])) and local[1] == remote[1],
            "bytecode_functions": sorted(set(bytecode)),
            "globals": sorted({g for x in loads for g in x["globals"]}),
            "subimports": sorted({s for x in loads for s in x["subimports"]}),
            "load_errors": [x["error"] for x in loads if x["error"]],
        }
    return report


if __name__ == "__main__" and sys.argv[1:2] == ["probe"]:
    torch.set_num_threads(1)
    print(json.dumps(probe(sys.argv[2:])))
