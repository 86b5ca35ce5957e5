"""Built-in objectives: known values, module == function, gradients, and every registered name."""

import math
import re
import types
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck

import gantk
from gantk import LossContext, Objective
from gantk.errors import GantkError, GantkWarning, OptionError, SpecError
from gantk.objectives import (
    BCEGANLoss,
    CrossEntropyLoss,
    FocalLoss,
    CycleLoss,
    HingeGANLoss,
    IdentityLoss,
    LovaszLoss,
    LSGANLoss,
    PixelL1Loss,
    PixelL2Loss,
    R1Penalty,
    bce_discriminator_loss,
    bce_generator_loss,
    cross_entropy_loss,
    cycle_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    identity_loss,
    lovasz_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    pixel_loss,
    r1_penalty,
    spec,
)
from gantk.testing import ObjectiveConformance

OBJECTIVES = gantk.load_components(autoload=False).registry("objective")
REAL, FAKE = [2.0, -1.0], [0.5, -3.0]


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def bce(x: float, y: float) -> float:
    """Binary cross-entropy of logit x against target y: -y log σ(x) - (1 - y) log(1 - σ(x))."""
    return y * softplus(-x) + (1 - y) * softplus(x)


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def value(loss: torch.Tensor) -> float:
    assert loss.dim() == 0
    return loss.item()


# --- adversarial ----------------------------------------------------------------------------

def test_bce_known_values():
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    expected_d = 0.5 * (mean(bce(x, 1) for x in REAL) + mean(bce(x, 0) for x in FAKE))
    assert value(bce_discriminator_loss(real, fake)) == pytest.approx(expected_d, rel=1e-6)
    smoothed = 0.5 * (mean(bce(x, 0.9) for x in REAL) + mean(bce(x, 0.1) for x in FAKE))
    assert value(bce_discriminator_loss(real, fake, 0.9, 0.1)) == pytest.approx(smoothed, rel=1e-6)
    assert value(bce_generator_loss(fake)) == pytest.approx(mean(softplus(-x) for x in FAKE), rel=1e-6)


def test_lsgan_known_values():
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    assert value(lsgan_discriminator_loss(real, fake)) == pytest.approx(0.5 * (2.5 + 4.625))
    smoothed = 0.5 * (mean((x - 0.9) ** 2 for x in REAL) + mean((x + 1) ** 2 for x in FAKE))
    assert value(lsgan_discriminator_loss(real, fake, 0.9, -1.0)) == pytest.approx(smoothed)
    assert value(lsgan_generator_loss(fake)) == pytest.approx(8.125)


def test_hinge_known_values():
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    assert value(hinge_discriminator_loss(real, fake)) == pytest.approx(0.5 * (1.0 + 0.75))
    assert value(hinge_generator_loss(fake)) == pytest.approx(1.25)


D_LOSSES = [bce_discriminator_loss, lsgan_discriminator_loss, hinge_discriminator_loss]
G_LOSSES = [bce_generator_loss, lsgan_generator_loss, hinge_generator_loss]


@pytest.mark.parametrize("d_loss", D_LOSSES)
def test_discriminator_loss_averages_over_scales(d_loss):
    torch.manual_seed(0)
    real = [torch.randn(2, 1, 4, 4), torch.randn(2, 1, 2, 2)]
    fake = [torch.randn(2, 1, 4, 4), torch.randn(2, 1, 2, 2)]
    expected = 0.5 * (d_loss(real[0], fake[0]) + d_loss(real[1], fake[1]))
    torch.testing.assert_close(d_loss(real, fake), expected)
    torch.testing.assert_close(d_loss(tuple(real), tuple(fake)), expected)


@pytest.mark.parametrize("g_loss", G_LOSSES)
def test_generator_loss_averages_over_scales(g_loss):
    torch.manual_seed(0)
    fake = [torch.randn(2, 1, 4, 4), torch.randn(2, 1, 2, 2), torch.randn(2, 1, 1, 1)]
    torch.testing.assert_close(g_loss(fake), sum(g_loss(f) for f in fake) / 3)


@pytest.mark.parametrize("d_loss", D_LOSSES)
def test_scale_lists_must_match(d_loss):
    maps = [torch.zeros(1, 1, 2, 2)] * 2
    with pytest.raises(ValueError, match="equal length"):
        d_loss(maps, maps[:1])
    with pytest.raises(ValueError, match="non-empty"):
        d_loss([], [])


@pytest.mark.parametrize("d_loss, g_loss", list(zip(D_LOSSES, G_LOSSES)))
def test_adversarial_gradcheck(d_loss, g_loss):
    torch.manual_seed(0)
    # In (-0.9, 0.9): away from the hinge kinks at real = 1 and fake = -1.
    real = (torch.rand(2, 1, 3, 3, dtype=torch.float64) * 1.8 - 0.9).requires_grad_()
    fake = (torch.rand(2, 1, 3, 3, dtype=torch.float64) * 1.8 - 0.9).requires_grad_()
    assert gradcheck(d_loss, (real, fake))
    assert gradcheck(g_loss, (fake,))
    assert gradcheck(lambda r, f: d_loss([r, 2 * r], [f, f.flip(0)]), (real, fake))


def _discriminator() -> nn.Module:
    torch.manual_seed(0)
    return nn.Conv2d(2, 1, 3, padding=1)


def _adversarial_context(discriminator: nn.Module) -> LossContext:
    torch.manual_seed(1)
    fake = torch.randn(2, 1, 5, 5, requires_grad=True)
    return LossContext(input=torch.randn(2, 1, 5, 5), fake=fake, real=torch.randn(2, 1, 5, 5), discriminator=discriminator)


