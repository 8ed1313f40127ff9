"""Exports, each read back by the program that owns the format: gguf's reader, transformers,
plain PyTorch hooks (llama.cpp's add semantics) and, when installed, lm-evaluation-harness."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import lirefs
import tracers
from lirefs.export import ExportError
from lirefs.steer import plan

FAMILIES = ["llama", "gpt2", "gpt_neox"]


def _direction(model: Any, seed: int = 5) -> lirefs.Direction:
    """A direction from random states, recording layer 2 as chosen."""
    info = lirefs.model_info(model)
    g = torch.Generator().manual_seed(seed)
    acts = torch.randn(8, info.n_layers + 1, info.d_model, generator=g)
    data = {"hash": f"testdata{seed}"}
    liref = lirefs.Direction.from_activations(acts[:4] + 0.5, acts[4:], model=model, data=data)
    liref.metadata["settings"]["best_layer"] = 2
    return liref


def _unit(liref: lirefs.Direction, layer: int) -> torch.Tensor:
    """The paper's r / (||r|| + 1e-8), written out here, float64."""
    r = liref.vector(layer)
    return r / (r.norm() + 1e-8)


def _inputs(model: Any, prompts: list[str]) -> dict[str, torch.Tensor]:
    return next(lirefs.batching.prompt_batches(model, prompts, 8)).inputs


def _lirefs_logits(model: Any, inputs: dict[str, torch.Tensor], **setting: Any) -> torch.Tensor:
    """Logits of one lirefs-steered forward pass (the public edit block in a plain trace)."""
    kw = plan(model, **setting).tracer_kwargs()
    logits: Any = None
    with torch.inference_mode(), model.trace(inputs):
        tracers.apply_edit(model, step=None, **kw)
        logits = model.output.logits.save()
    return logits


# --------------------------------------------------------------------------------------------
# GGUF control vectors


def test_gguf_file_reads_back_with_the_gguf_library(
    make_tiny: Callable[[str], Any], tmp_path: Path
) -> None:
    from gguf import GGUFReader

    model = make_tiny("llama")
    liref = _direction(model)
    path = lirefs.export_gguf(liref, tmp_path / "liref.gguf", layers=[1, 3], alpha=4.0)
    reader = GGUFReader(str(path))
    fields = reader.fields

    def text(key: str) -> str:
        f = fields[key]
        return bytes(f.parts[f.data[0]]).decode()

    assert text("general.architecture") == "controlvector"
    assert text("controlvector.model_hint") == "llama"
    assert int(fields["controlvector.layer_count"].parts[-1][0]) == 2
    tensors = {t.name: torch.from_numpy(t.data.copy()) for t in reader.tensors}
    assert sorted(tensors) == ["direction.0", "direction.2"]
    for layer in (1, 3):
        got = tensors[f"direction.{layer - 1}"]
        assert got.dtype == torch.float32
        assert torch.allclose(got.double(), 4.0 * _unit(liref, layer), atol=1e-6)


