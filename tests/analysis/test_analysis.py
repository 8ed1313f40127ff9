"""The layer report, its baselines and its plots: numbers checked against independent references."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import lirefs
from lirefs.analysis import (
    LayerReport,
    cosine_matrix,
    layer_report,
    length_matched_pairs,
    pc_cosines,
    pca_2d,
    permuted_aurocs,
)
from lirefs.errors import (
    ActivationError,
    DataError,
    DirectionError,
    LayerError,
    MetadataMismatchError,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def direction(vectors: list[list[float]]) -> lirefs.Direction:
    """A Direction with the given per-layer vectors ``[L + 1, d]`` (class means are arbitrary)."""
    v = torch.tensor(vectors, dtype=torch.float64)
    return lirefs.Direction(v, v.clone(), torch.zeros_like(v), 4, 4, {"model": {"name": "toy"}})


def states_from_scores(scores: list[float], n_layers: int = 1, d: int = 2) -> torch.Tensor:
    """``[n, L + 1, d]`` states whose first coordinate at every layer is the given score."""
    x = torch.zeros(len(scores), n_layers + 1, d)
    x[:, :, 0] = torch.tensor(scores).unsqueeze(1)
    return x


def gaussian_classes(
    n: int, shift: float, n_layers: int = 4, d: int = 16, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reasoning states shifted by ``shift * l / L`` along axis 0 at layer l; layer 0 constant."""
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(n, n_layers + 1, d, generator=g)
    m = torch.randn(n, n_layers + 1, d, generator=g)
    r[:, :, 0] += shift * torch.arange(n_layers + 1) / n_layers
    r[:, 0], m[:, 0] = 1.0, 1.0
    return r, m


@pytest.fixture(scope="module")
def toy() -> tuple[lirefs.Direction, torch.Tensor, torch.Tensor, LayerReport]:
    train_r, train_m = gaussian_classes(30, 3.0, seed=1)
    test_r, test_m = gaussian_classes(20, 3.0, seed=2)
    liref = lirefs.Direction.from_activations(train_r, train_m)
    report = layer_report(
        liref,
        test_r,
        test_m,
        train_reasoning_acts=train_r,
        train_memory_acts=train_m,
        test_reasoning_lengths=list(range(20, 40)),
        test_memory_lengths=list(range(10, 30)),
        n_permutations=100,
    )
    return liref, test_r, test_m, report


# -- the numbers -------------------------------------------------------------------------------


def test_auroc_matches_hand_computed_value() -> None:
    # reasoning scores 3, 1, 4 vs memory 2, 0, 2: of the 9 pairs, reasoning wins 3 + 1 + 3 = 7
    liref = direction([[0.0, 0.0], [2.0, 0.0]])
    r, m = states_from_scores([3, 1, 4]), states_from_scores([2, 0, 2])
    report = layer_report(liref, r, m, probe=False, n_permutations=50)
    assert report.auroc[1] == pytest.approx(7 / 9)
    assert math.isnan(report.auroc[0])


def test_auroc_counts_ties_as_one_half() -> None:
    liref = direction([[0.0, 0.0], [1.0, 0.0]])
    report = layer_report(
        liref, states_from_scores([1, 2]), states_from_scores([1, 0]), probe=False
    )
    assert report.auroc[1] == pytest.approx(3.5 / 4)  # (1 vs 1) ties, the rest reasoning wins


def test_effect_size_matches_pooled_residual_sd() -> None:
    rng = np.random.default_rng(3)
    s_r, s_m = rng.normal(1.0, 2.0, 9), rng.normal(0.0, 1.0, 14)
    liref = direction([[0.0, 0.0], [1.0, 0.0]])
    report = layer_report(
        liref, states_from_scores(list(s_r)), states_from_scores(list(s_m)), probe=False
    )
    a = s_r.astype(np.float32).astype(np.float64)  # the states are stored as float32
    b = s_m.astype(np.float32).astype(np.float64)
    residuals = np.concatenate([a - a.mean(), b - b.mean()])
    pooled_sd = np.sqrt((residuals**2).sum() / (len(a) + len(b) - 2))
    assert report.effect_size[1] == pytest.approx((a.mean() - b.mean()) / pooled_sd, rel=1e-9)


