"""Conformance tests for gantk components (needs pytest): subclass a base in your plugin's tests.

Set ``name`` (the registered name), ``options`` (small sizes keep the tests fast) and
``plugins`` (plugin objects or module names given to ``gantk.load_components(autoload=False,
plugins=...)``); the base's tests then run against your component::

    # tests/test_my_plugin.py
    import torch
    from gantk.data import write_png
    from gantk.testing import (DataFormatConformance, DiscriminatorConformance, GeneratorConformance,
                               ObjectiveConformance, SystemConformance)

    class TestMyGenerator(GeneratorConformance):
        name = "my-unet"
        options = {"ngf": 8}
        plugins = ["my_package.plugin"]

    class TestMyDiscriminator(DiscriminatorConformance):
        name = "my-patch"
        plugins = ["my_package.plugin"]

    class TestMyMaskLoss(ObjectiveConformance):
        name = "my-dice"
        masks = True  # the context holds mask logits and class ids instead of images
        plugins = ["my_package.plugin"]

    class TestMyRecipe(SystemConformance):
        name = "my-recipe"  # a recipe: its system is built, stepped, and trained a few steps
        options = {"clip": 0.05}  # the recipe's own (--recipe-opt)
        plugins = ["my_package.plugin"]

    class TestMyFormat(DataFormatConformance):
        name = "my-format"  # a data format: a sample of its layout is detected, checked and read
        plugins = ["my_package.plugin"]

        def write_sample(self, root):  # a few small images in the format's layout, in two splits
            for split in ("train", "test"):
                for i in range(3):
                    write_png(torch.rand(3, 32, 32) * 2 - 1, root / split / f"{i}_in.png")
                    write_png(torch.rand(3, 32, 32) * 2 - 1, root / split / f"{i}_out.png")

To test several components with one class, override the ``component_name`` fixture (e.g. with
``params=``) and ``component_options``; to build the registries yourself, override
``components``.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, ClassVar, Mapping, Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import default_collate

from .data import GanDataset, check_dataset, detect_format, get_format, open_dataset, write_png
from .data.datasets import UnpairedSplit
from .data.formats import DataFormat
from .data.layout import ROOT_SPLIT
from .data.transforms import normalize_image
from .discriminators.patch import PatchDiscriminator
from .errors import DataError, GantkError, OptionError
from .nn import size_rules
from .objectives.base import LossContext, Objective
from .plugins import Components, load_components
from .recipes.base import Recipe
from .option_values import plain, storable
from .systems.base import System, check_phases, frozen_networks, in_float32
from .torchrun import ProcessInfo
from .train import checkpoint as ckpt
from .train.config import TrainConfig
from .train.logs import save_sample_grid
from .train.resolve import fit_generator_depth, resolve_config


class _Conformance:
    kind: ClassVar[str]
    name: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}
    plugins: ClassVar[Sequence[Any]] = ()

    @pytest.fixture(scope="class")
    @classmethod
    def components(cls) -> Components:
        components = load_components(autoload=False, plugins=cls.plugins)
        assert not components.failures, "plugins failed to load: " + "; ".join(map(str, components.failures))
        name = getattr(cls, "name", None)
        if name is not None and name not in components.registry(cls.kind):
            pytest.fail(f"{cls.kind} '{name}' is not registered by the built-ins or the test class's plugins "
                        f"({', '.join(map(str, cls.plugins)) or 'none'}): the kit loads no installed entry point; "
                        "set plugins = [\"your_package.plugin\"] (the module or object with the hooks).")
        return components

    @pytest.fixture
    def component_name(self) -> str:
        return self.name

    @pytest.fixture
    def component_options(self) -> dict[str, Any]:
        return dict(self.options)

    def build(self, components: Components, name: str, options: dict[str, Any], **channels: int) -> nn.Module:
        return components.create(self.kind, name, **{**options, **channels})

    def test_factory_has_defaults_and_summary(self, components: Components, component_name: str) -> None:
        entry = components.registry(self.kind).get(component_name)
        required = entry.required_options()
        assert not required, f"options without a default: {required}"
        assert entry.summary, "the factory needs a docstring whose first line summarises it"


def _assert_gradients_reach_parameters(module: nn.Module) -> None:
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached: {missing}"
    bad = [n for n, p in module.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"


def _loss_text(loss: Tensor) -> str:
    return f"a tensor of shape {tuple(loss.shape)}" if loss.dim() else f"{loss.item()}"


def _check_loss(loss: Any, step: str) -> None:
    """``loss`` is what training takes from an objective's ``step`` loss: a finite scalar tensor that gradients reach."""
    assert isinstance(loss, Tensor), f"the {step} loss is a {type(loss).__name__}: return a tensor computed from the context"
    assert loss.dim() == 0 and torch.isfinite(loss), f"expected a finite scalar {step} loss, got {_loss_text(loss)}"
    assert loss.requires_grad, (f"no gradient reaches the {step} loss: compute it from the networks' outputs in the "
                                "context (ctx.fake, ctx.d_fake, ...), or return None to take no part in that step")


def _random_projection(out: Tensor | Sequence[Tensor]) -> Tensor:
    """A scalar that depends on every output element with random signs (so nothing cancels)."""
    outs = [out] if isinstance(out, Tensor) else list(out)
    return sum((o * torch.randn_like(o)).sum() for o in outs)