ADVERSARIAL = [
    (BCEGANLoss(0.9, 0.1), lambda r, f: bce_discriminator_loss(r, f, 0.9, 0.1), bce_generator_loss),
    (LSGANLoss(0.8, -0.5), lambda r, f: lsgan_discriminator_loss(r, f, 0.8, -0.5), lsgan_generator_loss),
    (HingeGANLoss(), hinge_discriminator_loss, hinge_generator_loss),
]


@pytest.mark.parametrize("objective, d_loss, g_loss", ADVERSARIAL)
def test_adversarial_module_matches_function(objective, d_loss, g_loss):
    assert objective.adversarial and objective.default_weight == 1
    disc = _discriminator()
    ctx = _adversarial_context(disc)
    d_real = disc(torch.cat([ctx.input, ctx.real], 1))
    d_fake = disc(torch.cat([ctx.input, ctx.fake], 1))
    torch.testing.assert_close(objective.discriminator_loss(ctx), d_loss(d_real, d_fake))
    torch.testing.assert_close(objective.generator_loss(ctx), g_loss(d_fake))


@pytest.mark.parametrize("objective", [entry[0] for entry in ADVERSARIAL])
def test_discriminator_step_sees_the_fake_before_the_real(objective):
    # With momentum 1 the running mean is the mean of the last batch the norm layer saw:
    # the reference's D step ends on the real pair.
    disc = nn.Sequential(nn.BatchNorm2d(2, momentum=1.0), nn.Conv2d(2, 1, 3))
    ctx = _adversarial_context(disc)
    objective.discriminator_loss(ctx)
    real_mean = torch.cat([ctx.input, ctx.real], 1).mean(dim=(0, 2, 3))
    torch.testing.assert_close(disc[0].running_mean, real_mean)


@pytest.mark.parametrize("objective", [entry[0] for entry in ADVERSARIAL])
def test_generator_gradient_flows_only_in_generator_step(objective):
    disc = _discriminator()
    ctx = _adversarial_context(disc)
    objective.discriminator_loss(ctx).backward()
    assert ctx.fake.grad is None
    assert disc.weight.grad is not None and disc.weight.grad.abs().sum() > 0

    disc.zero_grad()
    ctx = _adversarial_context(disc)
    objective.generator_loss(ctx).backward()
    assert ctx.fake.grad is not None and ctx.fake.grad.abs().sum() > 0


def test_adversarial_accepts_multi_scale_discriminator():
    convs = [nn.Conv2d(2, 1, 3, padding=1), nn.Conv2d(2, 1, 3, padding=1, stride=2)]
    ctx = _adversarial_context(lambda x: [conv(x) for conv in convs])
    loss = LSGANLoss().generator_loss(ctx)
    expected = sum(lsgan_generator_loss(conv(torch.cat([ctx.input, ctx.fake], 1))) for conv in convs) / 2
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize(
    "factory, real_label, fake_label, bounds",
    [(BCEGANLoss, 1.1, 0.0, "bce needs 0 <= fake_label < real_label <= 1"), (BCEGANLoss, 0.5, 0.5, "bce needs 0 <="),
     (BCEGANLoss, 1.0, -0.1, "bce needs 0 <="), (LSGANLoss, 0.0, 1.0, "lsgan needs finite labels with fake_label < real_label, "),
     (LSGANLoss, float("inf"), 0.0, "lsgan needs finite labels"), (LSGANLoss, 1.0, float("-inf"), "lsgan needs finite labels")],
)
def test_bad_labels_are_rejected(factory, real_label, fake_label, bounds):
    with pytest.raises(OptionError, match=f"^{re.escape(bounds)}.*got real_label={real_label}, fake_label={fake_label}"):
        factory(real_label=real_label, fake_label=fake_label)
    assert repr(factory(real_label=0.9)) == f"{factory.__name__}(real_label=0.9, fake_label=0.0)"


class FeaturesSubmodule(nn.Module):
    """A discriminator whose ``features`` is a submodule (torchvision style), not a ``features(x)`` method."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(2, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 1, 1)

    def forward(self, x):
        return self.head(self.features(x))


class Augmenting(nn.Module):
    """A wrapper that changes what its discriminator sees: not one of the trainer's wrappers."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x.flip(-1))


class TwoMaps(nn.Module):
    """A discriminator with ``features(x)``: two maps, the logits last."""

    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 1, 3, padding=1)

    def features(self, x):
        hidden = self.body(x)
        return [hidden, self.head(hidden)]

    def forward(self, x):
        return self.features(x)[-1]


def test_only_a_features_method_behind_the_trainers_wrappers_is_read():
    from gantk.objectives.base import feature_extractor
    from gantk.objectives.spec import ObjectiveSet

    patch = TwoMaps()
    assert feature_extractor(torch.compile(patch)) is patch and feature_extractor(nn.DataParallel(patch)) is patch
    assert feature_extractor(Augmenting(patch)) is None and feature_extractor(FeaturesSubmodule()) is None
    spec = ObjectiveSet.from_spec("bce+l1", gantk.load_components(autoload=False).registry("objective"))
    spec.terms[1].objective.reads_discriminator_features = True  # as feature matching declares
    for discriminator in (Augmenting(patch), FeaturesSubmodule()):  # D itself gives the adversarial logits
        ctx = _adversarial_context(discriminator)
        expected = BCEGANLoss().generator_loss(_adversarial_context(discriminator))
        torch.testing.assert_close(spec.generator_losses(ctx)["bce"], expected)


def test_features_that_are_no_list_are_named():
    class OneMap(nn.Conv2d):
        def features(self, x):
            return self(x)

    ctx = _adversarial_context(OneMap(2, 1, 3))
    with pytest.raises(OptionError, match=r"the features\(x\) of the discriminator OneMap returned a Tensor; it must return the list of feature maps"):
        _ = ctx.d_fake_features