def test_gguf_vector_added_to_block_output_is_lirefs_add_mode(
    make_tiny: Callable[[str], Any], prompts: list[str], tmp_path: Path
) -> None:
    """llama.cpp's rule, as a plain forward hook on block l-1's output, equals add at layer l."""
    from gguf import GGUFReader

    model = make_tiny("llama")
    liref = _direction(model)
    layer = 2
    path = lirefs.export_gguf(liref, tmp_path / "v.gguf", layers=[layer], alpha=6.0)
    (tensor,) = GGUFReader(str(path)).tensors
    block = int(tensor.name.split(".")[1])
    vector = torch.from_numpy(tensor.data.copy())

    def hook(module: Any, args: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (output[0] + vector, *output[1:])
        return output + vector

    inputs = _inputs(model, prompts)
    hf = model._module
    handle = hf.model.layers[block].register_forward_hook(hook)
    try:
        with torch.inference_mode():
            want = hf(**inputs).logits
    finally:
        handle.remove()
    got = _lirefs_logits(model, inputs, direction=liref, layer=layer, alpha=6.0, mode="add")
    assert torch.allclose(got, want, atol=1e-5, rtol=0)
    with torch.inference_mode():
        plain = hf(**inputs).logits
    assert not torch.allclose(plain, want, atol=1e-3)


def test_gguf_round_trip_keeps_vectors_and_metadata(
    make_tiny: Callable[[str], Any], tmp_path: Path
) -> None:
    model = make_tiny("gpt2")
    liref = _direction(model)
    path = lirefs.export_gguf(liref, tmp_path / "v.gguf", layers=[2, 3], alpha=-2.0)
    back = lirefs.import_gguf(path)
    assert back.n_layers == liref.n_layers and back.d_model == liref.d_model
    for layer in (2, 3):
        assert torch.allclose(back.vector(layer), -2.0 * _unit(liref, layer), atol=1e-6)
    assert back.vector(1).abs().max() == 0.0
    assert back.metadata["model"]["fingerprint"] == liref.metadata["model"]["fingerprint"]
    assert back.metadata["data"]["hash"] == liref.metadata["data"]["hash"]
    back.check_model(model)  # accepted on the model it was made on


def test_import_reads_a_foreign_control_vector(tmp_path: Path) -> None:
    """A file as repeng / llama.cpp write it: no lirefs metadata, direction.{n} per block."""
    import numpy as np
    from gguf import GGUFWriter

    path = tmp_path / "repeng.gguf"
    writer = GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", "mistral")
    writer.add_uint32("controlvector.layer_count", 2)
    rows = {1: np.arange(8, dtype=np.float32), 4: -np.ones(8, dtype=np.float32)}
    for n, values in rows.items():
        writer.add_tensor(f"direction.{n}", values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    liref = lirefs.import_gguf(path, n_layers=6)
    assert liref.n_layers == 6 and liref.d_model == 8
    assert torch.equal(liref.vector(2), torch.arange(8, dtype=torch.float64))
    assert torch.equal(liref.vector(5), -torch.ones(8, dtype=torch.float64))
    assert liref.metadata["settings"]["model_hint"] == "mistral"
    assert lirefs.import_gguf(path).n_layers == 5  # highest block 4 -> at least 5 blocks


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"layers": [2], "alpha": 1.0, "mode": "project"}, ExportError, "only mode 'add'"),
        ({"layers": [2], "alpha": 1.0, "mode": "ablate"}, ExportError, "export_ablated"),
        ({"layers": [0], "alpha": 1.0}, lirefs.LayerError, "1..3"),
        ({"layers": [4], "alpha": 1.0}, lirefs.LayerError, "0..3"),
        ({"layers": [2], "alpha": float("nan")}, ExportError, "finite"),
    ],
)
def test_gguf_bad_input_writes_nothing(
    make_tiny: Callable[[str], Any], tmp_path: Path, kwargs: dict[str, Any], error: type, words: str
) -> None:
    liref = _direction(make_tiny("llama"))
    with pytest.raises(error, match=words):
        lirefs.export_gguf(liref, tmp_path / "x.gguf", **kwargs)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# ablated weights


