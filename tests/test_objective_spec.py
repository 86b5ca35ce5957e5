"""Objective specs: parsing, default and explicit weights, building an ObjectiveSet, errors."""

import math

import pytest
import torch
from torch import nn

import gantk
from gantk import LossContext, Objective
from gantk.errors import GantkWarning, OptionError, SpecError
from gantk.objectives import BCEGANLoss, HingeGANLoss, ObjectiveSet, ObjectiveTerm, PixelL1Loss, parse_spec
from gantk.objectives.spec import GRAMMAR
from gantk.registry import Registry

OBJECTIVES = gantk.load_components(autoload=False).registry("objective")


class Scale(Objective):
    """An objective with a (frozen) parameter, to see it follow ``.to()``."""

    def __init__(self, trained: bool = False):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()), requires_grad=trained)

    def generator_loss(self, ctx):
        return self.scale * ctx.fake.mean()


def _registry_with(**extra) -> Registry:
    registry = Registry("objective")
    for name in OBJECTIVES.names():
        registry.add(name, OBJECTIVES.get(name).factory)
    for name, factory in extra.items():
        registry.add(name.replace("__", "."), factory)
    return registry


@pytest.mark.parametrize(
    "text, expected",
    [
        ("bce+l1", [("bce", None), ("l1", None)]),
        ("hinge+l1@0.5", [("hinge", None), ("l1", 0.5)]),
        ("lsgan+cycle@10+identity@5", [("lsgan", None), ("cycle", 10.0), ("identity", 5.0)]),
        ("l1@0.5+l2@0.5", [("l1", 0.5), ("l2", 0.5)]),
        ("lovasz", [("lovasz", None)]),
        ("  bce +\tl1 @ 100 ", [("bce", None), ("l1", 100.0)]),
        ("l1@1e-3+l2@1e+3+cycle@2E2+identity@.5", [("l1", 1e-3), ("l2", 1e3), ("cycle", 200.0), ("identity", 0.5)]),
        ("my-loss_v2.1@2", [("my-loss_v2.1", 2.0)]),
        ("l1@1E+3+l2@2E-2", [("l1", 1000.0), ("l2", 0.02)]),
    ],
)
def test_parse_spec(text, expected):
    assert parse_spec(text) == expected


@pytest.mark.parametrize(
    "text, weights",
    [
        ("bce+l1", {"bce": 1, "l1": 100}),
        ("bce+l2", {"bce": 1, "l2": 100}),
        ("lsgan+cycle+identity", {"lsgan": 1, "cycle": 10, "identity": 5}),
        ("hinge+l1@0.5", {"hinge": 1, "l1": 0.5}),
        ("lovasz", {"lovasz": 1}),
    ],
)
def test_default_and_explicit_weights(text, weights):
    objectives = ObjectiveSet.from_spec(text, OBJECTIVES)
    assert {term.name: term.weight for term in objectives.terms} == weights
    assert [term.name for term in objectives.terms] == list(weights)


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("bce+l1", "bce@1+l1@100"),
        (" lsgan + cycle + identity ", "lsgan@1+cycle@10+identity@5"),
        ("hinge+l1@0.5", "hinge@1+l1@0.5"),
        ("l1@1e-3+l2@0.1234567891", "l1@0.001+l2@0.1234567891"),
        ("l1@2.5e-07", "l1@2.5e-07"),
    ],
)
def test_canonical_spec_round_trips(text, canonical):
    objectives = ObjectiveSet.from_spec(text, OBJECTIVES)
    assert objectives.spec == canonical
    rebuilt = ObjectiveSet.from_spec(objectives.spec, OBJECTIVES)
    assert rebuilt.spec == canonical
    assert [(t.name, t.weight) for t in rebuilt.terms] == [(t.name, t.weight) for t in objectives.terms]
    assert parse_spec(canonical) == [(t.name, t.weight) for t in objectives.terms]


def test_adversarial_term_and_modules():
    objectives = ObjectiveSet.from_spec("l1+hinge", OBJECTIVES)
    assert objectives.adversarial.name == "hinge" and isinstance(objectives.adversarial.objective, HingeGANLoss)
    assert list(objectives.objectives) == ["l1", "hinge"]
    assert objectives.objectives["l1"] is objectives.terms[0].objective
    assert ObjectiveSet.from_spec("l1", OBJECTIVES).adversarial is None
    assert "hinge@1" in repr(ObjectiveSet.from_spec("hinge", OBJECTIVES))


def test_modules_follow_to_and_names_with_dots():
    objectives = ObjectiveSet.from_spec("my.scale@2+l1", _registry_with(my__scale=Scale))
    assert objectives.spec == "my.scale@2+l1@100"
    assert list(objectives.objectives) == ["my_scale", "l1"]
    assert len(list(objectives.parameters())) == 1
    objectives.to(torch.float64)
    assert objectives.terms[0].objective.scale.dtype == torch.float64


