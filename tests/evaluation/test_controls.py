"""Control directions: seeded random unit vectors and the shuffled-label difference of means."""

from __future__ import annotations

import pytest
import torch

from lirefs.errors import ActivationError, DataError, LayerError
from lirefs.evaluation.controls import (
    control_directions,
    random_directions,
    shuffled_direction,
    unit_hash,
)


def test_random_directions_are_seeded_unit_vectors() -> None:
    a = random_directions(16, 3, seed=5)
    b = random_directions(16, 3, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(abs(float(v.norm()) - 1.0) < 1e-12 and v.dtype == torch.float64 for v in a)
    assert not torch.equal(a[0], random_directions(16, 1, seed=6)[0])


def test_more_controls_extend_the_same_draws() -> None:
    two, three = random_directions(8, 2, seed=1), random_directions(8, 3, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(two, three[:2], strict=True))


def test_shuffled_direction_is_a_mean_difference_under_a_label_permutation() -> None:
    g = torch.Generator().manual_seed(0)
    r = torch.randn(6, 3, 4, generator=g)
    m = torch.randn(5, 3, 4, generator=g)
    got = shuffled_direction(r, m, layer=2, seed=3)
    pooled = torch.cat([r[:, 2], m[:, 2]]).double()
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(3))
    want = pooled[perm[:6]].mean(0) - pooled[perm[6:]].mean(0)
    assert torch.allclose(got, want, atol=0, rtol=0)
    real = r[:, 2].double().mean(0) - m[:, 2].double().mean(0)
    assert not torch.allclose(got, real)


def test_shuffle_removes_a_planted_class_difference() -> None:
    g = torch.Generator().manual_seed(0)
    r = torch.randn(200, 2, 8, generator=g) + 5.0 * torch.eye(8)[0]
    m = torch.randn(200, 2, 8, generator=g)
    real = r[:, 1].double().mean(0) - m[:, 1].double().mean(0)
    shuffled = shuffled_direction(r, m, layer=1, seed=0)
    assert float(real.norm()) > 4.0
    assert float(shuffled.norm()) < 1.5


def test_control_directions_names_and_recipes() -> None:
    g = torch.Generator().manual_seed(0)
    r, m = torch.randn(4, 3, 8, generator=g), torch.randn(4, 3, 8, generator=g)
    controls = control_directions(8, 2, seed=7, activations=(r, m), layer=1)
    assert [c.name for c in controls] == ["random-0", "random-1", "shuffled"]
    assert controls[0].recipe == {
        "kind": "random",
        "seed": 7,
        "index": 0,
        "unit_hash": unit_hash(controls[0].vector),
    }
    assert controls[2].recipe["kind"] == "shuffled" and controls[2].recipe["layer"] == 1


def test_bad_control_input_is_a_clear_error() -> None:
    g = torch.Generator().manual_seed(0)
    r, m = torch.randn(4, 3, 8, generator=g), torch.randn(4, 3, 8, generator=g)
    with pytest.raises(DataError, match=">= 0"):
        random_directions(8, -1)
    with pytest.raises(DataError, match="layer"):
        control_directions(8, 1, activations=(r, m))
    with pytest.raises(ActivationError, match="differ"):
        shuffled_direction(r, m[:, :2], layer=1)
    with pytest.raises(LayerError, match="out of range"):
        shuffled_direction(r, m, layer=3)
    with pytest.raises(ActivationError, match="d_model"):
        control_directions(16, 0, activations=(r, m), layer=1)