def _state_sum(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model._module.state_dict().items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_ablated_folder_equals_ablate_mode(
    make_tiny: Callable[[str], Any], prompts: list[str], tmp_path: Path, family: str
) -> None:
    from transformers import AutoModelForCausalLM

    model = make_tiny(family)
    liref = _direction(model)
    before = _state_sum(model)
    folder = lirefs.export_ablated(model, liref, 2, tmp_path / "ablated")
    after = _state_sum(model)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the user's model is untouched

    plain_hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    inputs = _inputs(model, prompts)
    with torch.inference_mode():
        exported = plain_hf(**inputs, output_hidden_states=True)
    want = _lirefs_logits(model, inputs, direction=liref, layer=2, alpha=0.0, mode="ablate")
    scale = want.abs().max()
    assert torch.allclose(exported.logits, want, atol=1e-4 * scale, rtol=0)
    u = _unit(liref, 2).float()
    for h in exported.hidden_states[:-1]:  # the stream never carries the direction
        assert (h @ u).abs().max() <= 1e-5 * h.abs().max()

    tok = model.tokenizer
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        out = plain_hf.generate(
            **enc, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id
        )
    eos = plain_hf.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    rows = []
    for row in out[:, enc["input_ids"].shape[1] :].tolist():
        cut = next((i for i, t in enumerate(row) if t in eos), len(row))
        rows.append(row[:cut])
    steered = lirefs.generate(
        model, prompts, direction=liref, layer=2, mode="ablate", max_new_tokens=6
    )
    assert rows == steered.token_ids
    card = (folder / "README.md").read_text()
    assert liref.metadata["data"]["hash"] in card and lirefs.__version__ in card


def test_ablated_refuses_inexact_families_and_used_folders(
    make_tiny: Callable[[str], Any], tmp_path: Path
) -> None:
    gemma = make_tiny("gemma2")
    with pytest.raises(lirefs.ArchitectureError, match="post_attention_layernorm"):
        lirefs.export_ablated(gemma, _direction(gemma), 2, tmp_path / "g")
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("x")
    llama = make_tiny("llama")
    with pytest.raises(ExportError, match="not an empty folder"):
        lirefs.export_ablated(llama, _direction(llama), 2, used)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["used"]
    assert [p.name for p in used.iterdir()] == ["keep.txt"]


# --------------------------------------------------------------------------------------------
# Hub-ready folders


def test_save_and_from_pretrained_round_trip(
    make_tiny: Callable[[str], Any], tmp_path: Path
) -> None:
    model = make_tiny("llama")
    liref = _direction(model)
    folder = liref.save_pretrained(tmp_path / "hub")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "direction.safetensors",
        "lirefs.json",
    ]
    back = lirefs.Direction.from_pretrained(folder, model=model)
    assert torch.equal(back.vectors, liref.vectors) and back.chosen_layer == 2
    card = (folder / "README.md").read_text()
    assert "chosen layer: 2" in card and str(liref.metadata["data"]["hash"]) in card
    with pytest.raises(lirefs.DirectionError, match="not an empty folder"):
        liref.save_pretrained(folder)
    with pytest.raises(lirefs.DirectionError, match=r"no direction\.safetensors"):
        lirefs.Direction.from_pretrained(tmp_path)


# --------------------------------------------------------------------------------------------
# lm-evaluation-harness