def test_perfect_separation_gives_auroc_one_and_smallest_p() -> None:
    liref = direction([[0.0, 0.0], [1.0, 0.0]])
    r, m = states_from_scores(list(range(10, 20))), states_from_scores(list(range(10)))
    report = layer_report(liref, r, m, probe=False, n_permutations=99)  # 1 in 184756 shuffles ties
    assert report.auroc[1] == 1.0
    assert report.permutation_p[1] == pytest.approx(1 / 100)
    assert report.shuffled_auroc_p95[1] < 1.0


def test_reversed_direction_gives_auroc_zero() -> None:
    liref = direction([[0.0, 0.0], [-1.0, 0.0]])
    r, m = states_from_scores([5, 6, 7]), states_from_scores([0, 1, 2])
    assert layer_report(liref, r, m, probe=False).auroc[1] == 0.0


def test_random_labels_give_shuffled_baseline_near_half() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=200)
    liref = direction([[0.0, 0.0], [1.0, 0.0]])
    report = layer_report(
        liref,
        states_from_scores(list(scores[:100])),
        states_from_scores(list(scores[100:])),
        probe=False,
        n_permutations=300,
    )
    assert report.shuffled_auroc[1] == pytest.approx(0.5, abs=0.01)
    assert 0.5 < report.shuffled_auroc_p95[1] < 0.62
    assert report.shuffled_auroc_p5[1] < 0.5
    assert report.auroc[1] < report.shuffled_auroc_p95[1]  # no signal in random data
    assert report.permutation_p[1] > 0.05


def test_permuted_aurocs_equal_sklearn_for_each_shuffle() -> None:
    rng = np.random.default_rng(1)
    scores = np.round(rng.normal(size=30), 1)  # rounding makes ties
    labels = np.array([1] * 12 + [0] * 18)
    perms = np.stack([rng.permutation(labels) == 1 for _ in range(20)])
    fast = permuted_aurocs(scores, perms)
    slow = [roc_auc_score(p.astype(int), scores) for p in perms]
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_probe_accuracy_is_high_on_separable_states_and_chance_on_noise() -> None:
    r, m = gaussian_classes(20, 6.0, n_layers=2, d=8)
    liref = lirefs.Direction.from_activations(r, m)
    report = layer_report(liref, r, m, cv_folds=4, n_permutations=20)
    assert report.probe_accuracy[2] >= 0.95
    assert report.probe_accuracy[0] <= 0.6  # identical states at layer 0


def test_train_auroc_is_in_sample(toy: tuple) -> None:
    _, _, _, report = toy
    assert len(report.train_auroc) == 5
    assert math.isnan(report.train_auroc[0])
    assert report.train_auroc[4] > 0.9


def test_norms_and_cos_prev() -> None:
    liref = direction([[0.0, 0.0], [3.0, 4.0], [0.0, 2.0], [0.0, -1.0]])
    r, m = states_from_scores([1, 2], n_layers=3), states_from_scores([0, 1], n_layers=3)
    report = layer_report(liref, r, m, probe=False, n_permutations=10)
    assert report.direction_norm == [0.0, 5.0, 2.0, 1.0]
    assert math.isnan(report.cos_prev[0]) and math.isnan(report.cos_prev[1])
    assert report.cos_prev[2] == pytest.approx(0.8)
    assert report.cos_prev[3] == pytest.approx(-1.0)


# -- layer choice ------------------------------------------------------------------------------


