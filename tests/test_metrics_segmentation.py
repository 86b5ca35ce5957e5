"""Segmentation scores against counts made by hand."""

import math

import pytest
import torch

from gantk.errors import DataError
from gantk.metrics import SegmentationScores


def test_binary_scores_by_hand():
    # truth:      predicted (p > 0.5):
    #  1 1          1 0
    #  0 0          1 0
    probs = torch.tensor([[[[0.9, 0.2], [0.7, 0.1]]]])
    truth = torch.tensor([[[1, 1], [0, 0]]])
    scores = SegmentationScores(2)
    scores.update(probs, truth)
    s = scores.compute()
    # class 1: TP 1, FP 1, FN 1; class 0: TP 1, FP 1, FN 1
    assert s["pixel_accuracy"] == 0.5
    assert s["class_accuracy"] == [0.5, 0.5]
    assert s["class_iou"] == pytest.approx([1 / 3, 1 / 3])
    assert s["class_dice"] == pytest.approx([0.5, 0.5])
    assert s["foreground_iou"] == pytest.approx(1 / 3) and s["foreground_dice"] == pytest.approx(0.5)
    assert s["mean_iou"] == pytest.approx(1 / 3)
    squared = (0.9 - 1) ** 2 + (0.2 - 1) ** 2 + 0.7**2 + 0.1**2
    assert s["rmse"] == pytest.approx(math.sqrt(squared / 4))


def test_three_classes_with_an_absent_class():
    truth = torch.tensor([[[0, 0, 1, 1]]])  # class 2 appears nowhere
    predicted = torch.tensor([[[0, 1, 1, 1]]])
    probs = torch.nn.functional.one_hot(predicted, 3).permute(0, 3, 1, 2).float()
    scores = SegmentationScores(3)
    scores.update(probs, truth)
    s = scores.compute()
    assert s["pixel_accuracy"] == 0.75
    assert s["class_accuracy"][:2] == [0.5, 1.0] and math.isnan(s["class_accuracy"][2])
    assert s["class_iou"][:2] == pytest.approx([0.5, 2 / 3]) and math.isnan(s["class_iou"][2])
    assert s["mean_iou"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert s["class_dice"][:2] == pytest.approx([2 / 3, 0.8])
    assert s["mean_class_accuracy"] == pytest.approx(0.75)
    assert s["rmse"] == pytest.approx(math.sqrt(2 / 12))  # one wrong pixel: two one-hot entries off by 1
    assert "foreground_iou" not in s


def test_counts_accumulate_over_batches():
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(4, 1, 6, 6, generator=generator)
    truth = (torch.rand(4, 6, 6, generator=generator) > 0.5).long()
    whole, parts = SegmentationScores(2), SegmentationScores(2)
    whole.update(probs, truth)
    parts.update(probs[:3], truth[:3])
    parts.update(probs[3:], truth[3:])
    expected, got = whole.compute(), parts.compute()
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


def test_update_returns_per_image_probability_error():
    probs = torch.tensor([[[[1.0, 0.0]]], [[[0.5, 0.5]]]])
    truth = torch.tensor([[[1, 0]], [[1, 1]]])
    assert SegmentationScores(2).update(probs, truth).tolist() == [0.0, 0.5]


@pytest.mark.parametrize("bad", [2, 255, -2])
def test_class_ids_outside_the_model_classes_are_refused(bad):
    ids = torch.tensor([[[0, 1, bad]]])
    with pytest.raises(DataError, match=rf"true class ids must lie in 0..1 for a 2-class model \(or be -1 where ignored\), "
                                        rf"got ids {min(0, bad)}..{max(1, bad)}; map other labels"):
        SegmentationScores(2).update(torch.tensor([[[[0.1, 0.9, 0.5]]]]), ids)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_probabilities_that_are_not_finite_are_refused(bad):
    from gantk.errors import DataError

    probs = torch.full((1, 1, 2, 2), 0.7)
    probs[0, 0, 1, 1] = bad
    with pytest.raises(DataError, match="probs holds NaN or infinite values"):
        SegmentationScores(2).update(probs, torch.ones(1, 2, 2, dtype=torch.long))


@pytest.mark.parametrize("classes, probs, ids", [
    (2, (2, 2, 8, 8), (2, 8, 8)),  # a binary model's probabilities are one channel, class 1's
    (3, (2, 1, 8, 8), (2, 8, 8)),
    (2, (2, 1, 8, 8), (2, 1, 8, 8)),  # ids with a channel
    (2, (2, 1, 8, 8), (2, 4, 8)),
    (2, (2, 1, 8, 8), (1, 8, 8)),
])
def test_probabilities_and_ids_of_other_shapes_are_refused(classes, probs, ids):
    with pytest.raises(DataError, match=rf"probs must be N x {1 if classes == 2 else classes} x H x W for a {classes}-class model"):
        SegmentationScores(classes).update(torch.rand(probs), torch.zeros(ids, dtype=torch.long))
