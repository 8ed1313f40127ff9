"""Cross-source transfer: every direction on every test source, checked against sklearn."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

import lirefs
from lirefs.analysis import ActivationSplit, TransferReport, transfer_report
from lirefs.errors import ActivationError, DataError, DirectionError, MetadataMismatchError
from lirefs.store import make_metadata

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_LAYERS, D = 4, 12
MODEL = {"name": "toy", "fingerprint": "toy-1", "n_layers": N_LAYERS, "d_model": D}


def source(axis: int, n: int, shift: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[n, L + 1, D]`` states; reasoning shifted along ``axis`` by ``shift * l / L`` (l >= 1)."""
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(n, N_LAYERS + 1, D, generator=g)
    m = torch.randn(n, N_LAYERS + 1, D, generator=g)
    r[:, :, axis] += shift * torch.arange(N_LAYERS + 1) / N_LAYERS
    r[:, 0], m[:, 0] = 1.0, 1.0  # layer 0: identical states -> zero direction
    return r, m


def direction_on(acts: tuple[torch.Tensor, torch.Tensor], layer: int) -> lirefs.Direction:
    d = lirefs.Direction.from_activations(*acts, model=MODEL)
    d.metadata["settings"]["best_layer"] = layer
    return d


def reference_auroc(d: lirefs.Direction, r: torch.Tensor, m: torch.Tensor, layer: int) -> float:
    """Plain torch projection on ``r_l / ||r_l||`` + sklearn's roc_auc_score."""
    unit = d.vectors[layer] / torch.linalg.vector_norm(d.vectors[layer])
    scores = torch.cat([r[:, layer].double() @ unit, m[:, layer].double() @ unit])
    labels = [1] * len(r) + [0] * len(m)
    return float(roc_auc_score(labels, scores.numpy()))


@pytest.fixture(scope="module")
def setup() -> tuple[dict, dict, TransferReport]:
    # source "a" separates along axis 0, source "b" along axis 1: a direction from one is
    # (nearly) orthogonal to the other's signal
    train_a, test_a = source(0, 40, 3.0, 1), source(0, 25, 3.0, 2)
    train_b, test_b = source(1, 40, 3.0, 3), source(1, 30, 3.0, 4)
    directions = {"a": direction_on(train_a, 4), "b": direction_on(train_b, 3)}
    tests = {"a": test_a, "b": test_b}
    report = transfer_report(directions, tests, n_permutations=200, seed=0)
    return directions, tests, report


def test_auroc_at_the_chosen_layer_equals_sklearn(setup: tuple) -> None:
    directions, tests, report = setup
    assert report.layer == {"a": 4, "b": 3}
    for train, d in directions.items():
        for test, (r, m) in tests.items():
            expected = reference_auroc(d, r, m, report.layer[train])
            assert report.auroc[train][test] == pytest.approx(expected, abs=1e-12)


def test_auroc_by_layer_equals_sklearn_and_is_nan_at_a_zero_direction(setup: tuple) -> None:
    directions, tests, report = setup
    for train, d in directions.items():
        for test, (r, m) in tests.items():
            values = report.auroc_by_layer[train][test]
            assert len(values) == N_LAYERS + 1
            assert math.isnan(values[0])
            for layer in range(1, N_LAYERS + 1):
                assert values[layer] == pytest.approx(reference_auroc(d, r, m, layer), abs=1e-12)


def test_in_source_beats_chance_and_cross_source_does_not(setup: tuple) -> None:
    _, _, report = setup
    assert report.auroc["a"]["a"] > 0.9 and report.above_chance("a", "a")
    assert report.auroc["b"]["b"] > 0.9 and report.above_chance("b", "b")
    assert not report.above_chance("a", "b")  # orthogonal signal: chance
    assert 0.5 < report.shuffled_auroc_p95["a"]["b"] < 0.75


def test_shuffled_baseline_equals_sklearn_on_the_same_shuffles(setup: tuple) -> None:
    directions, tests, report = setup
    r, m = tests["b"]
    d, layer = directions["a"], report.layer["a"]
    unit = (d.vectors[layer] / d.vectors[layer].norm()).numpy()
    scores = np.concatenate([r[:, layer].double().numpy(), m[:, layer].double().numpy()]) @ unit
    labels = np.array([1] * len(r) + [0] * len(m))
    rng = np.random.default_rng(0)  # the documented seed of the test set's shuffles
    null = np.array([roc_auc_score(rng.permutation(labels), scores) for _ in range(200)])
    assert report.shuffled_auroc_p95["a"]["b"] == pytest.approx(np.percentile(null, 95), abs=1e-12)
    real = roc_auc_score(labels, scores)
    assert report.permutation_p["a"]["b"] == pytest.approx(
        (1 + np.sum(null >= real - 1e-12)) / 201, abs=1e-12
    )