def test_best_layer_is_the_held_out_argmax_never_layer_zero_or_a_zero_direction() -> None:
    # layer 0 separates perfectly but is excluded; layer 2 is all zeros; layer 3 beats layer 1
    liref = direction([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    r = torch.zeros(4, 4, 2)
    m = torch.zeros(4, 4, 2)
    r[:, :, 0] = torch.tensor([5.0, 6.0, 7.0, 8.0]).unsqueeze(1)
    m[:, :, 0] = torch.tensor([0.0, 1.0, 2.0, 6.5]).unsqueeze(1)
    r[:, 1, 1] = torch.tensor([-9.0, -9.0, 0.0, 0.0])  # spoils layer 1's score (h · (1,1)/√2)
    report = layer_report(liref, r, m, probe=False, n_permutations=10)
    assert report.auroc[0] == report.auroc[3] == pytest.approx(14 / 16)
    assert math.isnan(report.auroc[2])
    assert report.auroc[1] < report.auroc[3]
    assert report.best_layer == 3
    assert report.best_auroc == report.auroc[3]


def test_best_layer_ties_go_to_the_earliest_layer() -> None:
    liref = direction([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    r, m = states_from_scores([4, 5], n_layers=3), states_from_scores([0, 1], n_layers=3)
    assert layer_report(liref, r, m, probe=False, n_permutations=10).best_layer == 1


def test_direction_zero_at_every_layer_is_refused() -> None:
    liref = direction([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(DirectionError, match=r"all zeros at every layer 1\.\.1"):
        layer_report(liref, states_from_scores([1, 2]), states_from_scores([0, 1]), probe=False)


# -- the length confound -----------------------------------------------------------------------


def test_length_auroc_reports_the_better_orientation() -> None:
    liref = direction([[0.0, 0.0], [1.0, 0.0]])
    r, m = states_from_scores([1, 2, 3]), states_from_scores([0, 1, 2])
    longer = layer_report(
        liref, r, m, probe=False, test_reasoning_lengths=[30, 40, 50], test_memory_lengths=[5, 8, 9]
    )
    assert longer.length_auroc == 1.0 and longer.length_auroc_oriented == 1.0
    shorter = layer_report(
        liref, r, m, probe=False, test_reasoning_lengths=[5, 8, 9], test_memory_lengths=[30, 40, 50]
    )
    assert shorter.length_auroc == 1.0 and shorter.length_auroc_oriented == 0.0
    assert shorter.length_matched_pairs == 0 and shorter.length_matched_auroc == []


def test_length_matched_pairs_finds_the_largest_matching() -> None:
    # 10 matches 10; 20 matches 21 (within 10%); 30 has no partner within 10%; 50 matches 52
    pairs = length_matched_pairs([30, 10, 20, 50], [52, 21, 10, 40, 100], caliper=0.1)
    assert sorted(pairs) == [(1, 2), (2, 1), (3, 0)]
    assert length_matched_pairs([10, 11], [10.5], caliper=0.1) in ([(0, 0)], [(1, 0)])


def test_length_matched_auroc_uses_only_matched_prompts() -> None:
    # scores follow length; on the matched pairs (equal lengths) the scores are reversed
    liref = direction([[0.0, 0.0], [1.0, 0.0]])
    r = states_from_scores([1.0, 2.0, 30.0, 40.0])
    m = states_from_scores([2.5, 3.5, 3.0, 4.0])
    report = layer_report(
        liref,
        r,
        m,
        probe=False,
        test_reasoning_lengths=[10, 20, 300, 400],
        test_memory_lengths=[10, 20, 30, 40],
        n_permutations=50,
    )
    assert report.length_matched_pairs == 2
    assert report.length_matched_length_auroc == 0.5
    assert report.length_matched_auroc[1] == 0.0  # 1 < 2.5 and 2 < 3.5 on the matched pairs
    assert report.auroc[1] == pytest.approx(8 / 16)


def test_summary_states_layer_chance_and_length(toy: tuple) -> None:
    _, _, _, report = toy
    text = report.summary()
    assert f"Best layer {report.best_layer}" in text
    assert f"{report.auroc[report.best_layer]:.3f}" in text
    assert f"{report.shuffled_auroc_p95[report.best_layer]:.3f}" in text
    assert f"Prompt length alone reaches AUROC {report.length_auroc:.3f}" in text
    assert "more than a length artefact" in text


def test_summary_flags_a_pure_length_direction() -> None:
    # the score is the length itself: on matched lengths it cannot separate the classes
    lengths_r = [10, 20, 30, 40, 80, 90, 100, 110, 120]
    lengths_m = [10, 20, 30, 40, 2, 3, 4, 5, 6]
    liref = direction([[0.0, 0.0], [1.0, 0.0]])
    report = layer_report(
        liref,
        states_from_scores([float(x) for x in lengths_r]),
        states_from_scores([float(x) for x in lengths_m]),
        probe=False,
        test_reasoning_lengths=lengths_r,
        test_memory_lengths=lengths_m,
        n_permutations=50,
    )
    assert "may be a length artefact" in report.summary()


def test_summary_of_a_direction_at_chance_says_so() -> None:
    rng = np.random.default_rng(5)
    scores = rng.normal(size=40)
    liref = direction([[0.0, 0.0], [1.0, 0.0]])
    report = layer_report(
        liref,
        states_from_scores(list(scores[:20])),
        states_from_scores(list(scores[20:])),
        probe=False,
        test_reasoning_lengths=[10] * 20,
        test_memory_lengths=[10] * 20,
    )
    assert report.auroc[1] < report.shuffled_auroc_p95[1]
    assert "does not separate the held-out classes beyond chance" in report.summary()


def test_summary_without_lengths_says_length_is_not_ruled_out() -> None:
    liref = direction([[0.0, 0.0], [1.0, 0.0]])
    r, m = states_from_scores([5, 6, 7, 8, 9]), states_from_scores([0, 1, 2, 3, 4])
    text = layer_report(liref, r, m, probe=False).summary()
    assert "length artefact is not ruled out" in text


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda r, m: (r[:0], m), DataError, "0 prompt"),
        (lambda r, m: (r, m[:1]), DataError, "1 prompt"),
        (lambda r, m: (r[:, :, :1], m), DirectionError, "does not match"),
        (lambda r, m: (r, m[:, :2]), DirectionError, "does not match"),
        (lambda r, m: (r[:, 0], m), ActivationError, r"\[n, L \+ 1, d_model\]"),
        (lambda r, m: (r.numpy(), m), ActivationError, "torch.Tensor"),
    ],
)
def test_bad_states_are_refused(make, error, match) -> None:  # type: ignore[no-untyped-def]
    liref = direction([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    r, m = states_from_scores([1, 2, 3], n_layers=2), states_from_scores([0, 1, 2], n_layers=2)
    with pytest.raises(error, match=match):
        layer_report(liref, *make(r, m), probe=False)


def test_nan_states_are_refused() -> None:
    liref = direction([[0.0, 0.0], [1.0, 0.0]])
    r = states_from_scores([1, 2, 3])
    r[1, 1, 0] = float("nan")
    with pytest.raises(ActivationError, match="NaN"):
        layer_report(liref, r, states_from_scores([0, 1, 2]), probe=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"test_reasoning_lengths": [1, 2, 3]}, "or neither"),
        ({"test_reasoning_lengths": [1, 2], "test_memory_lengths": [1, 2, 3]}, r"expected \(3,\)"),
        ({"test_reasoning_lengths": [1, 2, -3], "test_memory_lengths": [1, 2, 3]}, "non-negative"),
        ({"probe": True, "cv_folds": 5}, "5-fold"),
        ({"n_permutations": 0}, "n_permutations"),
        ({"train_reasoning_acts": states_from_scores([1, 2])}, "or neither"),
    ],
)
def test_bad_settings_are_refused(kwargs, match) -> None:  # type: ignore[no-untyped-def]
    liref = direction([[0.0, 0.0], [1.0, 0.0]])
    r, m = states_from_scores([1, 2, 3]), states_from_scores([0, 1, 2])
    with pytest.raises(DataError, match=match):
        layer_report(liref, r, m, **{"probe": False, **kwargs})


def test_not_a_direction_is_refused() -> None:
    r, m = states_from_scores([1, 2, 3]), states_from_scores([0, 1, 2])
    with pytest.raises(DirectionError, match=r"lirefs\.Direction"):
        layer_report(torch.zeros(2, 2), r, m)  # type: ignore[arg-type]


# -- files and tables --------------------------------------------------------------------------


def test_save_load_round_trip(toy: tuple, tmp_path: Path) -> None:
    _, _, _, report = toy
    path = report.save(tmp_path / "report.json")
    raw = json.loads(path.read_text())  # strict JSON: NaN is written as null
    assert raw["auroc"][0] is None
    assert raw["metadata"]["kind"] == "report"
    assert raw["metadata"]["settings"]["n_permutations"] == 100
    back = LayerReport.load(path)
    for name in ("auroc", "effect_size", "probe_accuracy", "shuffled_auroc_p95", "cos_prev"):
        np.testing.assert_array_equal(getattr(back, name), getattr(report, name))
    assert back.best_layer == report.best_layer
    assert back.length_auroc == report.length_auroc
    assert back.summary() == report.summary()


def test_load_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        LayerReport.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="not a JSON file"):
        LayerReport.load(tmp_path / "bad.json")
    liref = direction([[0.0, 0.0], [1.0, 0.0]])
    report = layer_report(
        liref, states_from_scores([1, 2]), states_from_scores([0, 1]), probe=False
    )
    obj = report.to_dict()
    obj["metadata"]["kind"] = "direction"
    (tmp_path / "other.json").write_text(json.dumps(obj))
    with pytest.raises(MetadataMismatchError, match="expected a 'report'"):
        LayerReport.load(tmp_path / "other.json")


def test_table_rows_cover_every_layer_and_mark_the_best(toy: tuple) -> None:
    _, _, _, report = toy
    rows = report.table_rows()
    assert len(rows) == report.n_layers + 1
    assert rows[report.best_layer]["layer"].endswith("*")
    assert rows[0]["AUROC"] == "-"
    assert rows[report.best_layer]["AUROC"] == f"{report.best_auroc:.3f}"
    assert {"probe acc", "matched AUROC", "train AUROC"} <= set(rows[0])


def test_report_is_reproducible_with_a_seed(toy: tuple) -> None:
    liref, r, m, _ = toy
    a = layer_report(liref, r, m, n_permutations=30, seed=7, probe=False)
    b = layer_report(liref, r, m, n_permutations=30, seed=7, probe=False)
    c = layer_report(liref, r, m, n_permutations=30, seed=8, probe=False)
    np.testing.assert_array_equal(a.shuffled_auroc_p95, b.shuffled_auroc_p95)
    assert a.shuffled_auroc[1:] != c.shuffled_auroc[1:]  # the seed drives the shuffles


# -- geometry ----------------------------------------------------------------------------------


def test_pca_2d_boundary_separates_separable_classes() -> None:
    r, m = gaussian_classes(25, 12.0, n_layers=2, d=6)
    proj = pca_2d(r, m, 2)
    assert proj.coords.shape == (50, 2) and proj.labels.tolist() == [1] * 25 + [0] * 25
    assert proj.explained_variance_ratio[0] > proj.explained_variance_ratio[1] > 0
    w1, w2, b = proj.boundary
    predicted = (proj.coords @ np.array([w1, w2]) + b > 0).astype(int)
    assert (predicted == proj.labels).mean() >= 0.98
    with pytest.raises(LayerError):
        pca_2d(r, m, 3)


def test_cosine_matrix_is_symmetric_with_unit_diagonal_and_nan_for_zero_layers() -> None:
    liref = direction([[0.0, 0.0], [3.0, 4.0], [0.0, 2.0]])
    cos = cosine_matrix(liref)
    assert cos.shape == (3, 3)
    assert torch.isnan(cos[0]).all() and torch.isnan(cos[:, 0]).all()
    assert cos[1, 1] == pytest.approx(1.0) and cos[2, 2] == pytest.approx(1.0)
    assert cos[1, 2] == cos[2, 1] == pytest.approx(0.8)


def test_pc_cosines_find_the_direction_in_the_top_component() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, 8, generator=g) * 0.1
    x[:, 1, 3] += torch.randn(200, generator=g) * 5.0  # most variance along axis 3
    liref = direction([[0.0] * 8, [0.0, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0, 0.0]])
    cos = pc_cosines(liref, x, 1, k=3)
    assert cos.shape == (3,)
    assert cos[0] == pytest.approx(1.0, abs=1e-3)  # |cos| regardless of the PC's sign
    assert (cos[1:] < 0.05).all()
    with pytest.raises(DataError, match="k=9"):
        pc_cosines(liref, x, 1, k=9)