def test_an_objective_with_parameters_that_take_gradients_is_built(tmp_path):
    """Refused by the trainer, not here: a checkpoint trained with one still loads for translation."""
    objectives = ObjectiveSet.from_spec("my.scale+l1", _registry_with(my__scale=Scale), {"my.scale": {"trained": True}})
    assert objectives.terms[0].objective.scale.requires_grad


def test_options_reach_the_factories():
    objectives = ObjectiveSet.from_spec("bce+cycle", OBJECTIVES, {"bce": {"real_label": 0.9}, "cycle": {"distance": "l2"}})
    assert objectives.terms[0].objective.real_label == 0.9
    assert objectives.terms[1].objective.distance == "l2"


def test_option_errors():
    with pytest.raises(OptionError, match="'lsgan', which the objective spec 'bce\\+l1' does not use"):
        ObjectiveSet.from_spec("bce+l1", OBJECTIVES, {"lsgan": {"real_label": 0.9}})
    with pytest.raises(OptionError, match="no option 'smoothing'"):
        ObjectiveSet.from_spec("bce+l1", OBJECTIVES, {"bce": {"smoothing": 0.1}})


def _context():
    torch.manual_seed(0)
    fake = torch.randn(2, 1, 4, 4, requires_grad=True)
    return LossContext(
        input=torch.randn(2, 1, 4, 4), fake=fake, real=torch.randn(2, 1, 4, 4), discriminator=nn.Conv2d(2, 1, 3)
    )


def test_losses_are_weighted_and_keyed_by_name():
    objectives = ObjectiveSet.from_spec("bce@0.5+l1@10", OBJECTIVES)
    ctx = _context()
    g_losses = objectives.generator_losses(ctx)
    d_losses = objectives.discriminator_losses(ctx)
    assert list(g_losses) == ["bce", "l1"] and list(d_losses) == ["bce"]
    bce, l1 = BCEGANLoss(), PixelL1Loss()
    torch.testing.assert_close(g_losses["bce"], 0.5 * bce.generator_loss(ctx))
    torch.testing.assert_close(g_losses["l1"], 10 * l1.generator_loss(ctx))
    torch.testing.assert_close(d_losses["bce"], 0.5 * bce.discriminator_loss(ctx))
    assert ObjectiveSet.from_spec("l1", OBJECTIVES).discriminator_losses(ctx) == {}


def _assert_spec_error(text: str, fragment: str, registry=OBJECTIVES) -> None:
    with pytest.raises(SpecError) as error:
        ObjectiveSet.from_spec(text, registry)
    message = str(error.value)
    assert fragment in message
    assert repr(text) in message
    assert GRAMMAR in message
    assert "Known objectives: " + ", ".join(registry.names()) in message


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "the spec is empty"),
        ("   ", "the spec is empty"),
        ("bce+", "empty term"),
        ("+l1", "empty term"),
        ("bce++l1", "empty term"),
        ("bce+l1 x", "'l1 x' in term 'l1 x' is not a valid name"),
        ("bce+l1:100", "'l1:100' in term 'l1:100' is not a valid name (letters, digits, '-', '_', '.'). A weight follows '@': l1@100."),
        ("l1*0.5+bce", "is not a valid name (letters, digits, '-', '_', '.'). A weight follows '@': l1@0.5."),
        ("bce+l1 = 10", "A weight follows '@': l1@10."),
        ("l1*abc", "'l1*abc' in term 'l1*abc' is not a valid name (letters, digits, '-', '_', '.'). Expected"),
        ("bce+@2", "term '@2' has no name"),
        ("l1@abc", "weight 'abc' in term 'l1@abc' is not a number"),
        ("l1@", "term 'l1@' has no weight after '@'. Expected"),
        ("bce+l1@+5", "term 'l1@' has no weight after '@' (a '+' there starts the next term: write the weight without a sign)"),
        ("bce+l1@1e40", "weight '1e40' in term 'l1@1e40' is outside the range of the float32 numbers losses are computed in "
                        "(1.2e-38 to 3.4e+38)"),
        ("bce+l1@1e-50", "weight '1e-50' in term 'l1@1e-50' is outside the range of the float32"),
        ("l1@1_0", "weight '1_0' in term 'l1@1_0' is not a number"),
        ("l1@2@3", "weight '2@3' in term 'l1@2@3' is not a number"),
        ("l1@1e+bce", "weight '1e+bce' in term 'l1@1e+bce' is not a number"),
        ("l1@inf", "weight 'inf' in term 'l1@inf' is not finite"),
        ("bce+l1@nan", "weight 'nan' in term 'l1@nan' is not finite"),
        ("l1@0", "weight '0' in term 'l1@0' is not positive"),
        ("bce+l1@-100", "weight '-100' in term 'l1@-100' is not positive"),
        ("l1+bce+l1@2", "term 'l1' appears more than once"),
        ("bce+hinge+l1", "more than one adversarial term ('bce', 'hinge')"),
        ("bce+lovaz", "unknown objective 'lovaz'. Did you mean 'lovasz'?"),
        ("BCE+l1", "unknown objective 'BCE'. Did you mean 'bce'?"),
        ("bce+nothing_like_it", "unknown objective 'nothing_like_it'"),
    ],
)
def test_spec_errors(text, fragment):
    _assert_spec_error(text, fragment)