def test_length_baselines_of_each_test(setup: tuple) -> None:
    directions, tests, _ = setup
    len_r, len_m = list(range(30, 55)), list(range(10, 35))  # overlap 30..34 -> 5 matched pairs
    report = transfer_report(directions, tests, lengths={"a": (len_r, len_m)}, n_permutations=20)
    oriented = roc_auc_score([1] * 25 + [0] * 25, len_r + len_m)
    assert report.length_auroc["a"] == pytest.approx(max(oriented, 1 - oriented))
    assert report.length_auroc["b"] is None and report.length_matched_pairs["b"] == 0
    assert report.length_matched_pairs["a"] == len(
        lirefs.analysis.length_matched_pairs(len_r, len_m)
    )
    assert math.isfinite(report.length_matched_auroc["b"]["a"])
    assert math.isnan(report.length_matched_auroc["a"]["b"])


def test_layers_override_the_chosen_layer(setup: tuple) -> None:
    directions, tests, _ = setup
    report = transfer_report(directions, tests, layers={"a": 1}, n_permutations=10)
    assert report.layer == {"a": 1, "b": 3}
    r, m = tests["b"]
    assert report.auroc["a"]["b"] == pytest.approx(reference_auroc(directions["a"], r, m, 1))


def test_save_load_round_trip(setup: tuple, tmp_path: Path) -> None:
    _, _, report = setup
    path = report.save(tmp_path / "transfer.json")
    raw = json.loads(path.read_text())  # strict JSON: NaN written as null
    assert raw["auroc_by_layer"]["a"]["b"][0] is None
    assert raw["metadata"]["kind"] == "transfer"
    assert raw["metadata"]["settings"]["layers"] == {"a": 4, "b": 3}
    assert raw["metadata"]["data"]["tests"]["b"]["n_memory"] == 30
    back = TransferReport.load(path)
    assert back.auroc == report.auroc
    assert back.table_rows() == report.table_rows()
    assert back.summary() == report.summary()


