"""Conformance tests for gantk components (needs pytest): subclass a base in your plugin's tests.

Set ``name`` (the registered name), ``options`` (small sizes keep the tests fast) and
``plugins`` (plugin objects or module names given to ``gantk.load_components(autoload=False,
plugins=...)``); the base's tests then run against your component::

    # tests/test_my_plugin.py
    from gantk.testing import DiscriminatorConformance, GeneratorConformance, ObjectiveConformance, SystemConformance

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

To test several components with one class, override the ``component_name`` fixture (e.g. with
``params=``) and ``component_options``; to build the registries yourself, override
``components``.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, ClassVar, Mapping, Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .discriminators.patch import PatchDiscriminator
from .errors import GantkError, OptionError
from .nn import size_rules
from .objectives.base import LossContext, Objective
from .plugins import Components, load_components
from .recipes.base import Recipe
from .registry import plain, storable
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