@pytest.mark.parametrize("text", ["bce+:100", "l1=nan", "l1:-5", "l1:0", "l1*=5", "l 1:100"])
def test_a_weight_hint_is_given_only_where_it_would_parse(text):
    with pytest.raises(SpecError) as error:
        ObjectiveSet.from_spec(text, OBJECTIVES)
    assert str(error.value).startswith(f"invalid objective spec (--loss) {text!r}: ")
    assert "A weight follows '@'" not in str(error.value)


def test_module_key_clash_is_a_spec_error():
    registry = _registry_with(my__loss=Scale, my_loss=Scale)
    _assert_spec_error("my.loss+my_loss", "terms 'my.loss', 'my_loss' clash", registry)


def test_parse_spec_without_known_names():
    with pytest.raises(SpecError) as error:
        parse_spec("l1@0")
    assert GRAMMAR in str(error.value) and "Known objectives" not in str(error.value)


def test_factory_must_build_an_objective():
    with pytest.raises(OptionError, match="'odd' .plugin '.'. was built as a Identity, not a gantk.Objective"):
        ObjectiveSet.from_spec("odd", _registry_with(odd=lambda: nn.Identity()))


def test_an_adversarial_term_needs_a_discriminator_loss():
    class GeneratorSideOnly(Scale):
        adversarial = True

    with pytest.raises(OptionError, match="objective 'rsgan' .plugin '.'. is adversarial but has no discriminator_loss, so the "
                                          "discriminator would never train: override discriminator_loss"):
        ObjectiveSet.from_spec("rsgan+l1", _registry_with(rsgan=GeneratorSideOnly))


class Weightless(Scale):
    """An objective whose default weight no spec can use."""

    default_weight = 0.0


class PerPixel(Scale):
    """An objective that forgets to reduce its loss."""

    def generator_loss(self, ctx):
        return ctx.fake


def test_a_default_weight_of_zero_needs_a_weight_in_the_spec():
    registry = _registry_with(weightless=Weightless)
    with pytest.raises(OptionError, match="'weightless' .* default_weight 0.0.*weightless@W"):
        ObjectiveSet.from_spec("l1+weightless", registry)
    assert ObjectiveSet.from_spec("l1+weightless@2", registry).spec == "l1@100+weightless@2"
    truthy = _registry_with(truthy=type("Truthy", (Scale,), {"__doc__": "Weight True.", "default_weight": True}))
    with pytest.raises(OptionError, match="'truthy' .* default_weight True.*truthy@W"):  # a bool is no weight
        ObjectiveSet.from_spec("truthy", truthy)


class OneElement(Objective):
    """An objective whose loss keeps a dimension of one element."""

    def generator_loss(self, ctx):
        return ctx.fake.mean()[None]


def test_a_loss_that_is_not_a_scalar_is_named():
    objectives = ObjectiveSet.from_spec("per-pixel+one", _registry_with(**{"per-pixel": PerPixel, "one": OneElement}))
    ctx = LossContext(input=torch.zeros(1, 1, 4, 4), fake=torch.zeros(1, 3, 4, 4), real=torch.zeros(1, 3, 4, 4))
    with pytest.raises(OptionError, match="'per-pixel' \\(plugin '\\?'\\) returned a tensor of shape \\(1, 3, 4, 4\\) from generator_loss"):
        objectives.generator_losses(ctx)
    with pytest.raises(OptionError, match=r"'one' \(plugin '.*'\) returned a tensor of shape \(1,\) from generator_loss; a loss must "
                                          r"be a scalar tensor: reduce it \(with .mean\(\), say\)"):
        ObjectiveSet(objectives.terms[1:]).generator_losses(ctx)


class ZeroesTheTarget(Scale):
    """An objective that changes a tensor of the context in place."""

    def generator_loss(self, ctx):
        ctx.real.mul_(0)
        return ctx.fake.mean()


class Raises(Scale):
    def generator_loss(self, ctx):
        raise ZeroDivisionError("boom")