def test_lm_eval_file_names_the_module_whose_output_is_the_layer(
    make_tiny: Callable[[str], Any], tmp_path: Path
) -> None:
    model = make_tiny("gpt2")
    liref = _direction(model)
    path = lirefs.export_lm_eval(liref, tmp_path / "steer.pt", layer=2, alpha=3.0)
    config = torch.load(path, weights_only=True)
    assert list(config) == ["h.1"]
    entry = config["h.1"]
    assert entry["action"] == "add" and entry["steering_coefficient"] == 3.0
    assert torch.allclose(entry["steering_vector"].double(), _unit(liref, 2), atol=1e-6)
    final = lirefs.export_lm_eval(liref, tmp_path / "final.pt", layer=3, alpha=1.0)
    assert list(torch.load(final, weights_only=True)) == ["ln_f"]
    assert (tmp_path / "steer.pt.json").is_file()


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_lm_eval_steered_model_gives_lirefs_add_loglikelihoods(
    make_tiny: Callable[[str], Any], tmp_path: Path, family: str
) -> None:
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from lm_eval.models.hf_steered import SteeredModel

    model = make_tiny(family)
    liref = _direction(model)
    folder = tmp_path / "model"
    model._module.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
    steer_file = lirefs.export_lm_eval(liref, tmp_path / "steer.pt", layer=2, alpha=5.0)
    lm = SteeredModel(
        pretrained=str(folder), steer_path=str(steer_file), device="cpu", batch_size=1
    )
    pairs = [("Q: What is the capital of France?\nA:", " Paris"), ("Q: 2 + 2 =", " 4")]
    requests = [
        Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=i)
        for i, pair in enumerate(pairs)
    ]
    got = [ll for ll, _ in lm.loglikelihood(requests)]
    want = []
    for context, continuation in pairs:
        ctx = lm.tok_encode(context)
        cont = lm.tok_encode(continuation)
        ids = torch.tensor([ctx + cont])
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        logits = _lirefs_logits(model, inputs, direction=liref, layer=2, alpha=5.0, mode="add")
        logp = torch.log_softmax(logits[0].double(), dim=-1)
        want.append(sum(float(logp[len(ctx) - 1 + k, t]) for k, t in enumerate(cont)))
    assert got == pytest.approx(want, abs=1e-4)
    plain = _lirefs_logits(model, inputs, direction=None, alpha=0.0)
    assert not torch.allclose(plain, logits, atol=1e-3)


# --------------------------------------------------------------------------------------------
# command line


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Any:
    """A tiny random Llama folder and a direction file made on it."""
    from tiny_models import tiny_config
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config("llama")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    model = lirefs.load_model(str(folder), device="cpu")
    path = tmp_path_factory.mktemp("direction") / "liref.safetensors"
    _direction(model).save(path)
    return folder, model, path


def _cli(args: list[str]) -> Any:
    from click.testing import CliRunner

    from lirefs.cli import main

    return CliRunner().invoke(main, ["export", *args])


def test_cli_exports_each_format(saved: Any, tmp_path: Path) -> None:
    from gguf import GGUFReader

    folder, _, path = saved
    result = _cli(
        ["gguf", "-d", str(path), "-o", str(tmp_path / "v.gguf"), "--layers", "1-2", "-a", "3"]
    )
    assert result.exit_code == 0, result.output
    names = sorted(t.name for t in GGUFReader(str(tmp_path / "v.gguf")).tensors)
    assert names == ["direction.0", "direction.1"]
    result = _cli(["lm-eval", "-d", str(path), "-o", str(tmp_path / "s.pt"), "-a", "2"])
    assert result.exit_code == 0, result.output
    assert list(torch.load(tmp_path / "s.pt", weights_only=True)) == ["layers.1"]
    result = _cli(["ablated", "-d", str(path), "-o", str(tmp_path / "abl"), "--model", str(folder)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "abl" / "model.safetensors").is_file()
    assert "Examples" in _cli(["gguf", "--help"]).output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["gguf", "-d", "{d}", "-o", "{o}/v.gguf", "-l", "9"], "out of range"),
        (["lm-eval", "-d", "{d}", "-o", "{o}/s.pt", "-l", "0", "-a", "1"], "layer 0"),
        (["ablated", "-d", "{d}", "-o", "{o}/used", "--model", "{m}"], "not an empty folder"),
    ],
)
def test_cli_bad_input_is_one_line_and_no_file(
    saved: Any, tmp_path: Path, args: list[str], words: str
) -> None:
    folder, _, path = saved
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("x")
    filled = [a.format(d=path, o=tmp_path, m=folder) for a in args]
    result = _cli(filled)
    assert result.exit_code == 2, result.output
    assert words in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["used"]
    assert [p.name for p in used.iterdir()] == ["keep.txt"]


# --------------------------------------------------------------------------------------------
# what was written: summaries, logs, model cards (read with huggingface_hub)