def test_load_refuses_other_files(setup: tuple, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        TransferReport.load(tmp_path / "missing.json")
    obj = setup[2].to_dict()
    obj["metadata"]["kind"] = "report"
    (tmp_path / "other.json").write_text(json.dumps(obj))
    with pytest.raises(MetadataMismatchError, match="expected a 'transfer'"):
        TransferReport.load(tmp_path / "other.json")


# -- bad input ---------------------------------------------------------------------------------


def test_a_test_with_one_class_is_refused(setup: tuple) -> None:
    directions, tests, _ = setup
    r, m = tests["a"]
    with pytest.raises(DataError, match=r"tests\['one'\] memory states .* 0 prompt"):
        transfer_report(directions, {"one": (r, m[:0])})


def test_a_dimension_mismatch_is_refused(setup: tuple) -> None:
    directions, tests, _ = setup
    r, m = tests["a"]
    with pytest.raises(DirectionError, match=r"tests\['narrow'\] .* does not match"):
        transfer_report(directions, {"narrow": (r[:, :, :8], m[:, :, :8])})
    small = lirefs.Direction.from_activations(r[:, :3], m[:, :3])
    small.metadata["settings"]["best_layer"] = 1
    with pytest.raises(DirectionError, match=r"direction 'small' is \[L \+ 1, d_model\]"):
        transfer_report({**directions, "small": small}, {"a": (r, m)})


def test_a_direction_without_a_chosen_layer_is_refused(setup: tuple) -> None:
    _, tests, _ = setup
    d = lirefs.Direction.from_activations(*tests["a"])
    with pytest.raises(DirectionError, match=r"records no chosen layer; pass layers="):
        transfer_report({"x": d}, tests)


def test_directions_of_different_models_are_refused(setup: tuple) -> None:
    directions, tests, _ = setup
    other = direction_on(tests["a"], 2)
    other.metadata["model"] = {**MODEL, "fingerprint": "other"}
    with pytest.raises(MetadataMismatchError, match="different models"):
        transfer_report({**directions, "other": other}, tests)


@pytest.mark.parametrize(
    ("tests", "error", "match"),
    [
        ({}, DataError, "non-empty mapping"),
        ({"a": torch.zeros(3, 5, 12)}, DataError, "must be a pair"),
        ({"a": (np.zeros((3, 5, 12)), np.zeros((3, 5, 12)))}, ActivationError, "torch.Tensor"),
    ],
)
def test_bad_tests_are_refused(setup: tuple, tests: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        transfer_report(setup[0], tests)


def test_lengths_of_the_wrong_size_are_refused(setup: tuple) -> None:
    directions, tests, _ = setup
    with pytest.raises(DataError, match=r"lengths\['a'\]\[1\] has shape"):
        transfer_report(directions, tests, lengths={"a": (list(range(25)), [1, 2])})


# -- plots and the CLI -------------------------------------------------------------------------


def test_transfer_plots_are_valid_pngs(setup: tuple, tmp_path: Path) -> None:
    from lirefs.analysis import plot_transfer, plot_transfer_layers

    for fn, name in ((plot_transfer, "t.png"), (plot_transfer_layers, "l.png")):
        data = fn(setup[2], tmp_path / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.png", "t.png"]


def split_file(path: Path, acts: tuple[torch.Tensor, torch.Tensor], train_acts: tuple) -> Path:
    """An ActivationSplit file as `lirefs collect` writes it (synthetic states, token lengths)."""
    r, m = acts
    meta = make_metadata("activation-split", model=MODEL, data={"name": path.stem, "hash": "x"})
    split = ActivationSplit(
        train_acts[0].clone(),
        train_acts[1].clone(),
        r,
        m,
        torch.arange(len(r)) + 20,
        torch.arange(len(m)) + 5,
        meta,
    )
    return split.save(path)


def test_cli_writes_json_and_heatmaps(setup: tuple, tmp_path: Path) -> None:
    from lirefs.cli import main

    directions, tests, _ = setup
    args = []
    for name in ("a", "b"):
        directions[name].save(tmp_path / f"{name}.safetensors")
        split_file(tmp_path / f"{name}-acts.safetensors", tests[name], tests[name])
        args += ["-d", f"{name}={tmp_path / f'{name}.safetensors'}"]
        args += ["-t", f"{name}={tmp_path / f'{name}-acts.safetensors'}"]
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["transfer", *args, "-o", str(out), "--permutations", "30"])
    assert result.exit_code == 0, result.output
    assert "held-out AUROC" in result.output and "length alone" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        ".lirefs-outputs.json",  # the output folder's manifest (lirefs.outputs)
        "transfer.json",
        "transfer.png",
        "transfer_layers.png",
    ]
    back = TransferReport.load(out / "transfer.json")
    r, m = tests["b"]
    assert back.auroc["a"]["b"] == pytest.approx(reference_auroc(directions["a"], r, m, 4))
    assert back.length_auroc["a"] is not None


def test_cli_one_class_test_is_one_line_and_writes_nothing(setup: tuple, tmp_path: Path) -> None:
    from lirefs.cli import main

    directions, tests, _ = setup
    directions["a"].save(tmp_path / "a.safetensors")
    r, m = tests["a"]
    split_file(tmp_path / "one.safetensors", (r, m[:1]), tests["a"])
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["transfer", "-d", f"a={tmp_path / 'a.safetensors'}", "-t",
         f"one={tmp_path / 'one.safetensors'}", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "1 prompt" in lines[0], result.output
    assert "Traceback" not in result.output
    assert not out.exists()


# -- the demo's transfer test on a real (tiny) model -------------------------------------------


def test_demo_scores_its_direction_on_the_other_set(make_tiny, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lirefs.pipeline import collect_split, find_direction, transfer_on_sets

    model = make_tiny("llama")
    countries = "France Spain Peru Kenya Japan Chile Italy Egypt Iran Cuba Chad Mali Oman Fiji"
    elements = "iron gold neon zinc lead tin argon boron iodine carbon sulfur helium oxygen copper"
    base = lirefs.data.QuestionSets.from_texts(
        [f"A box holds {a} rows of {a + 1} eggs. How many eggs?" for a in range(2, 16)],
        [f"What is the capital of {c}?" for c in countries.split(" ")],
        name="base",
    )
    matched = lirefs.data.QuestionSets.from_texts(
        [f"What is {a} plus {a - 5}?" for a in range(10, 24)],
        [f"What is the atomic number of {e}?" for e in elements.split(" ")],
        name="matched-toy",
    )
    real_load = lirefs.data.load
    monkeypatch.setattr(
        lirefs.data,
        "load",
        lambda name, **kw: matched if name == "toy-matched" else real_load(name),
    )
    split = collect_split(model, base, test_fraction=0.4, progress=False)
    direction, _ = find_direction(split, n_permutations=20, progress=False)
    report, directions, notes = transfer_on_sets(
        model, "base", split, direction, ["toy-matched", "no-such-set"], required=False,
        limit=None, test_fraction=0.4, seed=0, batch_size=None, remote=False, permutations=20,
    )  # fmt: skip
    assert report.directions == report.tests == ["base", "toy-matched"]
    assert directions["base"] is direction
    assert len(notes) == 1 and "no-such-set" in notes[0]
    other = collect_split(model, matched, test_fraction=0.4, progress=False)  # same split, seed 0
    layer = direction.chosen_layer
    expected = reference_auroc(direction, other.test_reasoning, other.test_memory, layer)
    assert report.auroc["base"]["toy-matched"] == pytest.approx(expected, abs=1e-12)
    assert report.length_auroc["toy-matched"] is not None
    with pytest.raises(DataError, match="no-such-set"):
        transfer_on_sets(
            model, "base", split, direction, ["no-such-set"], required=True, limit=None,
            test_fraction=0.4, seed=0, batch_size=None, remote=False, permutations=20,
        )  # fmt: skip


# -- the pipeline as a Python API ----------------------------------------------------------------


def toy_sets() -> tuple[lirefs.data.QuestionSets, lirefs.data.QuestionSets]:
    """Two small question sets (14 per class) of different surface forms."""
    countries = "France Spain Peru Kenya Japan Chile Italy Egypt Iran Cuba Chad Mali Oman Fiji"
    elements = "iron gold neon zinc lead tin argon boron iodine carbon sulfur helium oxygen copper"
    base = lirefs.data.QuestionSets.from_texts(
        [f"A box holds {a} rows of {a + 1} eggs. How many eggs?" for a in range(2, 16)],
        [f"What is the capital of {c}?" for c in countries.split(" ")],
        name="base",
    )
    matched = lirefs.data.QuestionSets.from_texts(
        [f"What is {a} plus {a - 5}?" for a in range(10, 24)],
        [f"What is the atomic number of {e}?" for e in elements.split(" ")],
        name="matched-toy",
    )
    return base, matched


def test_run_demo_is_the_steps_by_hand_and_writes_only_when_asked(  # type: ignore[no-untyped-def]
    make_tiny, monkeypatch, tmp_path: Path
) -> None:
    from lirefs import pipeline

    model = make_tiny("llama")
    base, matched = toy_sets()
    sets = {"base": base, "toy-matched": matched}
    monkeypatch.setattr(lirefs.data, "load", lambda name, **kw: sets[name])
    monkeypatch.chdir(tmp_path)
    result = pipeline.run_demo(
        model, "base", test_fraction=0.4, permutations=20, transfer_sets=["toy-matched"]
    )
    assert list(tmp_path.iterdir()) == []  # nothing written without out=
    split = pipeline.collect_split(model, base, test_fraction=0.4, progress=False)
    direction, report = pipeline.find_direction(split, n_permutations=20)
    assert torch.equal(result.direction.vectors, direction.vectors)
    assert result.report.to_dict()["auroc"] == report.to_dict()["auroc"]
    assert result.report.best_layer == direction.chosen_layer
    other = pipeline.collect_split(model, matched, test_fraction=0.4, progress=False)
    layer = direction.chosen_layer
    expected = reference_auroc(direction, other.test_reasoning, other.test_memory, layer)
    assert result.transfer is not None
    assert result.transfer.auroc["base"]["toy-matched"] == pytest.approx(expected, abs=1e-12)
    assert sorted(result.directions) == ["base", "toy-matched"] and result.notes == []

    written = result.save(tmp_path / "out", plots=False, html=False)
    assert [p.name for p in written] == [
        "direction.safetensors",
        "report.json",
        "direction-toy-matched.safetensors",
        "transfer.json",
    ]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["best_layer"] == layer


def test_run_demo_without_transfer_and_the_size_rule(make_tiny, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lirefs import pipeline

    base, _ = toy_sets()
    monkeypatch.setattr(lirefs.data, "load", lambda name, **kw: base)
    with pytest.raises(DataError, match=r"at least 5 per class"):
        pipeline.prepare_sets("base", limit=6)  # refused before any model is needed
    result = pipeline.run_demo(
        make_tiny("llama"), "base", test_fraction=0.4, permutations=10, transfer=False
    )
    assert result.transfer is None and result.directions == {} and result.notes == []


def test_the_orchestration_names_still_resolve_in_analysis() -> None:
    import lirefs.analysis as analysis
    import lirefs.analysis.splits as splits
    from lirefs import pipeline

    for name in ("collect_split", "find_direction", "split_transfer"):
        assert getattr(analysis, name) is getattr(splits, name) is getattr(pipeline, name)
    with pytest.raises(AttributeError):
        analysis.no_such_name  # noqa: B018