def test_adversarial_without_discriminator_explains():
    ctx = LossContext(input=torch.zeros(1, 1, 2, 2), fake=torch.zeros(1, 1, 2, 2), real=torch.zeros(1, 1, 2, 2))
    with pytest.raises(OptionError, match="no discriminator"):
        BCEGANLoss().generator_loss(ctx)


# --- pixel ----------------------------------------------------------------------------------

def test_pixel_known_values():
    fake = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    real = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assert value(pixel_loss(fake, real, "l1")) == pytest.approx(1.5)
    assert value(pixel_loss(fake, real, "l2")) == pytest.approx(3.5)
    ctx = LossContext(input=real, fake=fake, real=real)
    assert value(PixelL1Loss().generator_loss(ctx)) == pytest.approx(1.5)
    assert value(PixelL2Loss().generator_loss(ctx)) == pytest.approx(3.5)
    assert PixelL1Loss().discriminator_loss(ctx) is None


def test_pixel_default_weights_match():
    assert PixelL1Loss.default_weight == PixelL2Loss.default_weight == 100


@pytest.mark.parametrize("distance", ["l1", "l2"])
def test_pixel_gradcheck(distance):
    torch.manual_seed(0)
    real = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    # |fake - real| >= 0.1: away from the kink of l1 at 0.
    offset = (torch.rand_like(real) + 0.1) * torch.where(torch.rand_like(real) > 0.5, 1.0, -1.0)
    fake = (real + offset).requires_grad_()
    assert gradcheck(lambda f: pixel_loss(f, real, distance), (fake,))


def test_pixel_errors():
    with pytest.raises(ValueError, match="one shape"):
        pixel_loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 1, 2, 2))
    with pytest.raises(GantkError, match="Did you mean 'l1'"):
        pixel_loss(torch.zeros(2), torch.zeros(2), "ll1")


# --- cycle and identity ---------------------------------------------------------------------

def _unpaired_context(reconstructed: torch.Tensor, identity_output: torch.Tensor, calls: list) -> LossContext:
    a = torch.zeros(1, 1, 2, 2)
    b = torch.ones(1, 1, 2, 2)

    def reconstruct():
        calls.append("reconstruct")
        return reconstructed

    def identity():
        calls.append("identity")
        return identity_output

    return LossContext(input=a, fake=b, real=b, reconstruct=reconstruct, identity=identity)


def test_cycle_and_identity_known_values():
    calls = []
    reconstructed = torch.tensor([[[[0.5, -1.0], [0.0, 2.0]]]])
    identity_output = torch.tensor([[[[1.0, 0.0], [3.0, 1.5]]]])
    ctx = _unpaired_context(reconstructed, identity_output, calls)
    assert value(CycleLoss().generator_loss(ctx)) == pytest.approx((0.5 + 1 + 0 + 2) / 4)
    assert value(CycleLoss("l2").generator_loss(ctx)) == pytest.approx((0.25 + 1 + 0 + 4) / 4)
    assert value(IdentityLoss().generator_loss(ctx)) == pytest.approx((0 + 1 + 2 + 0.5) / 4)
    assert value(IdentityLoss("l2").generator_loss(ctx)) == pytest.approx((0 + 1 + 4 + 0.25) / 4)
    assert calls == ["reconstruct", "identity"]  # each computed once, shared by the terms
    assert CycleLoss().discriminator_loss(ctx) is None and IdentityLoss().discriminator_loss(ctx) is None


def test_cycle_module_matches_function():
    torch.manual_seed(0)
    ctx = _unpaired_context(torch.randn(1, 1, 2, 2), torch.randn(1, 1, 2, 2), [])
    torch.testing.assert_close(CycleLoss("l2").generator_loss(ctx), cycle_loss(ctx.reconstructed, ctx.input, "l2"))
    torch.testing.assert_close(IdentityLoss().generator_loss(ctx), identity_loss(ctx.identity_output, ctx.real))


def test_cycle_weights_follow_cyclegan():
    assert CycleLoss.default_weight == 10 and IdentityLoss.default_weight == 5


@pytest.mark.parametrize("loss", [cycle_loss, identity_loss])
@pytest.mark.parametrize("distance", ["l1", "l2"])
def test_cycle_gradcheck(loss, distance):
    torch.manual_seed(0)
    target = torch.randn(1, 3, 3, 3, dtype=torch.float64)
    output = (target + 0.2 + torch.rand_like(target)).requires_grad_()
    assert gradcheck(lambda x: loss(x, target, distance), (output,))


def test_cycle_errors():
    with pytest.raises(GantkError, match="distance='l3' is not valid; choose one of: l1, l2"):
        CycleLoss(distance="l3")
    with pytest.raises(OptionError, match=re.escape(
            "objective 'cycle' (plugin 'gantk.objectives'): distance='l3' is not valid; choose one of: l1, l2. "
            "Its options are set with --loss-opt NAME.KEY=VALUE.")):
        gantk.default_components().create("objective", "cycle", distance="l3")
    ctx = LossContext(input=torch.zeros(1, 1, 2, 2), fake=torch.zeros(1, 1, 2, 2), real=torch.zeros(1, 1, 2, 2))
    with pytest.raises(OptionError, match=r"reads the reconstruction G_BA\(G_AB\(a\)\).*--recipe cyclegan"):
        CycleLoss().generator_loss(ctx)
    with pytest.raises(OptionError, match=r"reads the identity output G_AB\(b\).*--recipe cyclegan"):
        IdentityLoss().generator_loss(ctx)


# --- lovasz ---------------------------------------------------------------------------------