def test_a_term_that_changes_the_context_in_place_or_raises_is_named():
    objectives = ObjectiveSet.from_spec("zero+l1", _registry_with(zero=ZeroesTheTarget, boom=Raises))
    ctx = _context()
    real = ctx.real.clone()
    with pytest.raises(OptionError, match=r"objective 'zero' \(plugin '\?'\) changed the context's real, target in place in "
                                          r"generator_loss \(itself, or a network it ran, such as the discriminator\), which the other terms "
                                          r"read: compute on a copy \(such as ctx.real.clone\(\)\)"):
        objectives.generator_losses(ctx)
    assert not torch.equal(ctx.real, real)  # what the check caught
    with torch.inference_mode():  # inference tensors keep no version counter: nothing to check
        ObjectiveSet.from_spec("l1", OBJECTIVES).generator_losses(_context())
    with pytest.raises(ZeroDivisionError, match="boom") as raised:
        ObjectiveSet.from_spec("l1+boom", _registry_with(boom=Raises)).generator_losses(_context())
    assert raised.value.__notes__ == ["(raised in generator_loss of objective 'boom', plugin '?')"]


def test_a_loss_in_half_precision_is_warned_of():
    class Rounded(Scale):
        def generator_loss(self, ctx):
            return ctx.fake.mean().to(torch.bfloat16)

    objectives = ObjectiveSet.from_spec("rounded+l1", _registry_with(rounded=Rounded))
    with pytest.warns(GantkWarning, match=r"objective 'rounded' \(plugin '\?'\) gives its generator_loss as torch.bfloat16, "
                                          r"rounded to that precision: compute it on float32 values"):
        objectives.generator_losses(_context())


def test_an_objective_without_a_loss_is_refused():
    class Idle(Objective):
        """Overrides neither loss."""

    with pytest.raises(OptionError, match=r"objective 'idle' \(plugin '\?'\) overrides neither generator_loss nor "
                                          r"discriminator_loss, so it would take part in no step"):
        ObjectiveSet.from_spec("bce+l1+idle", _registry_with(idle=Idle))


def test_constructor_checks_terms():
    assert ObjectiveSet([("bce", 2.0, BCEGANLoss()), ObjectiveTerm("l1", 1.0, PixelL1Loss())]).spec == "bce@2+l1@1"
    with pytest.raises(SpecError, match="at least one term"):
        ObjectiveSet([])
    for weight in (0.0, math.inf):
        with pytest.raises(SpecError, match="'l1' are not positive and finite"):
            ObjectiveSet([("l1", weight, PixelL1Loss())])
    with pytest.raises(SpecError, match="more than one adversarial"):
        ObjectiveSet([("bce", 1.0, BCEGANLoss()), ("hinge", 1.0, HingeGANLoss())])


@pytest.mark.parametrize("name", ["l1", "l2", "hinge"])
def test_an_objective_without_options_names_an_unknown_one(name):
    with pytest.raises(OptionError, match=f"objective '{name}' has no option 'foo'; its options \\(set with --loss-opt NAME.KEY=VALUE\\) are: \\(none\\)"):
        ObjectiveSet.from_spec(name, gantk.default_components().registry("objective"), {name: {"foo": 1}})


def test_a_spec_is_built_from_the_installed_objectives_by_default():
    objectives = ObjectiveSet.from_spec("hinge+l1@50", options={"l1": {}})
    assert objectives.spec == "hinge@1+l1@50" and objectives.adversarial.name == "hinge"


@pytest.mark.parametrize("name", ["train", "float", "cuda", "type", "training", "_modules"])
def test_a_term_named_as_a_module_attribute_takes_part(name):
    class Plugin:
        @gantk.hookimpl
        def gantk_register_objectives(self, registry):
            registry.add(name, PixelL1Loss)

    objectives = gantk.load_components(autoload=False, plugins=[Plugin()]).registry("objective")
    terms = ObjectiveSet.from_spec(f"bce+{name}", objectives)
    assert [t.name for t in terms.terms] == ["bce", name] and callable(terms.train)


def test_from_spec_takes_components_and_names_arguments_of_the_wrong_kind():
    from gantk import load_components

    components = load_components(autoload=False)
    assert ObjectiveSet.from_spec("bce+l1", components).spec == ObjectiveSet.from_spec("bce+l1").spec
    with pytest.raises(SpecError, match=r"an objective spec is text such as 'bce\+l1@100', got \['bce', 'l1'\]"):
        ObjectiveSet.from_spec(["bce", "l1"], components)
    with pytest.raises(OptionError, match=r"options are given per term as tables, .* those of 'bce' are not: 0.9"):
        ObjectiveSet.from_spec("bce+l1", components, options={"bce": 0.9})
