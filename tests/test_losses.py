import pytest
import torch
import torch.nn.functional as F

from s2m.losses import (
    emosim_loss,
    ranksim_loss,
    sample_negatives,
    sampled_triplet_loss,
    structure_preserving_loss,
    total_loss,
    triplet_loss,
)


def test_triplet_zero_when_positives_far_closer():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = a * 3
    n = -a
    assert triplet_loss(a, p, n).item() == 0.0
    # swapped roles: cos(a,p) = -1, cos(a,n) = 1 -> 0.4 + 2
    assert triplet_loss(a, n, p).item() == torch.tensor(2.4).item()


def test_triplet_is_differentiable():
    a = torch.randn(4, 8, requires_grad=True)
    loss = triplet_loss(a, torch.randn(4, 8), torch.randn(4, 8), margin=0.4)
    loss.backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


def test_negatives_never_share_the_label_and_are_seeded():
    g = torch.Generator().manual_seed(0)
    a, p = torch.randn(32, 16), torch.randn(32, 16)
    labels = torch.arange(32) % 4
    idx = sample_negatives(a, p, labels, generator=g)
    assert (labels[idx] != labels).all()
    again = sample_negatives(a, p, labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample_negatives(a, p, labels, generator=torch.Generator().manual_seed(0)), again)
    onehot = F.one_hot(labels, 4)
    assert torch.equal(sample_negatives(a, p, onehot, generator=torch.Generator().manual_seed(0)), again)


def test_weighted_sampling_prefers_similar_negatives():
    # anchor 0 is close to positive 1 and opposite to positive 2; both have other labels
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    p = torch.tensor([[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 2])
    g = torch.Generator().manual_seed(1)
    picks = torch.stack([sample_negatives(a, p, labels, generator=g)[0] for _ in range(400)])
    assert (picks == 1).float().mean() > 0.95  # weight ~1 vs ~0 (cos = -1)
    uniform = torch.stack([sample_negatives(a, p, labels, weighted=False, generator=g)[0] for _ in range(400)])
    assert 0.35 < (uniform == 1).float().mean() < 0.65


def test_row_without_negative_is_handled():
    labels = torch.zeros(5, dtype=torch.long)
    idx = sample_negatives(torch.randn(5, 3), torch.randn(5, 3), labels)
    assert (idx == -1).all()
    loss = sampled_triplet_loss(torch.randn(5, 3, requires_grad=True), torch.randn(5, 3), labels)
    assert loss.item() == 0.0
    mixed = torch.tensor([0, 0, 1])
    assert (sample_negatives(torch.randn(3, 3), torch.randn(3, 3), mixed) >= 0).all()


def test_emosim_equals_mse_when_columns_distinct():
    s = torch.randn(6, 6, requires_grad=True)
    y = torch.rand(6, 6)
    loss = emosim_loss(s, y)
    assert torch.allclose(loss, F.mse_loss(s, y))
    loss.backward()
    assert s.grad is not None


def test_emosim_hand_computed_with_ties():
    # columns 0 and 2 are identical (same music tag); unique columns sorted: [col1, col0]
    y = torch.tensor([[0.2, 0.1, 0.2], [0.5, 0.9, 0.5], [0.7, 0.3, 0.7]])
    s = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    # unique(dim=1) sorts columns lexicographically: col1 (0.1, .9, .3) < col0 (0.2, .5, .7)
    # row i, value U[i,k] -> first matching column: col1 -> 1, col0 -> 0 (never 2)
    selected = torch.tensor([[2.0, 1.0], [5.0, 4.0], [8.0, 7.0]])
    unique = torch.tensor([[0.1, 0.2], [0.9, 0.5], [0.3, 0.7]])
    assert torch.allclose(emosim_loss(s, y), F.mse_loss(selected, unique))


def test_emosim_within_row_value_collision_uses_first_column():
    # columns distinct overall but row 0 has equal values in columns 0 and 1 -> both map to column 0
    y = torch.tensor([[0.5, 0.5], [0.1, 0.9]])
    s = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    # U = unique columns sorted: col0 (0.5, 0.1), col1 (0.5, 0.9); row 0 picks column 0 twice
    expected = F.mse_loss(torch.tensor([[1.0, 1.0], [0.0, 0.0]]), torch.tensor([[0.5, 0.5], [0.1, 0.9]]))
    assert torch.allclose(emosim_loss(s, y), expected)


def test_ranksim_zero_for_same_order_and_has_gradient():
    y = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.4]])
    assert ranksim_loss(y * 2 - 1, y).item() == 0.0
    s = torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.2, 0.4]], requires_grad=True)
    loss = ranksim_loss(s, y)
    assert loss.item() > 0
    loss.backward()
    assert s.grad.abs().sum() > 0


def test_loss_combinations():
    one = torch.tensor(1.0)
    assert structure_preserving_loss(one, 2 * one, 3 * one).item() == pytest.approx(0.4 + 0.6 + 0.9)
    assert total_loss(one, 2 * one, lam=0.5).item() == 2.0
    assert total_loss(one).item() == 1.0


def test_negatives_respect_an_allowed_mask():
    import torch

    from s2m.losses import sample_negatives

    emb = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    allowed = torch.ones(6, 6, dtype=torch.bool)
    allowed[0] = torch.tensor([True, False, True, True, False, True])  # row 0 may not meet label 1
    allowed[1] = torch.zeros(6, dtype=torch.bool)  # row 1 has no allowed negative at all
    for seed in range(20):
        idx = sample_negatives(emb, emb, labels, generator=torch.Generator().manual_seed(seed), allowed=allowed)
        assert labels[idx[0]] == 2 and idx[1] == -1
        assert all(labels[idx[i]] != labels[i] for i in range(2, 6))