def _binary_logits(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """+1/-1 where ``pred`` is right (hinge error 0), 0 where it is wrong (hinge error 1)."""
    right = torch.where(target == 1, 1.0, -1.0)
    return torch.where(pred == target, right, 0.0).unsqueeze(1)


def _jaccard_loss(pred: torch.Tensor, target: torch.Tensor) -> float:
    pred, target = pred.bool(), target.bool()
    return 1 - (pred & target).sum().item() / (pred | target).sum().item()


BINARY_CASES = [
    # (prediction, target), one image each
    ([[1, 0, 0], [0, 1, 1], [0, 0, 0]], [[1, 1, 0], [0, 1, 0], [0, 0, 0]]),
    ([[1, 1, 1], [1, 1, 1], [1, 1, 1]], [[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    ([[0, 0, 0], [0, 0, 0], [0, 0, 1]], [[1, 1, 0], [1, 1, 0], [0, 0, 0]]),
    ([[0, 1, 0], [1, 1, 1], [0, 1, 0]], [[0, 1, 0], [1, 1, 1], [0, 1, 0]]),
]


@pytest.mark.parametrize("pred, target", BINARY_CASES)
def test_lovasz_hinge_is_jaccard_loss_on_hard_predictions(pred, target):
    pred, target = torch.tensor([pred]), torch.tensor([target])
    loss = lovasz_loss(_binary_logits(pred, target), target)
    assert value(loss) == pytest.approx(_jaccard_loss(pred, target), abs=1e-6)


def test_lovasz_hinge_batch_and_per_image():
    pred = torch.tensor([case[0] for case in BINARY_CASES])
    target = torch.tensor([case[1] for case in BINARY_CASES])
    logits = _binary_logits(pred, target)
    assert value(lovasz_loss(logits, target)) == pytest.approx(_jaccard_loss(pred, target), abs=1e-6)
    per_image = mean(_jaccard_loss(p, t) for p, t in zip(pred, target))
    assert value(lovasz_loss(logits, target, per_image=True)) == pytest.approx(per_image, abs=1e-6)


def _present_class_jaccard(pred: torch.Tensor, target: torch.Tensor, classes: int) -> float:
    return mean(_jaccard_loss(pred == c, target == c) for c in range(classes) if (target == c).any())


MULTICLASS_TARGET = [[[0, 0, 1, 1], [0, 2, 1, 1], [2, 2, 0, 0]], [[1, 1, 1, 0], [0, 0, 2, 2], [0, 0, 0, 0]]]
MULTICLASS_PRED = [[[0, 1, 1, 1], [0, 2, 2, 1], [2, 0, 0, 0]], [[1, 1, 0, 0], [0, 2, 2, 2], [1, 0, 0, 0]]]


def test_lovasz_softmax_is_mean_jaccard_loss_of_present_classes():
    target, pred = torch.tensor(MULTICLASS_TARGET), torch.tensor(MULTICLASS_PRED)
    # softmax(100 * one-hot) is one-hot to within 1e-43: the errors are in {0, 1}.
    logits = 100.0 * F.one_hot(pred, 3).permute(0, 3, 1, 2).float()
    expected = _present_class_jaccard(pred, target, 3)
    assert value(lovasz_loss(logits, target)) == pytest.approx(expected, abs=1e-6)
    per_image = mean(_present_class_jaccard(p, t, 3) for p, t in zip(pred, target))
    assert value(lovasz_loss(logits, target, per_image=True)) == pytest.approx(per_image, abs=1e-6)


def test_two_class_scores_take_the_lovasz_softmax():
    target, pred = torch.tensor(MULTICLASS_TARGET).clamp(max=1), torch.tensor(MULTICLASS_PRED).clamp(max=1)
    logits = 100.0 * F.one_hot(pred, 2).permute(0, 3, 1, 2).float()  # two channels: scores of class 0 and 1, not a mask
    assert value(lovasz_loss(logits, target)) == pytest.approx(_present_class_jaccard(pred, target, 2), abs=1e-6)


def test_lovasz_softmax_skips_classes_absent_from_target():
    target = torch.tensor([[[0, 0], [1, 1]]])
    pred = torch.tensor([[[0, 2], [1, 1]]])  # class 2 is predicted but absent from the target
    logits = 100.0 * F.one_hot(pred, 3).permute(0, 3, 1, 2).float()
    class_0, class_1 = 1 - 1 / 2, 0.0  # class 2 would add 1 - 0/1 = 1 if all classes counted
    assert value(lovasz_loss(logits, target)) == pytest.approx((class_0 + class_1) / 2, abs=1e-6)


@pytest.mark.filterwarnings("ignore:Input #0 requires gradient and is not a double")
def test_lovasz_gradcheck():
    # smp computes the Lovász gradient in float32 only, so this checks in float32 with a large
    # step; the loss is piecewise linear (binary) or smooth then piecewise linear (softmax),
    # and the errors below are well apart, so a step of 1e-3 stays on one piece.
    errors = torch.tensor([0.1, 0.35, 0.6, 0.85, 1.1, 1.35, 1.6, 1.85, 2.1]).reshape(1, 3, 3)
    target = torch.tensor([[[1, 0, 1], [0, 0, 1], [1, 1, 0]]])
    logits = ((1 - errors) * (2 * target - 1)).unsqueeze(1).requires_grad_()
    assert gradcheck(lambda x: lovasz_loss(x, target), (logits,), eps=1e-3, atol=1e-3, rtol=1e-3)

    target = torch.tensor([[[0, 1, 2], [2, 1, 0]]])
    torch.manual_seed(4)
    logits = (1.5 * torch.randn(1, 3, 2, 3)).requires_grad_()
    probabilities = logits.softmax(1).detach()
    for c in range(3):  # the errors of each class stay apart under a step of 1e-3
        errors = ((target == c).float() - probabilities[:, c]).abs().flatten().sort().values
        assert (errors.diff() > 0.02).all()
    assert gradcheck(lambda x: lovasz_loss(x, target), (logits,), eps=1e-3, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("classes", [1, 3])
def test_lovasz_gradients_flow(classes):
    torch.manual_seed(0)
    logits = torch.randn(2, classes, 6, 6, requires_grad=True)
    target = torch.randint(0, max(classes, 2), (2, 6, 6))
    ctx = LossContext(input=logits, fake=logits, real=logits, fake_logits=logits, target=target)
    loss = LovaszLoss().generator_loss(ctx)
    torch.testing.assert_close(loss, lovasz_loss(logits, target))
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_lovasz_float64_and_half_inputs_give_float32():
    target = torch.tensor([[[1, 0], [0, 1]]])
    for dtype in (torch.float64, torch.bfloat16):
        assert lovasz_loss(torch.zeros(1, 1, 2, 2, dtype=dtype), target).dtype == torch.float32


def test_lovasz_module_options_and_shape_errors():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    ctx = LossContext(input=logits, fake=logits, real=logits, fake_logits=logits, target=target)
    torch.testing.assert_close(LovaszLoss(per_image=True).generator_loss(ctx), lovasz_loss(logits, target, True))
    assert LovaszLoss().discriminator_loss(ctx) is None
    with pytest.raises(ValueError, match="class ids N x H x W"):
        lovasz_loss(logits, F.one_hot(target, 3).permute(0, 3, 1, 2))


# --- ce ---------------------------------------------------------------------------------------

def _logits_with_ignored_pixels(classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random logits ``2 x classes x 5 x 5`` (requiring gradients), class ids with some pixels ignored, and the kept ones."""
    torch.manual_seed(0)
    logits = torch.randn(2, classes, 5, 5, requires_grad=True)
    target = torch.randint(0, max(classes, 2), (2, 5, 5))
    target[0, :2] = -1  # ignored
    return logits, target, target >= 0


def _check_ignored_pixels_get_no_gradient(loss: torch.Tensor, logits: torch.Tensor, kept: torch.Tensor) -> None:
    loss.backward()
    ignored = ~kept.unsqueeze(1).expand_as(logits)
    assert logits.grad[ignored].abs().max() == 0 and (logits.grad[~ignored] != 0).all()


@pytest.mark.parametrize("classes", [1, 3])
def test_ce_is_the_cross_entropy_of_the_pixels_not_ignored(classes):
    logits, target, kept = _logits_with_ignored_pixels(classes)
    if classes == 1:
        expected = F.binary_cross_entropy_with_logits(logits[:, 0][kept], target[kept].float())
    else:
        expected = F.cross_entropy(logits, target, ignore_index=-1)
    loss = cross_entropy_loss(logits, target)
    torch.testing.assert_close(loss, expected)
    _check_ignored_pixels_get_no_gradient(loss, logits, kept)


def test_ce_of_ignored_pixels_only_is_0_and_trains_nothing():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = cross_entropy_loss(logits, torch.full((2, 4, 4), -1))
    loss.backward()
    assert loss.item() == 0 and logits.grad.abs().max() == 0


def test_ce_module_reads_the_logits_in_float32():
    ctx = _segmentation_context()
    assert torch.equal(CrossEntropyLoss().generator_loss(ctx), cross_entropy_loss(ctx.fake_logits, ctx.target))
    assert CrossEntropyLoss().discriminator_loss(ctx) is None
    assert cross_entropy_loss(torch.zeros(1, 3, 2, 2, dtype=torch.bfloat16), torch.zeros(1, 2, 2, dtype=torch.long)).dtype == \
        torch.float32
    with pytest.raises(ValueError, match="ce expects logits N x K x H x W and class ids N x H x W"):
        cross_entropy_loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2, dtype=torch.long))


# --- focal ------------------------------------------------------------------------------------

@pytest.mark.parametrize("classes", [1, 3])
def test_focal_is_the_cross_entropy_scaled_by_one_minus_p_to_the_gamma(classes):
    from torchvision.ops import sigmoid_focal_loss

    logits, target, kept = _logits_with_ignored_pixels(classes)
    if classes == 1:  # torchvision's, without its alpha weighting (alpha < 0)
        per_pixel = sigmoid_focal_loss(logits[:, 0], target.clamp(min=0).float(), alpha=-1, gamma=2.0)
    else:
        p = logits.softmax(1).gather(1, target.clamp(min=0)[:, None])[:, 0]
        per_pixel = -(1 - p) ** 2 * p.log()
    ctx = LossContext(input=logits, fake=logits, real=logits, fake_logits=logits, target=target)
    loss = FocalLoss().generator_loss(ctx)
    torch.testing.assert_close(loss, per_pixel[kept].mean())
    _check_ignored_pixels_get_no_gradient(loss, logits, kept)
    torch.testing.assert_close(cross_entropy_loss(logits, target, gamma=0.0), cross_entropy_loss(logits, target))


def test_focal_down_weights_the_pixels_already_right_and_keeps_gradients_finite():
    logits = torch.tensor([[[[4.0, 0.0, 60.0]], [[0.0, 0.0, 0.0]]]], requires_grad=True)  # right, unsure, saturated
    target = torch.zeros(1, 1, 3, dtype=torch.long)
    ce = F.cross_entropy(logits, target, reduction="none")[0, 0]
    for gamma in (0.5, 2.0):
        per_pixel = [cross_entropy_loss(logits[..., i : i + 1], target[..., i : i + 1], gamma) for i in range(3)]
        assert per_pixel[0] / ce[0] < per_pixel[1] / ce[1]  # the well classified pixel loses more of its loss
        grad, = torch.autograd.grad(cross_entropy_loss(logits, target, gamma), logits)
        assert torch.isfinite(grad).all()
    with pytest.raises(OptionError, match="focal's gamma is a focusing exponent of 0 or more, got -1"):
        FocalLoss(gamma=-1)
    with pytest.raises(OptionError, match="got True"):
        FocalLoss(gamma=True)


# --- class weights ----------------------------------------------------------------------------

@pytest.mark.parametrize("classes", [1, 3])
def test_class_weights_scale_each_pixel_by_its_class_and_divide_by_their_sum(classes):
    logits, target, kept = _logits_with_ignored_pixels(classes)
    weights = torch.tensor([0.5, 3.0] if classes == 1 else [0.5, 3.0, 1.5])
    if classes == 1:
        per_pixel = F.binary_cross_entropy_with_logits(logits[:, 0], target.clamp(min=0).float(), reduction="none")
        pixel_weights = weights[target.clamp(min=0)] * kept
        expected = (per_pixel * pixel_weights).sum() / pixel_weights.sum()
    else:
        expected = F.cross_entropy(logits, target, weight=weights, ignore_index=-1)
    ctx = LossContext(input=logits, fake=logits, real=logits, fake_logits=logits, target=target)
    loss = CrossEntropyLoss(class_weights=weights.tolist()).generator_loss(ctx)
    torch.testing.assert_close(loss, expected)
    _check_ignored_pixels_get_no_gradient(loss, logits, kept)
    focal = FocalLoss(gamma=0.0, class_weights=weights.tolist()).generator_loss(ctx)
    torch.testing.assert_close(focal, expected)  # focal at gamma 0 is the weighted cross-entropy
    alike = CrossEntropyLoss(class_weights=[2.0] * max(classes, 2)).generator_loss(ctx)
    torch.testing.assert_close(alike, CrossEntropyLoss().generator_loss(ctx))  # equal weights change nothing
    huge = CrossEntropyLoss(class_weights=(weights * 1e38).tolist()).generator_loss(ctx)
    torch.testing.assert_close(huge, expected)  # their sum over the pixels would overflow float32


@pytest.mark.parametrize("weights", [5, [1, -1], [0, 0], [1, True], [1, float("inf")], [1e39, 1], [[1, 2]], "balanced", [1e-50, 0]])
def test_class_weights_that_are_no_weights_are_refused(weights):
    import numpy as np

    assert CrossEntropyLoss(class_weights=np.array([0.5, 2.0], dtype=np.float32)).class_weights.tolist() == [0.5, 2.0]
    for objective in (CrossEntropyLoss, FocalLoss):
        with pytest.raises(OptionError, match=r"class_weights is one finite weight of 0 or more per class.*ce\.class_weights=|focal\.class_weights="):
            objective(class_weights=weights)


def test_class_weights_of_another_class_count_are_refused_naming_the_option(tmp_path):
    from helpers import write_segmentation

    from gantk.train import TrainConfig, Trainer

    with pytest.raises(OptionError, match=r"--loss-opt focal\.class_weights gives 2 weight\(s\), but the masks have 3 classes"):
        FocalLoss(class_weights=[1, 2]).check_classes(3)
    CrossEntropyLoss(class_weights=[1, 2, 3]).check_classes(3)
    with pytest.raises(ValueError, match="class_weights holds 2 weight"):
        cross_entropy_loss(*_logits_with_ignored_pixels(3)[:2], class_weights=torch.ones(2))
    assert "class_weights" not in CrossEntropyLoss(class_weights=[1, 2, 3]).state_dict()  # options, not weights: the config keeps them
    data = write_segmentation(tmp_path / "data", num_classes=2)
    config = TrainConfig(recipe="seg", data=str(data), out=str(tmp_path / "run"), loss="ce", disc="none", max_steps=1, workers=0,
                         load_size=36, crop_size=32, loss_opt={"ce": {"class_weights": [1, 2, 3]}})
    with pytest.raises(OptionError, match=r"ce\.class_weights gives 3 weight\(s\), but the masks have 2 classes"):
        Trainer(config, progress=False).fit()
    assert not (tmp_path / "run").exists()  # refused before the run directory is written


# --- r1 ---------------------------------------------------------------------------------------

def per_logit_r1(d, real, condition):
    """R1 of each logit of ``d``'s map (one backward per logit), averaged over the logits and the images."""
    x = real.clone().requires_grad_(True)
    logits = d(torch.cat([condition, x], 1))
    squares = [torch.autograd.grad(logits[:, :, i, j].sum(), x, retain_graph=True)[0].flatten(1).pow(2).sum(1)
               for i in range(logits.shape[2]) for j in range(logits.shape[3])]
    return 0.5 * torch.stack(squares).mean(0).mean()


def test_r1_is_half_the_squared_gradient_norm_of_each_logit_at_the_real_images_only():
    torch.manual_seed(0)
    condition, real = torch.randn(3, 2, 6, 6), torch.randn(3, 3, 6, 6)
    one_logit = nn.Sequential(nn.Conv2d(5, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 6))  # one logit per image
    torch.testing.assert_close(r1_penalty(one_logit, real, condition), per_logit_r1(one_logit, real, condition))  # exact
    patches = nn.Sequential(nn.Conv2d(5, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3))  # a 4x4 map
    draws = torch.stack([r1_penalty(patches, real, condition).detach() for _ in range(2000)])
    assert draws.std() > 0  # random signs: an estimate per draw ...
    assert draws.mean().item() == pytest.approx(per_logit_r1(patches, real, condition).item(), rel=0.05)  # ... of this mean
    penalty = r1_penalty(patches, real, condition)
    penalty.backward()  # a double backward: the penalty trains D (its weights: no bias moves its input gradient)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for name, p in patches.named_parameters() if name.endswith("weight"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert r1_penalty(patches, real, condition).dtype == torch.float32


def test_r1_warns_of_batch_norm_that_couples_the_images():
    d = nn.Sequential(nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2), nn.Conv2d(2, 1, 1))
    image = torch.randn(2, 3, 2, 2)
    ctx = LossContext(input=torch.zeros(2, 1, 2, 2), fake=image, real=image, discriminator=d)
    with pytest.warns(GantkWarning, match="r1 with batch norm in the discriminator"):
        R1Penalty().discriminator_loss(ctx)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        R1Penalty().discriminator_loss(LossContext(input=ctx.input[:1], fake=image[:1], real=image[:1], discriminator=d))


def test_r1_term_reads_the_condition_of_a_conditional_discriminator():
    d = nn.Conv2d(4, 1, 1, bias=False)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([10.0, 3.0, 4.0, 0.0]).view(1, 4, 1, 1))  # a steep condition weight, not penalised
    image = torch.zeros(2, 3, 2, 2)
    ctx = LossContext(input=torch.zeros(2, 1, 2, 2), fake=image, real=image, discriminator=d, conditional=True)
    # each of the 4 logits 3 x_1 + 4 x_2 of its pixel: a gradient of norm 5 whatever the signs
    assert R1Penalty().discriminator_loss(ctx).item() == pytest.approx(0.5 * 25)
    assert R1Penalty().generator_loss(ctx) is None and R1Penalty.default_weight == 10


def test_r1_needs_an_adversarial_term():
    with pytest.raises(SpecError, match="'r1' trains the discriminator, and the spec has no adversarial term to train it "
                                        r"with: add one \(bce, lsgan or hinge\), or drop 'r1'"):
        spec.ObjectiveSet.from_spec("l1+r1", OBJECTIVES)
    assert [t.name for t in spec.ObjectiveSet.from_spec("hinge+l1+r1@1", OBJECTIVES).terms] == ["hinge", "l1", "r1"]


# --- every registered objective -------------------------------------------------------------

def _segmentation_context():
    """One direction of a tiny system: 1x1-conv generators both ways and a conditional discriminator."""
    torch.manual_seed(0)
    g_ab, g_ba, disc = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1), nn.Conv2d(6, 1, 3, padding=1)
    input = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    real = F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    logits = g_ab(input)
    fake = logits.softmax(1)
    ctx = LossContext(
        input=input, fake=fake, real=real, fake_logits=logits, target=target, discriminator=disc,
        reconstruct=lambda: g_ba(fake), identity=lambda: g_ab(real),
    )
    return ctx


def test_lovasz_reads_the_logits_not_the_probabilities():
    ctx = _segmentation_context()
    loss = LovaszLoss().generator_loss(ctx)
    assert torch.equal(loss, lovasz_loss(ctx.fake_logits, ctx.target))
    assert not torch.allclose(loss, lovasz_loss(ctx.fake, ctx.target))


@pytest.mark.parametrize("name, distance", [("cycle", "l1"), ("cycle-l2", "l2"), ("identity", "l1"), ("identity-l2", "l2")])
def test_l2_variants_use_the_l2_distance(name, distance):
    ctx = _segmentation_context()
    expected = cycle_loss(ctx.reconstructed, ctx.input, distance) if name.startswith("cycle") else \
        identity_loss(ctx.identity_output, ctx.real, distance)
    assert torch.equal(OBJECTIVES.create(name).generator_loss(ctx), expected)


def test_builtins_are_registered():
    assert MASK_OBJECTIVES == ["ce", "focal", "lovasz"]
    expected = {"bce", "lsgan", "hinge", "l1", "l2", "ce", "focal", "lovasz", "cycle", "identity", "r1", "vgg"}
    assert expected <= set(OBJECTIVES.names())
    assert all(OBJECTIVES.get(name).plugin == "gantk.objectives" for name in expected)


MASK_OBJECTIVES = [name for name in OBJECTIVES.names() if OBJECTIVES.create(name).needs_masks]


class TestEveryImageObjective(ObjectiveConformance):  # vgg, which needs a weights file, has its own in test_perceptual.py
    @pytest.fixture(params=[name for name in OBJECTIVES.names() if name not in [*MASK_OBJECTIVES, "vgg"]])
    def component_name(self, request):
        return request.param


class TestEveryMaskObjective(ObjectiveConformance):
    masks = True

    @pytest.fixture(params=MASK_OBJECTIVES)
    def component_name(self, request):
        return request.param


class FeatureEnergy(Objective):
    """Mean magnitude of the discriminator's hidden features on the fake (a stand-in for feature matching)."""

    reads_discriminator_features = True

    def generator_loss(self, ctx):
        return sum(feature.abs().mean() for feature in ctx.d_fake_features[:-1])


class FeatureEnergyPlugin:
    @gantk.hookimpl
    def gantk_register_objectives(self, registry):
        registry.add("feature-energy", FeatureEnergy)


class TestAFeatureReadingObjective(ObjectiveConformance):
    """The kit's discriminator has features(x): a term that reads them passes as it is."""

    name = "feature-energy"
    plugins = [FeatureEnergyPlugin()]


def test_a_term_reading_discriminator_features_needs_an_adversarial_term():
    objectives = gantk.load_components(autoload=False, plugins=[FeatureEnergyPlugin()]).registry("objective")
    with pytest.raises(SpecError, match="'feature-energy' reads the features of the discriminator, and the spec has no adversarial "
                                        r"term to train it with: add one \(bce, lsgan or hinge\), or drop 'feature-energy'"):
        spec.ObjectiveSet.from_spec("l1+feature-energy", objectives)
    assert spec.ObjectiveSet.from_spec("hinge+l1+feature-energy", objectives).adversarial.name == "hinge"


def test_terms_read_float32_and_class_ids_stay_integers():
    half = torch.zeros(1, 3, 4, 4, dtype=torch.bfloat16)
    ctx = LossContext(input=half, fake=half, real=half, fake_logits=half, reconstruct=lambda: half, identity=lambda: half)
    read = [ctx.fake, ctx.real, ctx.fake_logits, ctx.target, ctx.reconstructed, ctx.identity_output]
    assert [value.dtype for value in read] == [torch.float32] * 6
    ids = torch.zeros(1, 4, 4, dtype=torch.long)
    assert LossContext(input=half, fake=half, real=half, target=ids).target.dtype == torch.long


@pytest.mark.parametrize("channels", [1, 3])
def test_mask_probabilities_are_float32_under_mixed_precision(channels):
    from gantk.systems import targets

    assert targets.probabilities(torch.zeros(1, channels, 2, 2, dtype=torch.bfloat16)).dtype == torch.float32


@pytest.mark.parametrize("discriminator, returned", [(nn.Conv2d(6, 1, 1), "Conv2d has none"),
                                                     (types.SimpleNamespace(features=lambda x: []), "returned a list")])
def test_reading_features_of_a_discriminator_without_them_is_explained(discriminator, returned):
    image = torch.zeros(1, 3, 4, 4)
    ctx = LossContext(input=image, fake=image, real=image, discriminator=discriminator)
    with pytest.raises(OptionError, match=returned):
        _ = ctx.d_fake_features


class Shaped(nn.Module):
    """A discriminator whose logits have the shape its ``make`` gives them."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def forward(self, x):
        return self.make(x)

    def features(self, x):  # maps ending with the logits, one list per scale for several
        logits = self.make(x)
        return [[scale] for scale in logits] if isinstance(logits, list) else [logits]


@pytest.mark.parametrize("make, got", [
    (lambda x: x.mean(1), "(2, 8, 8)"),
    (lambda x: x.mean((2, 3))[:, :1], "(2, 1)"),
    (lambda x: x[:1, :1], "(1, 1, 8, 8)"),
    (lambda x: [x[:, :1], x.mean(1)], "[(2, 1, 8, 8), (2, 8, 8)]"),
    (lambda x: x.mean().item(), "['float']"),
])
@pytest.mark.parametrize("read", ["d_real", "d_fake", "d_fake_features"])
def test_logits_that_are_not_n_x_1_x_h_x_w_maps_are_refused_naming_the_discriminator(make, got, read):
    ctx = LossContext(input=torch.zeros(2, 1, 8, 8), fake=torch.zeros(2, 3, 8, 8), real=torch.zeros(2, 3, 8, 8),
                      discriminator=Shaped(make))
    expected = (rf"^the features\(x\) of the discriminator Shaped end with {re.escape(got)} for an input of \(2, 4, 8, 8\); they "
                r"must end with the logits its forward returns, N x 1 x h x w" if read == "d_fake_features" else
                rf"^the discriminator Shaped returned {re.escape(got)} for an input of \(2, 4, 8, 8\); a discriminator returns "
                r"N x 1 x h x w logits")
    with pytest.raises(OptionError, match=expected):
        getattr(ctx, read)


def test_a_registered_discriminator_is_named_by_its_registered_name_and_plugin():
    class Plugin:
        @gantk.hookimpl
        def gantk_register_discriminators(self, registry):
            registry.add("flat", lambda in_channels=3: Shaped(lambda x: x.mean(1)))

    discriminator = gantk.load_components(autoload=False, plugins=[Plugin()]).create("discriminator", "flat", in_channels=4)
    ctx = LossContext(input=torch.zeros(2, 1, 8, 8), fake=torch.zeros(2, 3, 8, 8), real=torch.zeros(2, 3, 8, 8),
                      discriminator=torch.compile(discriminator))
    with pytest.raises(OptionError, match=r"^discriminator 'flat' \(plugin '[^']+'\) returned \(2, 8, 8\) for an input of"):
        _ = ctx.d_real


def test_a_wrapped_discriminator_is_named_by_the_network_it_wraps():
    ctx = LossContext(input=torch.zeros(2, 1, 8, 8), fake=torch.zeros(2, 3, 8, 8), real=torch.zeros(2, 3, 8, 8),
                      discriminator=nn.DataParallel(Shaped(lambda x: x.mean(1))))  # on the CPU it calls its module
    with pytest.raises(OptionError, match=r"^the discriminator Shaped returned \(2, 8, 8\)"):
        _ = ctx.d_real


def test_a_registered_discriminator_without_features_is_named_by_its_registered_name():
    class Plugin:
        @gantk.hookimpl
        def gantk_register_discriminators(self, registry):
            registry.add("plain", lambda in_channels=3: nn.Conv2d(in_channels, 1, 1))

    discriminator = gantk.load_components(autoload=False, plugins=[Plugin()]).create("discriminator", "plain", in_channels=6)
    image = torch.zeros(1, 3, 4, 4)
    ctx = LossContext(input=image, fake=image, real=image, discriminator=discriminator)
    with pytest.raises(OptionError, match=r"and discriminator 'plain' \(plugin '[^']+'\) has none: use a discriminator with features"):
        _ = ctx.d_fake_features

def test_logit_maps_of_each_scale_pass():
    ctx = LossContext(input=torch.zeros(2, 1, 8, 8), fake=torch.zeros(2, 3, 8, 8), real=torch.zeros(2, 3, 8, 8),
                      discriminator=Shaped(lambda x: [x[:, :1], x[:, :1, ::2, ::2]]))
    assert [tuple(m.shape) for m in ctx.d_fake] == [(2, 1, 8, 8), (2, 1, 4, 4)]