def test_cli_and_log_say_what_each_export_wrote(
    saved: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    from gguf import GGUFReader

    _, _, path = saved
    result = _cli(
        ["gguf", "-d", str(path), "-o", str(tmp_path / "v.gguf"), "--layers", "1-2", "-a", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "layers 1 -> direction.0, 2 -> direction.1" in result.output
    assert "alpha 3" in result.output and "mode add" in result.output
    # the summary names the tensors the file really holds
    assert sorted(t.name for t in GGUFReader(str(tmp_path / "v.gguf")).tensors) == [
        "direction.0",
        "direction.1",
    ]
    result = _cli(["lm-eval", "-d", str(path), "-o", str(tmp_path / "s.pt"), "-a", "2", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    hook = next(iter(torch.load(tmp_path / "s.pt", weights_only=True)))
    assert info["layers"] == [2] and info["alpha"] == 2.0 and info["offsets"] == {"2": hook}
    liref = lirefs.Direction.load(path)
    with caplog.at_level("INFO", logger="lirefs.export"):
        lirefs.export_gguf(liref, tmp_path / "w.gguf", alpha=1.5)
    assert "layers 2 -> direction.1" in caplog.text and "alpha 1.5" in caplog.text
    with pytest.raises(ExportError, match="not a file or folder written by a lirefs export"):
        lirefs.export.describe_export(tmp_path)


def test_model_cards_carry_hub_id_layer_map_and_mode(
    make_tiny: Callable[[str], Any], tmp_path: Path
) -> None:
    from huggingface_hub import ModelCard

    model = make_tiny("llama")
    liref = _direction(model)
    liref.metadata["model"] = {**liref.metadata["model"], "name": "smollm2-135m"}
    card = ModelCard.load(liref.save_pretrained(tmp_path / "hub") / "README.md")
    data = card.data.to_dict()
    assert data["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert data["library_name"] == "lirefs"
    assert data["lirefs"]["mode"] == "project"
    entry = data["lirefs"]["layers"][2]
    assert entry["hidden_states"] == 2 and entry["llama_cpp_tensor"] == "direction.1"
    assert entry["lm_eval_hookpoint"] == lirefs.export.lm_eval_hookpoint("llama", 2, liref.n_layers)
    # a local model has no Hub id: no base_model rather than a path
    local = _direction(model)
    local.metadata["model"] = {**local.metadata["model"], "name": "/tmp/some-folder"}
    card = ModelCard.load(local.save_pretrained(tmp_path / "local") / "README.md")
    assert card.data.to_dict().get("base_model") is None
    # the ablated folder's card: a transformers model, ablate mode, the layer it removed
    folder = lirefs.export_ablated(model, _direction(model), 2, tmp_path / "ablated")
    card = ModelCard.load(folder / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and "lirefs" in data["tags"]
    assert data["lirefs"]["mode"] == "ablate" and list(data["lirefs"]["layers"]) == [2]


# foreign GGUF files are checked before anything is allocated


def _foreign_gguf(path: Path, rows: dict[str, Any], **strings: str) -> Path:
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "controlvector")
    for key, value in strings.items():
        writer.add_string(key, value)
    for name, values in rows.items():
        writer.add_tensor(name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(
    ("rows", "strings", "words"),
    [
        ({"direction.1000000": "ok"}, {}, "beyond"),
        ({"direction.1": "nan"}, {}, "NaN or inf"),
        ({"direction.1": "inf"}, {}, "NaN or inf"),
        ({"direction.1": "empty"}, {}, "no values"),
        ({"direction.1": "2d"}, {}, "2-D"),
        ({"direction.1": "ok"}, {"lirefs.metadata": "[1, 2]"}, "lirefs.metadata"),
        (
            {"direction.1": "ok"},
            {"lirefs.metadata": '{"layer_convention": "%s", "model": {"n_layers": 10000000}}'},
            "n_layers",
        ),
        (
            {"direction.1": "ok"},
            {"lirefs.metadata": '{"layer_convention": "%s", "model": {"n_layers": "x"}}'},
            "n_layers",
        ),
        ({"direction.1": "ok"}, {"lirefs.metadata": "[" * 100_000 + "]" * 100_000}, "nested"),
    ],
)
def test_a_hostile_gguf_is_refused_before_allocating(
    tmp_path: Path, rows: dict[str, str], strings: dict[str, str], words: str
) -> None:
    import numpy as np

    from lirefs.store import LAYER_CONVENTION

    made = {
        "ok": np.ones(8, dtype=np.float32),
        "nan": np.array([1.0, np.nan], dtype=np.float32),
        "inf": np.array([1.0, np.inf], dtype=np.float32),
        "empty": np.zeros(0, dtype=np.float32),
        "2d": np.ones((4, 8), dtype=np.float32),
    }
    strings = {k: v.replace("%s", LAYER_CONVENTION) for k, v in strings.items()}
    path = _foreign_gguf(tmp_path / "bad.gguf", {k: made[v] for k, v in rows.items()}, **strings)
    with pytest.raises(lirefs.DirectionError, match=words) as err:
        lirefs.import_gguf(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("n_layers", [0, -3, 10**9, True, 2.5])
def test_import_gguf_checks_n_layers(tmp_path: Path, n_layers: Any) -> None:
    import numpy as np

    path = _foreign_gguf(tmp_path / "v.gguf", {"direction.1": np.ones(8, dtype=np.float32)})
    with pytest.raises(lirefs.DirectionError, match="n_layers"):
        lirefs.import_gguf(path, n_layers=n_layers)


def test_export_gguf_of_a_bare_tensor_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="a Direction"):
        lirefs.export_gguf(torch.ones(4, 8), tmp_path / "v.gguf", layers=[1])  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_vanishing_direction_is_not_exported_as_zeros(
    make_tiny: Callable[[str], Any], tmp_path: Path
) -> None:
    liref = _direction(make_tiny("llama"))
    tiny = lirefs.Direction(
        liref.vectors * 1e-100, liref.mean_reasoning, liref.mean_memory, 2, 2, liref.metadata
    )
    with pytest.raises((lirefs.DirectionError, ExportError), match="norm"):
        lirefs.export_gguf(tiny, tmp_path / "v.gguf", layers=[2])
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# a full disk is an OSError naming the file, never an "unexpected" error


def _disk_full_in_safetensors(*args: Any, **kwargs: Any) -> None:
    import safetensors

    raise safetensors.SafetensorError(
        "Error while serializing: I/O error: No space left on device (os error 28)"
    )


def test_export_ablated_on_a_full_disk_is_an_os_error(
    make_tiny: Callable[[str], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import safetensors.torch

    model = make_tiny("llama")
    liref = _direction(model)
    monkeypatch.setattr(safetensors.torch, "save_file", _disk_full_in_safetensors)
    with pytest.raises(OSError) as info:
        lirefs.export_ablated(model, liref, 2, tmp_path / "ablated")
    assert info.value.errno == errno.ENOSPC and "ablated" in str(info.value.filename)
    assert list(tmp_path.iterdir()) == []


def test_export_lm_eval_on_a_full_disk_is_an_os_error(
    make_tiny: Callable[[str], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    liref = _direction(make_tiny("llama"))

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a write names no file

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError) as info:
        lirefs.export_lm_eval(liref, tmp_path / "steer.pt", layer=2, alpha=3.0)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "steer.pt")
    assert list(tmp_path.iterdir()) == []


def test_collect_cache_on_a_full_disk_is_an_os_error(
    make_tiny: Callable[[str], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", _disk_full_in_safetensors)
    with pytest.raises(OSError) as info:
        lirefs.collect_activations(
            make_tiny("llama"), ["Q: 1+1?", "Q: 2+2?"], batch_size=1, cache_dir=tmp_path / "c"
        )
    assert info.value.errno == errno.ENOSPC and "chunk-" in str(info.value.filename)