def _check_takes_its_smallest_size(model: nn.Module, channels: int, batch_size: int) -> None:
    """``model`` runs in training mode on the smallest square input its ``size_multiple`` and
    ``min_input_size`` allow, which the trainer lets users train at."""
    multiple, smallest = size_rules([model])
    side = -(-smallest // multiple) * multiple
    try:
        out = model.train()(torch.randn(batch_size, channels, side, side))
    except Exception as error:
        pytest.fail(
            f"a {side}x{side} input, the smallest its size_multiple ({multiple}) and min_input_size ({smallest}) allow, "
            f"fails: {type(error).__name__}: {error}; set min_input_size to the smallest side it takes "
            "(gantk.nn.geometry.min_input_side(windows(model)) gives it for a chain of convolutions)"
        )
    assert all(torch.isfinite(o).all() for o in ([out] if isinstance(out, Tensor) else out)), f"non-finite outputs for a {side}x{side} input"


def _check_state_dict_rebuilds(build: Callable[[], nn.Module], inputs: Tensor) -> None:
    """A network built under another seed and given ``build()``'s ``state_dict`` computes the same in eval
    mode: everything that decides its outputs is in its state (what a checkpoint holds)."""
    torch.manual_seed(0)
    model = build().eval()
    torch.manual_seed(1)
    rebuilt = build().eval()
    rebuilt.load_state_dict(model.state_dict())
    with torch.no_grad():
        outputs = [network(inputs) for network in (model, rebuilt)]
    torch.testing.assert_close(*outputs, msg=lambda text: (
        "a copy built under another seed and loaded with its state_dict computes otherwise, so a checkpoint would not "
        f"rebuild it: keep what its outputs depend on in parameters or persistent buffers ({text})"))


class GeneratorConformance(_Conformance):
    """Tests every generator must pass: shapes, sizes, gradients, documented defaults, and (for
    generators with a ``final_activation`` option, which mask training needs) raw logits.

    Sizes are multiples of the module's ``size_multiple`` (1 if absent) of at least ``min_size`` and its ``min_input_size``.
    """

    kind = "generator"
    min_size: ClassVar[int] = 32
    batch_size: ClassVar[int] = 2

    def sizes(self, module: nn.Module) -> list[tuple[int, int]]:
        """A square size and a wider one, both allowed by ``size_multiple`` and ``min_input_size``."""
        multiple = getattr(module, "size_multiple", 1)
        smallest = max(self.min_size, getattr(module, "min_input_size", 1))
        side = -(-smallest // multiple) * multiple
        return [(side, side), (side, side + multiple)]

    def test_size_multiple_is_a_positive_int(self, components, component_name, component_options):
        multiple = getattr(self.build(components, component_name, component_options), "size_multiple", 1)
        assert isinstance(multiple, int) and multiple >= 1, f"size_multiple must be a positive int, got {multiple!r}"

    @pytest.mark.parametrize("in_channels, out_channels", [(3, 3), (1, 3), (3, 1), (4, 2)])
    def test_output_shape(self, components, component_name, component_options, in_channels, out_channels):
        channels = {"in_channels": in_channels, "out_channels": out_channels}
        model = self.build(components, component_name, component_options, **channels)
        for h, w in self.sizes(model):
            with torch.no_grad():
                y = model(torch.randn(self.batch_size, in_channels, h, w))
            expected = (self.batch_size, out_channels, h, w)
            assert y.shape == expected, f"returned {tuple(y.shape)} for a {(self.batch_size, in_channels, h, w)} input, expected {expected}"
            assert torch.isfinite(y).all(), f"non-finite outputs for a {h}x{w} input"

    def test_gradients_reach_every_parameter(self, components, component_name, component_options):
        model = self.build(components, component_name, component_options, in_channels=3)
        h, w = self.sizes(model)[0]
        _random_projection(model(torch.randn(self.batch_size, 3, h, w))).backward()
        _assert_gradients_reach_parameters(model)

    def test_outputs_depend_on_the_input(self, components, component_name, component_options):
        model = self.build(components, component_name, component_options, in_channels=3)
        h, w = self.sizes(model)[0]
        inputs = torch.randn(self.batch_size, 3, h, w, requires_grad=True)
        _random_projection(model(inputs)).backward()
        assert inputs.grad is not None and inputs.grad.abs().sum() > 0, "its outputs do not depend on its input"

    def test_final_activation_none_gives_the_logits_under_its_tanh(self, components, component_name, component_options):
        """What mask training (``--recipe seg``) needs: ``final_activation="none"`` for raw logits."""
        entry = components.registry("generator").get(component_name)
        if not entry.takes_option("final_activation"):
            pytest.skip("no final_activation option: this generator cannot output mask logits (--recipe seg)")
        outputs = {}
        for activation in ("tanh", "none"):
            torch.manual_seed(0)
            model = self.build(components, component_name, {**component_options, "final_activation": activation}, in_channels=3)
            h, w = self.sizes(model)[0]
            torch.manual_seed(1)
            with torch.no_grad():
                outputs[activation] = model.eval()(torch.randn(self.batch_size, 3, h, w))
        torch.testing.assert_close(torch.tanh(outputs["none"]), outputs["tanh"], msg="final_activation='tanh' is not tanh of 'none'")

    def test_takes_its_smallest_size(self, components, component_name, component_options):
        _check_takes_its_smallest_size(self.build(components, component_name, component_options, in_channels=3), 3, self.batch_size)

    def test_its_state_dict_rebuilds_it(self, components, component_name, component_options):
        build = functools.partial(self.build, components, component_name, component_options, in_channels=3)
        h, w = self.sizes(build())[0]
        _check_state_dict_rebuilds(build, torch.randn(self.batch_size, 3, h, w))

    def test_rejects_a_size_it_cannot_take(self, components, component_name, component_options):
        model = self.build(components, component_name, component_options, in_channels=3)
        multiple = getattr(model, "size_multiple", 1)
        if multiple == 1:
            pytest.skip("takes any size")
        h, w = self.sizes(model)[0]
        with pytest.raises(GantkError, match=str(multiple)):
            model(torch.randn(self.batch_size, 3, h + multiple // 2, w))


class DiscriminatorConformance(_Conformance):
    """Tests every discriminator must pass: logit shapes, ``receptive_field``, ``features``, gradients."""

    kind = "discriminator"
    input_sizes: ClassVar[Sequence[tuple[int, int]]] = ((128, 128), (96, 160))
    batch_size: ClassVar[int] = 2

    def test_receptive_field_attribute(self, components, component_name, component_options):
        model = self.build(components, component_name, component_options)
        assert hasattr(model, "receptive_field"), (
            f"{type(model).__name__} has no receptive_field attribute: set it to the patch size in pixels, or None (whole image)"
        )
        field = model.receptive_field
        assert field is None or (type(field) is int and field >= 1), f"receptive_field must be None (whole image) or a positive int, got {field!r}"

    @pytest.mark.parametrize("in_channels", [1, 3, 6])
    def test_outputs_logit_maps(self, components, component_name, component_options, in_channels):
        model = self.build(components, component_name, component_options, in_channels=in_channels)
        for h, w in self.input_sizes:
            with torch.no_grad():
                out = model(torch.randn(self.batch_size, in_channels, h, w))
            for logits in [out] if isinstance(out, Tensor) else out:
                assert logits.dim() == 4 and logits.shape[:2] == (self.batch_size, 1), (
                    f"returned logits of shape {tuple(logits.shape)} for a {(self.batch_size, in_channels, h, w)} input, "
                    f"expected a map ({self.batch_size}, 1, H', W')"
                )
                assert torch.isfinite(logits).all(), f"non-finite logits for a {h}x{w} input"

    def test_features_end_with_the_logits(self, components, component_name, component_options):
        model = self.build(components, component_name, component_options, in_channels=6).eval()
        if not hasattr(model, "features"):
            pytest.skip("no features()")
        x = torch.randn(self.batch_size, 6, *self.input_sizes[0])
        with torch.no_grad():
            features, logits = model.features(x), model(x)
        assert isinstance(features, list) and all(isinstance(f, Tensor) for f in features), (
            f"features(x) returned {type(features).__name__}; it must return the list of feature maps ending with the logits"
        )
        torch.testing.assert_close(features[-1], logits, msg=lambda text: f"features(x) must end with the logits forward returns: {text}")

    def test_takes_its_smallest_size(self, components, component_name, component_options):
        _check_takes_its_smallest_size(self.build(components, component_name, component_options, in_channels=6), 6, self.batch_size)

    def test_its_state_dict_rebuilds_it(self, components, component_name, component_options):
        build = functools.partial(self.build, components, component_name, component_options, in_channels=6)
        _check_state_dict_rebuilds(build, torch.randn(self.batch_size, 6, *self.input_sizes[0]))

    def test_gradients_reach_every_parameter(self, components, component_name, component_options):
        model = self.build(components, component_name, component_options, in_channels=6)
        _random_projection(model(torch.randn(self.batch_size, 6, *self.input_sizes[0]))).backward()
        _assert_gradients_reach_parameters(model)


class ObjectiveConformance(_Conformance):
    """Tests every objective must pass on a small hand-made ``LossContext``.

    The context is conditional, with a one-layer generator and reverse generator and a 16 px
    PatchGAN discriminator (with ``features``). Set ``masks = True`` for objectives on segmentation masks: the generator then
    gives ``classes`` logits, ``fake`` holds their softmax, ``real`` one-hot masks and ``target``
    class ids. Override ``make_context`` for anything else.
    """

    kind = "objective"
    masks: ClassVar[bool] = False
    classes: ClassVar[int] = 3
    size: ClassVar[int] = 16

    @pytest.fixture
    def objective(self, components, component_name, component_options) -> Objective:
        objective = components.create("objective", component_name, **component_options)
        objective.prepare()  # as the trainer does before training
        return objective

    @pytest.fixture
    def networks(self) -> dict[str, nn.Module]:
        torch.manual_seed(0)
        out = self.classes if self.masks else 3
        return {
            "generator": nn.Conv2d(3, out, 3, padding=1),
            "reverse": nn.Conv2d(out, 3, 3, padding=1),
            # a 16 px PatchGAN: its features(x) serve terms that read them
            "discriminator": PatchDiscriminator(3 + out, ndf=4, n_layers=1, norm="none"),
        }

    def make_context(self, generator: nn.Module, reverse: nn.Module, discriminator: nn.Module) -> LossContext:
        """A conditional ``LossContext`` for a batch of two ``size x size`` images."""
        input = torch.rand(2, 3, self.size, self.size) * 2 - 1
        if self.masks:
            target = torch.randint(0, self.classes, (2, self.size, self.size))
            logits = generator(input)
            real = F.one_hot(target, self.classes).permute(0, 3, 1, 2).float()
            return LossContext(
                input=input,
                fake=logits.float().softmax(1),
                real=real,
                fake_logits=logits,
                target=target,
                discriminator=discriminator,
                progress=torch.tensor(0.5),
            )
        real = torch.rand(2, 3, self.size, self.size) * 2 - 1
        fake = torch.tanh(generator(input))
        return LossContext(
            input=input,
            fake=fake,
            real=real,
            discriminator=discriminator,
            reconstruct=lambda: torch.tanh(reverse(fake)),
            identity=lambda: torch.tanh(generator(real)),
            progress=torch.tensor(0.5),  # half of training done
        )

    def test_is_an_objective(self, objective):
        assert isinstance(objective, Objective), f"the factory returned {type(objective).__name__}, not a gantk.Objective"
        assert isinstance(objective.adversarial, bool), "adversarial must be True or False"
        weight = objective.default_weight
        assert isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight) and weight > 0, (
            f"default_weight must be a finite number > 0 (a spec can use no other), got {weight!r}"
        )

    def test_has_no_parameters_to_train(self, objective):
        trained = [name for name, param in objective.named_parameters() if param.requires_grad]
        assert not trained, (f"parameters {', '.join(trained)} take gradients, but no optimizer updates an objective's: "
                             "freeze them (requires_grad_(False)); training refuses them")

    def test_takes_part_in_a_step(self, objective, networks):
        ctx = self.make_context(**networks)
        taking_part = objective.generator_loss(ctx) is not None or objective.discriminator_loss(ctx) is not None
        assert taking_part, "generator_loss and discriminator_loss both return None: override at least one"

    def test_generator_loss_is_a_finite_scalar_that_trains_the_generator(self, objective, networks):
        loss = objective.generator_loss(self.make_context(**networks))
        if loss is None:
            pytest.skip("no generator term")
        _check_loss(loss, "generator")
        loss.backward()
        generators = [*networks["generator"].parameters(), *networks["reverse"].parameters()]
        reached = any(p.grad is not None and p.grad.abs().sum() > 0 for p in generators)
        assert reached, "no gradient reaches the generators"

    def test_discriminator_loss_is_a_finite_scalar_that_leaves_the_generator_alone(self, objective, networks):
        loss = objective.discriminator_loss(self.make_context(**networks))
        if loss is None:
            pytest.skip("no discriminator term")
        _check_loss(loss, "discriminator")
        loss.backward()
        assert any(p.grad is not None for p in networks["discriminator"].parameters())
        untouched = all(p.grad is None for p in networks["generator"].parameters())
        assert untouched, "the discriminator loss trains the generator: use ctx.d_fake_detached"

    def test_losses_are_float32_under_mixed_precision(self, objective, networks):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ctx = self.make_context(**networks)
            losses = {"generator": objective.generator_loss(ctx), "discriminator": objective.discriminator_loss(ctx)}
        for step, loss in losses.items():
            assert loss is None or loss.dtype == torch.float32, (
                f"the {step} loss is {loss.dtype} under bf16 autocast: ctx's tensors are float32, but operations on them "
                "still autocast (a convolution gives bf16): compute under torch.autocast(device_type, enabled=False), "
                "or cast the result with .float()"
            )

    def test_accepts_a_multiscale_discriminator(self, objective, networks):
        if not objective.adversarial:
            pytest.skip("not adversarial")
        single = networks["discriminator"]
        networks["discriminator"] = lambda x: [single(x), single(F.avg_pool2d(x, 2))]
        ctx = self.make_context(**networks)
        for step in ("generator", "discriminator"):
            try:
                loss = getattr(objective, f"{step}_loss")(ctx)
            except Exception as error:
                pytest.fail(f"the {step} loss fails on a multi-scale discriminator's logits, a list of maps (one per scale): "
                            f"{type(error).__name__}: {error}; average the term over the maps when ctx.d_real/d_fake is a list")
            assert loss is None or (loss.dim() == 0 and torch.isfinite(loss)), f"the {step} loss is not a finite scalar for a list of maps"


class SystemConformance(_Conformance):
    """Tests every recipe's system must pass, built as ``gantk train`` builds it: phases that can be
    trained; a step whose losses are finite scalars that reach each phase's networks and no
    others; sample rows and translations of the batch's size in [-1, 1]; weights that rebuild
    the same model from a checkpoint's description; and, where the system takes ``--disc-augment``,
    discriminators that see every input augmented.

    ``options`` are the recipe's own (``--recipe-opt``); ``settings`` other training settings
    (``TrainConfig`` keys; the demo's narrow networks unless set). The data have the ``channels``
    given, and B is masks of ``num_classes`` classes when it is set. Override ``make_batch`` for a
    system that needs more than ``A`` and ``B``. Besides one step's parts, the kit runs a few steps
    of the trainer itself, in fp32 and under bf16 autocast, with each phase on its schedule (``every``).
    """

    kind = "recipe"
    settings: ClassVar[dict[str, Any]] = {}
    channels: ClassVar[dict[str, int]] = {"A": 3, "B": 3}
    num_classes: ClassVar[int | None] = None
    directions: ClassVar[Sequence[str]] = ("AtoB",)  # what translate() takes
    size: ClassVar[int] = 32
    batch_size: ClassVar[int] = 2

    def train_config(self, component_name: str, component_options: dict[str, Any], **fixed: Any) -> TrainConfig:
        """The training settings the kit runs with: ``settings`` on the demo's, then ``fixed``."""
        sides = {"load_size": self.size, "crop_size": self.size, "batch_size": self.batch_size}
        return TrainConfig(recipe=component_name, recipe_opt=component_options).merged({**sides, **self.settings, **fixed})

    @pytest.fixture
    def config(self, components, component_name, component_options) -> dict[str, Any]:
        """The system's configuration, as a checkpoint records it."""
        settings = self.train_config(component_name, component_options)
        resolved = fit_generator_depth(resolve_config(settings, components), components)
        return ckpt.system_config(resolved, self.data(), components)

    def data(self) -> SimpleNamespace:
        """What the system learns of the dataset: its channels (a mask side has one per class), classes and format."""
        channels = dict(self.channels) if self.num_classes is None else {**self.channels, "B": self.num_classes}
        data_format = "segmentation" if self.num_classes is not None else "unaligned" if "BtoA" in self.directions else "aligned"
        return SimpleNamespace(channels=channels, num_classes=self.num_classes, format=data_format)

    @pytest.fixture
    def system(self, components, config) -> System:
        torch.manual_seed(0)
        return ckpt.system_from_config(config, components)

    def make_batch(self) -> dict[str, Tensor]:
        """A training batch: ``A`` images in [-1, 1], ``B`` images or class ids (``N x H x W``)."""
        generator = torch.Generator().manual_seed(0)
        shape = (self.batch_size, self.size, self.size)

        def images(channels: int) -> Tensor:
            return torch.rand(shape[0], channels, *shape[1:], generator=generator) * 2 - 1

        target = images(self.channels["B"]) if self.num_classes is None else torch.randint(self.num_classes, shape, generator=generator)
        return {"A": images(self.channels["A"]), "B": target}

    def test_recipe_and_its_options(self, components, component_name):
        recipe = components.create("recipe", component_name)
        assert isinstance(recipe, Recipe), f"the factory returned {type(recipe).__name__}, not a gantk.recipes.base.Recipe"
        assert issubclass(recipe.system, System), f"{recipe.system!r} is not a gantk.systems.base.System"
        unstorable = {key: value for key, value in recipe.options.items() if not storable(plain(value))}
        assert not unstorable, f"option defaults a checkpoint cannot hold (only numbers, text, true/false, none, lists, tables): {unstorable}"
        try:
            TrainConfig().merged(recipe.defaults)
        except GantkError as error:
            pytest.fail(f"recipe defaults that are not settings' values: {error}")

    def test_phases_can_be_trained(self, system, component_name):
        check_phases(system, component_name)

    def test_a_step_trains_each_phase_networks_and_no_others(self, system):
        batch, nets = self.make_batch(), dict(system.networks.items())
        outputs = system(batch, nets)
        assert isinstance(outputs, Mapping), f"forward returned {type(outputs).__name__}, not a dict of outputs"
        for phase in system.phases:
            system.zero_grad(set_to_none=True)
            with frozen_networks(system.networks[name] for name in phase.frozen):
                losses = system.phase_losses(phase, batch, outputs, nets)
                assert losses, f"phase {phase.name} has no loss terms"
                for key, loss in losses.items():
                    assert loss.dim() == 0 and torch.isfinite(loss), f"phase {phase.name}, {key}: expected a finite scalar, got {_loss_text(loss)}"
                sum(losses.values()).backward()
            for name, net in system.networks.items():
                reached = any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
                if name in phase.trains:
                    assert reached, f"no gradient of phase {phase.name} reaches {name}, which it trains"
                else:
                    assert not reached, f"phase {phase.name} back-propagates into {name}, which it does not train (detach it)"
            with torch.no_grad():
                system.after_optimizer_step(phase)
            system.update_averages(phase)

    @pytest.mark.parametrize("precision", ["fp32", "bf16"])
    def test_the_trainer_steps_each_phase_on_its_schedule(self, components, component_name, component_options, precision):
        from .train.trainer import Trainer  # loaded here: the trainer pulls in the metrics' libraries

        cpu = torch.device("cpu")
        trainer = Trainer(self.train_config(component_name, component_options, device="cpu", precision=precision),
                          components=components, progress=False)
        with torch.random.fork_rng():
            try:
                system = trainer.build_system(self.data(), cpu)
            except OptionError as error:
                pytest.fail(f"{error} (in the kit, the crop size is the test class's `size`, now {self.size})")
            steps = 2 * max(phase.every for phase in system.phases)
            parts = trainer.training_parts(system, cpu, ProcessInfo(), total_steps=steps)
            stepped_at: dict[str, list[int]] = {name: [] for name in parts.optimizers}  # training steps, from 1
            for name, optimizer in parts.optimizers.items():
                optimizer.register_step_post_hook(lambda *_, name=name: stepped_at[name].append(trainer.step + 1))
            system.train()
            batch = self.make_batch()
            for step in range(steps):
                try:
                    losses, _ = trainer.train_step(parts, trainer.augmented_on_device(batch, cpu))
                except Exception as error:  # whatever the system raises, named with the precision and step
                    hint = " (under bf16 autocast the networks' outputs are bfloat16)" if precision == "bf16" else ""
                    pytest.fail(f"{precision}, training step {step + 1}: {type(error).__name__}: {error}{hint}")
                bad = {key: _loss_text(loss) for key, loss in losses.items() if not torch.isfinite(loss).all()}
                assert not bad, f"{precision}, training step {step + 1}: losses that are not finite: {bad}"
        expected = {phase.name: list(range(phase.every, steps + 1, phase.every)) for phase in system.phases}
        assert stepped_at == expected, (
            f"training steps at which each phase's optimizer stepped: {stepped_at}; a phase with every=n steps at n, 2n, ...: {expected}"
        )
        weights = [*system.named_parameters(), *system.named_buffers()]
        broken = [name for name, weight in weights if weight.is_floating_point() and not torch.isfinite(weight).all()]
        assert not broken, f"{precision}: weights that are not finite after {steps} steps: {broken}"

    def test_discriminators_see_their_inputs_augmented_with_disc_augment(self, components, config):
        """With ``--disc-augment cutout``, every input of a discriminator, in every phase, lacks a rectangle of half
        each side (at least its quarter inside the image) in every channel."""
        if not config.get("disc"):
            pytest.skip("no discriminator: --disc-augment does not apply")
        torch.manual_seed(0)
        system = ckpt.system_from_config({**config, "disc_augment": "cutout"}, components)
        if system.disc_augment is None:
            pytest.skip("the system does not take --disc-augment, which gantk train refuses for it "
                        "(gantk.systems.base.disc_augmentation)")
        seen: list[Tensor] = []
        for name in system.network_names("discriminator"):
            system.networks[name].register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
        batch, nets = self.make_batch(), dict(system.networks.items())
        outputs = system(batch, nets)
        for phase in system.phases:
            system.phase_losses(phase, batch, outputs, nets)
        assert seen, "no discriminator ran in a step"
        least = (self.size // 4) ** 2
        for shown in seen:
            zeroed = (shown == 0).all(dim=1).flatten(1).sum(1)
            assert (zeroed >= least).all(), (
                f"a discriminator saw an input without cutout's rectangle ({zeroed.tolist()} pixels zero in every channel, "
                f"{least} or more expected): pass augment=self.discriminator_augment(fake) to each LossContext, and call "
                "a discriminator on ctx.discriminator_input(image)"
            )

    @pytest.mark.parametrize("precision", ["fp32", "bf16"])
    def test_sample_rows_are_images_of_the_batch(self, system, tmp_path: Path, precision: str):
        batch = self.make_batch()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            outputs = system(batch, dict(system.networks.items()))  # as the trainer's step gives them
        with torch.no_grad():
            rows = system.sample_images(batch, in_float32(outputs))  # drawn outside autocast, as the trainer draws them
        assert rows, "sample_images returned no rows"
        for row in rows:
            assert row.dim() == 4 and row.shape[0] == self.batch_size and row.shape[2:] == (self.size, self.size), (
                f"a sample row of shape {tuple(row.shape)}, expected ({self.batch_size}, C, {self.size}, {self.size})"
            )
            assert torch.isfinite(row).all() and row.min() >= -1 and row.max() <= 1, "sample rows must be images in [-1, 1]"
        save_sample_grid(rows, tmp_path / "grid.png")

    def test_translations_have_the_input_size(self, system):
        batch = self.make_batch()
        for direction in self.directions:
            images = batch["A"] if direction == "AtoB" else batch["B"]
            with torch.no_grad():
                out = system.translate(images, direction=direction)
            assert out.dim() == 4 and out.shape[0] == self.batch_size and out.shape[2:] == images.shape[2:], (
                f"translate({direction}) returned {tuple(out.shape)} for {tuple(images.shape)}"
            )
            assert torch.isfinite(out).all() and out.min() >= -1 and out.max() <= 1, f"translate({direction}) left [-1, 1]"

    def test_translations_run_the_averages_of_the_generators_weights(self, components, config):
        torch.manual_seed(0)
        system = ckpt.system_from_config({**config, "ema_decay": 0.5}, components).eval()
        batch = self.make_batch()
        inputs = {direction: batch["A"] if direction == "AtoB" else batch["B"] for direction in self.directions}
        with torch.no_grad():
            before = {direction: system.translate(images, direction=direction) for direction, images in inputs.items()}
            for weight in system.averaged.parameters():  # the averages alone change
                weight.mul_(0.5)
            after = {direction: system.translate(images, direction=direction) for direction, images in inputs.items()}
        for direction in self.directions:
            assert not torch.allclose(before[direction], after[direction]), (
                f"translate({direction}) ignores the averages of the generators' weights that --ema-decay keeps: run each "
                "generator as self.translating(name) gives it"
            )

    def test_weights_rebuild_the_same_model(self, components, config, system):
        rebuilt = ckpt.system_from_config(config, components, for_checkpoint=True)
        rebuilt.load_state_dict(system.state_dict())
        images = self.make_batch()["A"]
        for train in (False, True):  # eval mode, and the paper's test mode (batch statistics, dropout)
            outputs = []
            for model in (system, rebuilt):
                torch.manual_seed(1)
                with torch.no_grad():
                    outputs.append(model.train(train).translate(images))
            torch.testing.assert_close(*outputs, msg=f"the rebuilt model translates otherwise in {'train' if train else 'eval'} mode")


# A tiny dataset of each built-in layout: its files, under a folder named as the format gantk detects it as
_OTHER_LAYOUTS = {
    "paired": ("train/A/0.png", "train/B/0.png"),
    "aligned": ("train/0.png",),  # twice as wide as high: A|B
    "segmentation": ("train/images/0.png", "train/masks/0.png"),
    "unaligned": ("trainA/0.png", "trainB/0.png"),
    "single": ("0.png", "1.png"),
}


def _write_other_layouts(root: Path) -> list[tuple[str, Path]]:
    """Under ``root``, a tiny dataset of each built-in layout and one image file, each with the format gantk detects."""
    for name, files in _OTHER_LAYOUTS.items():
        for file in files:
            if "/masks/" in file:
                image = torch.zeros(1, 32, 32, dtype=torch.uint8)
                image[..., 16:] = 255  # a binary mask: background and object
            else:
                width = 64 if name == "aligned" else 32
                image = (torch.arange(3 * 32 * width) % 256).to(torch.uint8).reshape(3, 32, width)
            write_png(image, root / name / file)
    return [*((name, root / name) for name in _OTHER_LAYOUTS), ("single", root / "single" / "0.png")]


def _mask_sides(dataset: GanDataset) -> dict[str, int]:
    """The sides of ``dataset`` that hold class ids (B of a mask target, A of a label-map input), with their class count."""
    return {side: classes for side, classes in (("B", dataset.num_classes), ("A", dataset.input_classes)) if classes is not None}


def _check_item(item: Any, dataset: GanDataset, size: int, where: str) -> None:
    """``item`` is what training, validation and ``gantk eval`` read: images ``C x size x size`` in [-1, 1] (float32) and
    class ids ``size x size`` (int64) of the channels and classes ``dataset`` declares, and the paths of their files."""
    assert isinstance(item, Mapping), f"{where} is a {type(item).__name__}: items are dicts of A, B, A_path and B_path"
    missing = [key for key in ("A", "B", "A_path", "B_path") if key not in item]
    assert not missing, (f"{where} lacks {', '.join(missing)}: training reads A and B, and gantk eval names each item by "
                         "its A_path or B_path (the files read, as strings)")
    masks = _mask_sides(dataset)
    for side in "AB":
        value, channels = item[side], dataset.channels.get(side)
        assert isinstance(value, Tensor), f"{where}: {side} is a {type(value).__name__}, not a tensor"
        shape = tuple(value.shape)
        if side in masks:
            classes, lowest = masks[side], -1 if dataset.ignore_label is not None else 0  # -1: an ignored pixel
            expected = (size, size)
            assert value.dtype == torch.int64 and shape == expected, (
                f"{where}: {side} holds class ids, expected int64 of shape {expected} (H x W), got {value.dtype} of shape {shape}")
            assert lowest <= int(value.min()) and int(value.max()) < classes, (
                f"{where}: {side} holds ids {int(value.min())}..{int(value.max())}, outside {lowest}..{classes - 1} "
                f"(the {classes} classes the dataset declares{', -1 ignored' if lowest else ''})")
        else:
            expected = (channels, size, size)
            assert value.dtype == torch.float32 and shape == expected, (
                f"{where}: {side} is an image of {channels} channel(s) (the dataset's channels['{side}']), expected float32 "
                f"of shape {expected}, got {value.dtype} of shape {shape}")
            assert torch.isfinite(value).all() and -1 <= float(value.min()) and float(value.max()) <= 1, (
                f"{where}: {side} holds values {float(value.min())}..{float(value.max())}; images are in [-1, 1] "
                "(PairedTransform's normalize=True)")
        path = item[f"{side}_path"]
        assert isinstance(path, str) and Path(path).is_file(), (
            f"{where}: {side}_path is {path!r}, expected the path of the file read, as a string (batches collate strings)")


def _same(a: Any, b: Any) -> bool:
    """Whether two values of items are equal: tensors of one dtype and shape, lists and tables of them, plain values."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    return bool(a == b)


def _differing(first: Mapping, second: Mapping) -> list[str]:
    """The keys whose values differ between two items, sorted."""
    return sorted(key for key in first.keys() | second.keys() if key not in first or key not in second or not _same(first[key], second[key]))


class DataFormatConformance(_Conformance):
    """Tests every data format gantk trains on must pass, on a small sound dataset of its layout that
    ``write_sample`` writes: detection of the sample and of other formats' layouts, a ``train`` split,
    a clean data check (``gantk data check``), items as training, validation and ``gantk eval`` read them
    (keys, dtypes, ranges, shapes, the channels and classes declared, the same for the same index and
    seed, other crops and flips for other seeds, none without augmentation), targets of the kind ``paired_targets``
    says, ``direction``, ``normalize``, ``resize``, ``split``, ``split_files`` and the data check's ``splits`` honoured,
    and an empty folder or an unreadable file reported, naming the file.

    Items are checked at ``size`` (training crops ``size`` from images resized to ``size + 4``);
    the sample's images should be about that size.
    """

    kind = "data_format"
    size: ClassVar[int] = 32

    def write_sample(self, root: Path) -> None:
        """Write a small sound dataset of the format into the empty folder ``root``: a few images, in a ``train``
        and a ``test`` split (the kit checks they are kept apart), or in an unsplit layout, which serves every split.
        For a format whose dataset is a file, override the ``sample`` fixture to return its path."""
        pytest.fail("write_sample(root) writes a small dataset of the format into root: override it in the test class")

    @pytest.fixture
    def data_format(self, components, component_name) -> DataFormat:
        return get_format(component_name, components)

    @pytest.fixture
    def sample(self, tmp_path: Path) -> Path:
        root = tmp_path / "sample"
        root.mkdir()
        self.write_sample(root)
        return root

    def open(self, components: Components, name: str, root: Path, **options: Any) -> GanDataset:
        """Split ``train`` of ``root`` as ``gantk train`` opens it to train on; ``options`` replace ``open_dataset``'s."""
        defaults = {"split": "train", "load_size": self.size + 4, "crop_size": self.size}
        return open_dataset(root, format=name, components=components, **{**defaults, **options})

    def opened_files(self, components: Components, name: str, root: Path, split: str) -> frozenset[Path]:
        """The files (resolved) that ``split`` of ``root`` opens, as validation and ``gantk eval`` open it."""
        dataset = self.open(components, name, root, split=split, augment=False)
        return frozenset(Path(path).resolve() for paths in dataset.files.values() for path in paths)

    def test_says_what_its_items_pair(self, data_format):
        targets = data_format.paired_targets
        assert targets in ("images", "masks", None), (
            f"paired_targets is {targets!r}: say what each item pairs its input with, 'images' or 'masks', or None "
            "(unpaired sides), as the paired recipes and gantk eval read it")
        try:
            data_format.how_to_split.format(split="val")
        except (KeyError, IndexError, ValueError) as error:
            pytest.fail(f"how_to_split {data_format.how_to_split!r} fails as gantk train formats it with split='val' "
                        f"({type(error).__name__}: {error}): use {{split}} for the split's name alone, and {{{{ }}}} for braces")

    def test_detects_its_sample(self, components, component_name, data_format, sample):
        assert data_format.detect(sample), f"detect() is False for the sample write_sample wrote ({sample})"
        try:
            found = detect_format(sample, components=components)
        except DataError as error:
            pytest.fail(f"gantk cannot tell the sample's format, as gantk train without --data-format does: {error}")
        assert found == component_name, (f"the sample is detected as the {found} format: a fallback format counts only "
                                         "where no other format matches")

    def test_its_sample_has_a_split_to_train_on(self, data_format, sample):
        splits = data_format.splits(sample)
        assert isinstance(splits, list) and splits and all(isinstance(split, str) for split in splits), (
            f"splits() of the sample gave {splits!r}: expected a list of split names ([ROOT_SPLIT] for a layout kept "
            "directly in the root)")
        assert "train" in splits or splits == [ROOT_SPLIT], (
            f"the sample's splits are {', '.join(splits)}, and gantk train reads the split 'train': write the sample with "
            "one, and name the training split of the layout 'train' in splits() and open()")

    def test_leaves_other_layouts_to_their_formats(self, components, component_name, tmp_path):
        """Each built-in layout (and an image file) is detected as before, and an empty folder as none: a format
        claiming them would make gantk refuse them as matching several formats, or read them its way."""
        others = [(expected, root) for expected, root in _write_other_layouts(tmp_path / "others") if expected != component_name]
        empty = tmp_path / "empty"
        empty.mkdir()
        for expected, root in [*others, (None, empty)]:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    found = detect_format(root, components=components)
                except DataError as error:
                    found = None if "cannot tell the format" in str(error) else str(error)
                except Exception as error:
                    pytest.fail(f"telling the format of {root} fails: {type(error).__name__}: {error}; near_miss_hints() runs on "
                                "every folder no format matches, and returns what it lacks, or []")
            failures = [str(w.message) for w in caught if f"data format '{component_name}'" in str(w.message)]
            assert not failures, f"detect() fails on {root}, which is left to the other formats: {failures[0]}"
            kind = f"{expected} data" if expected else "an empty folder"
            assert found == expected, (f"{root} ({kind}) is detected as {found!r}: detect() claims what is not laid out as "
                                       "its format; look for what only its layout has")

    def test_its_sample_passes_the_data_check(self, components, component_name, data_format, sample):
        problems = data_format.validate(sample)
        assert isinstance(problems, (list, tuple)) and not problems, (
            f"validate() of the sound sample gave {problems!r}, not an empty list: gantk data check and gantk train refuse "
            "a dataset with problems (or a result that is no list of them)")
        if "splits" in inspect.signature(data_format.validate).parameters:
            problems = data_format.validate(sample, splits=["train"])
            assert isinstance(problems, (list, tuple)) and not problems, (
                f"validate(root, splits=['train']), which gantk train runs, gave {problems!r}")
        try:
            summary = check_dataset(sample, component_name, components)
            summary.text()
            json.dumps(summary.as_dict())  # gantk data check --json
        except Exception as error:
            pytest.fail(f"gantk data check fails on the sample: {type(error).__name__}: {error}; it reads each split's "
                        "dataset.files ({'A': [paths], 'B': [paths]}, or 'A|B' for both halves of one file) and channels")
        empty = [split or "(root)" for split, found in summary.splits.items() if not found.items]
        assert not empty, f"splits {', '.join(empty)} of splits() open with no items: list only splits that hold data"

    def test_validate_checks_the_splits_it_is_given(self, components, component_name, data_format, sample):
        """``gantk train`` checks the splits it reads (``validate(root, splits=...)``): a broken file of another split
        does not stop it, and one of a split it reads does."""
        if "splits" not in inspect.signature(data_format.validate).parameters:
            pytest.skip("validate() takes no splits: gantk train checks the whole dataset")
        splits = data_format.splits(sample)
        others = [split for split in splits if split != "train"]
        if "train" not in splits or not others:
            pytest.skip("the sample has no train split beside another: write a train and a test split to check that "
                        "validate() keeps them apart")
        other = others[0]
        opened = functools.partial(self.opened_files, components, component_name, sample)
        broken = min(opened(other) - opened("train"), default=None)
        if broken is None:
            pytest.skip(f"split {other} opens no file that train does not")
        before = data_format.validate(sample, splits=["train"])
        broken.write_bytes(b"not an image")
        after = data_format.validate(sample, splits=["train"])
        assert after == before, (
            f"validate(root, splits=['train']) gives {after!r} once {broken.name} of split {other} no longer decodes "
            f"({before!r} before): check the splits of self.checked_splits(root, splits) alone, as gantk train checks the splits "
            "it reads")
        # a validate() that decodes no file fails test_an_unreadable_file_is_named
        if any(broken.name in problem for problem in data_format.validate(sample)):
            problems = data_format.validate(sample, splits=[other])
            assert any(broken.name in problem for problem in problems), (
                f"validate(root) names {broken.name}, a file of split {other} that no longer decodes, and validate(root, "
                f"splits=[{other!r}]) does not (its problems: {problems}): check every split of self.checked_splits(root, splits)")

    def test_training_items_are_images_and_targets_at_the_crop_size(self, components, component_name, sample):
        """As training reads them (resized, cropped, flipped) and validation (resized to the crop size)."""
        for augment in (True, False):
            dataset = self.open(components, component_name, sample, augment=augment, load_size=self.size + 4 if augment else None)
            assert isinstance(dataset.channels, dict) and all(isinstance(dataset.channels.get(side), int) for side in "AB"), (
                f"channels is {dataset.channels!r}: expected the channel count of each side, {{'A': int, 'B': int}} (for "
                "class ids, the class count), which the networks are built for")
            assert len(dataset), "the sample's train split opens with no items"
            items = [dataset[(index, 0)] for index in range(min(len(dataset), 4))]
            for index, item in enumerate(items):
                _check_item(item, dataset, self.size, f"item {index} ({'training' if augment else 'validation'})")
            try:
                default_collate(items)
            except Exception as error:
                pytest.fail(f"items do not batch as training batches them (default_collate): {type(error).__name__}: {error}; "
                            "give every item the same keys, with tensors, numbers or strings (no None)")

    def test_an_item_is_the_same_for_the_same_index_and_seed(self, components, component_name, sample):
        """Each opening (a loader worker, a process of a distributed run, a resumed run) reads the same crops and flips."""
        openings = []
        for global_seed in (0, 1):
            torch.manual_seed(global_seed)
            dataset = self.open(components, component_name, sample)
            openings.append([dataset[(index, 7)] for index in range(min(len(dataset), 4))])
        for index, (first, second) in enumerate(zip(*openings)):
            differing = _differing(first, second)
            assert not differing, (
                f"item ({index}, 7) differs between two openings in {', '.join(differing)}: draw every random choice "
                "from the generator load() receives, never from torch's global one, and list the files in a fixed order")

    def test_other_seeds_give_other_crops_and_flips(self, components, component_name, sample):
        """Each epoch's items are drawn from the sampler's seeds: a format that ignores them trains on one crop per image."""
        dataset = self.open(components, component_name, sample)
        first = dataset[(0, 0)]
        assert any(_differing(first, dataset[(0, seed)]) for seed in range(1, 8)), (
            "item 0 is the same for the seeds 0 to 7, with crops and flips asked for (augment=True): draw them from the "
            "generator load() receives")

    def test_its_targets_are_what_paired_targets_says(self, components, component_name, data_format, sample):
        dataset = self.open(components, component_name, sample, augment=False, load_size=None, crop_size=None)
        targets = data_format.paired_targets
        if targets == "masks":
            classes = dataset.num_classes
            assert isinstance(classes, int) and classes >= 2 and dataset.channels["B"] == classes, (
                f"paired_targets is 'masks', and the dataset's num_classes is {classes!r} with channels['B'] "
                f"{dataset.channels['B']!r}: a mask target has num_classes >= 2 classes, its channel count")
            try:  # as validation and gantk eval open mask data: with the training split's classes
                reopened = self.open(components, component_name, sample, augment=False, load_size=None, crop_size=None,
                                     num_classes=classes, ignore_label=dataset.ignore_label)
            except OptionError as error:
                pytest.fail(f"{error} (validation and gantk eval open mask data with num_classes, the training split's "
                            "count, and ignore_label where it has one: open() takes them)")
            assert not _differing(reopened[(0, 0)], dataset[(0, 0)]), f"open() with num_classes={classes} reads other items"
        else:
            assert dataset.num_classes is None, (f"the dataset has num_classes {dataset.num_classes}, and paired_targets is "
                                                 f"{targets!r}, not 'masks'")
        if targets is None:
            try:
                UnpairedSplit.of(dataset)
            except DataError as error:
                pytest.fail(f"{error} (validation and gantk eval score unpaired data by each side's images)")
            return
        for index in range(min(len(dataset), 4)):
            item = dataset[(index, 0)]
            sizes = {side: tuple(item[side].shape[-2:]) for side in "AB"}
            assert sizes["A"] == sizes["B"], (f"item {index} at its files' size pairs A of {sizes['A']} with B of {sizes['B']}: "
                                              f"paired_targets {targets!r} says each input has its target, pixel for pixel")

    def test_direction_btoa_swaps_the_sides(self, components, component_name, data_format, sample):
        forward, backward = (self.open(components, component_name, sample, augment=False, direction=direction)
                             for direction in ("AtoB", "BtoA"))
        swapped = {"A": forward.channels["B"], "B": forward.channels["A"]}
        assert backward.channels == swapped, (f"direction 'BtoA' gives channels {backward.channels}, expected {swapped}: "
                                              "B is the input and A the target")
        if data_format.paired_targets is None:
            files = {side: backward.files.get(side) for side in "AB"}
            assert files == {"A": forward.files.get("B"), "B": forward.files.get("A")}, (
                "direction 'BtoA' serves other files than AtoB's with the sides swapped")
            return
        for index in range(min(len(forward), 4)):
            ahead, back = forward[(index, 0)], backward[(index, 0)]
            unswapped = [f"its {side} is not AtoB's {other}" for side, other in (("A", "B"), ("B", "A"))
                         if not torch.equal(back[side], ahead[other])]
            assert not unswapped, (f"item {index} of direction 'BtoA' is not item {index} of 'AtoB' with A and B swapped: "
                                   f"{' and '.join(unswapped)}")

    def test_unnormalised_items_scale_to_the_normalised_ones(self, components, component_name, data_format, sample):
        """``--augment-on device`` opens training data with ``normalize=False`` and scales uint8 images to [-1, 1]
        on the device (other values stay as they are)."""
        if "normalize" not in inspect.signature(data_format.open).parameters:
            pytest.skip("open() takes no normalize: --augment-on device gets float images")
        options = {"crop_size": None, "flip": False}  # the device crops and flips
        normalised, raw = (self.open(components, component_name, sample, normalize=normalize, **options)
                           for normalize in (True, False))
        for index in range(min(len(raw), 4)):
            for side in "AB":
                value = raw[(index, 0)][side]
                scaled = normalize_image(value) if value.dtype == torch.uint8 else value
                torch.testing.assert_close(scaled, normalised[(index, 0)][side], msg=lambda text: (
                    f"item {index}, {side}: the normalize=False item, scaled to [-1, 1] where it is uint8, is not the "
                    f"normalised item: images stay uint8 pixels ({text})"))

    def test_its_splits_open_their_own_files(self, components, component_name, data_format, sample):
        """``gantk eval --split test`` scores other images than training took."""
        splits = data_format.splits(sample)
        if len(splits) < 2:
            pytest.skip("the sample has one split: write a train and a test split to check that they are kept apart")
        opened = {split: self.opened_files(components, component_name, sample, split) for split in splits}
        for first, second in itertools.combinations(splits, 2):
            assert opened[first] != opened[second], (
                f"splits {first} and {second} open the same {len(opened[first])} files: open(split=...) serves the files "
                "of the split asked for alone (gantk.data.layout.pick_split picks its folder)")

    def test_without_random_choices_an_item_is_the_same_for_every_seed(self, components, component_name, data_format, sample):
        """Validation and ``gantk eval`` open data with ``augment=False``; training with ``--no-flip`` at a
        ``--load-size`` equal to ``--crop-size`` has no random choice left (but the partner an unpaired item draws)."""
        kept = ("A", "A_path") if data_format.paired_targets is None else None
        for options in ({"augment": False}, {"flip": False, "load_size": self.size}):
            dataset = self.open(components, component_name, sample, **options)
            items = [dataset[(0, seed)] for seed in range(8)]
            if kept is not None:
                items = [{key: item[key] for key in kept} for item in items]
            other = next((seed for seed in range(1, 8) if _differing(items[0], items[seed])), None)
            assert other is None, (
                f"item 0 opened with {', '.join(f'{key}={value}' for key, value in options.items())} differs between the "
                f"seeds 0 and {other}: pass augment and flip on to the transform (PairedTransform), which then draws nothing")

    def test_resize_none_keeps_each_image_its_size(self, components, component_name, data_format, sample):
        """``--resize none`` trains on the images as they are (cropped, never resized)."""
        if "resize" not in inspect.signature(data_format.open).parameters:
            pytest.skip("open() takes no resize: gantk refuses --resize none and short-side for the format")
        own = self.open(components, component_name, sample, augment=False, load_size=None, crop_size=None)
        kept = self.open(components, component_name, sample, augment=False, load_size=3 * self.size, crop_size=None,
                         resize="none")
        for index in range(min(len(own), 4)):
            sizes = {name: tuple(dataset[(index, 0)]["A"].shape[-2:]) for name, dataset in (("own", own), ("kept", kept))}
            assert sizes["kept"] == sizes["own"], (
                f"item {index} opened with resize='none' is {sizes['kept']}, and its image {sizes['own']}: pass resize on "
                f"to the transform (PairedTransform), which then ignores load_size {3 * self.size}")

    def test_a_split_it_lacks_is_an_error(self, components, component_name, data_format, sample):
        splits = data_format.splits(sample)
        if splits == [ROOT_SPLIT]:
            pytest.skip("an unsplit layout serves every split")
        try:
            dataset = self.open(components, component_name, sample, split="absent", augment=False)
        except DataError:
            return
        pytest.fail(f"split 'absent', which the sample lacks (its splits: {', '.join(splits)}), opens as {len(dataset)} items: "
                    "gantk eval --split would score other images than asked; raise DataError (gantk.data.layout.pick_split "
                    "picks a split or raises)")

    def test_split_files_are_the_files_its_split_opens(self, components, component_name, data_format, sample):
        """``gantk eval`` warns of scored images the model trained on by the files ``split_files`` lists."""
        listed = {split: data_format.split_files(sample, split) for split in data_format.splits(sample)}
        if all(files is None for files in listed.values()):
            pytest.skip("split_files() lists no files")
        for split, files in listed.items():
            opened = self.opened_files(components, component_name, sample, split or "train")
            assert files is not None and {Path(path).resolve() for path in files} == opened, (
                f"split_files(root, {split!r}) lists {sorted(map(str, files or ()))}, and the split opens "
                f"{sorted(map(str, opened))}")

    def test_an_empty_folder_is_reported(self, components, component_name, data_format, tmp_path):
        problems = data_format.validate(tmp_path)
        assert isinstance(problems, (list, tuple)) and problems, (
            f"validate() of an empty folder gave {problems!r}: gantk data check would call it sound; report that it holds "
            "no data in the format's layout, and what it needs")
        assert all(isinstance(problem, str) for problem in problems), (
            f"validate() of an empty folder gave {problems!r}: report each problem as a string naming the folder or file "
            "and the fix, which gantk data check prints")
        try:
            dataset = self.open(components, component_name, tmp_path)
        except DataError:
            return
        except Exception as error:
            pytest.fail(f"opening an empty folder raises {type(error).__name__}: {error}; raise DataError saying what it lacks")
        pytest.fail(f"an empty folder opens as {len(dataset)} items: raise DataError saying what it lacks")

    def test_an_unreadable_file_is_named(self, components, component_name, data_format, sample):
        broken = Path(self.open(components, component_name, sample, augment=False)[(0, 0)]["A_path"])
        broken.write_bytes(b"not an image")
        problems = data_format.validate(sample)
        assert any(broken.name in problem for problem in problems), (
            f"validate() does not name {broken.name}, which no longer decodes (its problems: {problems}): validate decodes "
            "every file (gantk.data.layout.decode_or_note notes one that fails), so that gantk train stops before training")
        try:
            self.open(components, component_name, sample, augment=False)[(0, 0)]
        except DataError as error:
            assert broken.name in str(error), f"reading {broken.name} raises an error that does not name it: {error}"
            return
        except Exception as error:
            pytest.fail(f"reading {broken.name} raises {type(error).__name__}: {error}; read files with gantk.data.read_image "
                        "(or read_mask), which raise DataError naming the file")
        pytest.fail(f"{broken.name}, which no longer decodes, is read as an item")