# -- plots -------------------------------------------------------------------------------------


def test_report_plots_are_valid_pngs(toy: tuple, tmp_path: Path) -> None:
    from lirefs.analysis import write_report_plots

    liref, r, m, report = toy
    paths = write_report_plots(report, liref, r, m, tmp_path / "plots")
    names = [p.name for p in paths]
    b = report.best_layer
    assert names == [
        "layer_auroc.png",
        f"scores_layer{b}.png",
        f"pca_layer{b}.png",
        "cosine_matrix.png",
        f"pc_cosines_layer{b}.png",
    ]
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC, p
        assert len(data) > 10_000, (p, len(data))
    assert sorted(x.name for x in (tmp_path / "plots").iterdir()) == sorted(names)  # no temp files


def test_plots_without_matplotlib_name_the_extra(
    toy: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lirefs.analysis import PlotsUnavailableError, plot_layer_auroc

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(PlotsUnavailableError, match=r"pip install 'lirefs\[plots\]'"):
        plot_layer_auroc(toy[3], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_every_figure_is_drawn_with_the_ground_floor_helpers() -> None:
    import lirefs.analysis.plots as report_plots
    import lirefs.evaluation.plots as eval_plots
    import lirefs.figures as figures

    for module in (report_plots, eval_plots):
        assert module.figure is figures.figure and module.save_figure is figures.save_figure
    assert figures.PlotsUnavailableError is lirefs.PlotsUnavailableError


def test_a_failed_plot_leaves_no_file(toy: tuple, tmp_path: Path) -> None:
    from lirefs.analysis import plot_scores

    liref, r, m, _ = toy
    with pytest.raises(DirectionError):
        plot_scores(liref, r[:, :, :3], m, 1, tmp_path / "s.png")
    assert list(tmp_path.iterdir()) == []


# -- a real (tiny) model -----------------------------------------------------------------------


def test_report_on_a_tiny_model(make_tiny) -> None:  # type: ignore[no-untyped-def]
    model = make_tiny("llama")
    reasoning = [
        f"Q: A shop sells {a} pens at {b} dollars each. How much do they cost in all?\nA: "
        for a, b in [(3, 4), (5, 2), (7, 3), (2, 9), (6, 6), (4, 8)]
    ]
    memory = [
        f"Q: What is the capital of {c}?\nA: "
        for c in ["France", "Spain", "Peru", "Kenya", "Japan", "Chile"]
    ]
    acts_r = lirefs.collect_activations(model, reasoning, progress=False)
    acts_m = lirefs.collect_activations(model, memory, progress=False)
    liref = lirefs.Direction.from_activations(acts_r[:3], acts_m[:3], model=model)
    report = layer_report(liref, acts_r[3:], acts_m[3:], cv_folds=3, n_permutations=20)
    assert len(report.auroc) == lirefs.model_info(model).n_layers + 1 == 4
    assert math.isnan(report.auroc[0])  # every prompt ends in the same token
    assert 1 <= report.best_layer <= 3
    assert report.metadata["model"]["name"] == "tiny-llama"


# -- renamed keyword ---------------------------------------------------------------------------


def test_old_liref_keyword_still_works_with_a_deprecation_warning() -> None:
    d = direction([[0.0, 0.0], [1.0, 0.0]])
    r, m = states_from_scores([5, 6, 7]), states_from_scores([0, 1, 2])
    with pytest.warns(DeprecationWarning, match="use direction="):
        old = layer_report(liref=d, test_reasoning_acts=r, test_memory_acts=m, probe=False)
    new = layer_report(direction=d, test_reasoning_acts=r, test_memory_acts=m, probe=False)
    assert old.auroc[1] == new.auroc[1] == 1.0
    with pytest.raises(TypeError, match="both liref= and direction="):
        layer_report(direction=d, liref=d, test_reasoning_acts=r, test_memory_acts=m)
