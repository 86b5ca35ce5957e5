"""The system contract: networks, the phases that train them, and the losses of each phase.

A recipe builds a system; the shared trainer runs it without knowing what it is. Each
training step calls ``forward(batch, nets)`` once, then for every phase in order computes
``phase_losses(phase, batch, outputs, nets)``, back-propagates their sum, steps the phase's
optimizer and calls ``after_optimizer_step(phase)`` (then, where the run keeps them, updates the averages of the
generators' weights, see :meth:`System.keep_averages`). Networks listed in ``Phase.frozen`` stop
collecting gradients during that phase (pix2pix's G step with D frozen). A phase with ``every=n`` runs on every n-th step only
(the generator's phase under ``n_critic``).
"""

from __future__ import annotations

import abc
import contextlib
import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

import torch
from torch import Tensor, nn

from ..errors import OptionError
from ..nn.diff_augment import DiffAugment, parse_policy
from . import targets

if TYPE_CHECKING:
    from ..objectives.spec import ObjectiveSet
    from ..plugins import Components

Nets = Mapping[str, Callable[..., Any]]  # network name -> callable (possibly DDP-wrapped or compiled)


@dataclass(frozen=True)
class Phase:
    """One optimizer step of a training iteration.

    Attributes:
        name: label in logs and the key of the phase's optimizer in checkpoints ("D", "G").
        trains: networks whose parameters this phase's optimizer updates.
        frozen: networks used by this phase whose parameters must not receive gradients.
        every: the phase runs on steps n, 2n, 3n, ... (counting from 1) for ``every=n``.
    """

    name: str
    trains: tuple[str, ...]
    frozen: tuple[str, ...] = ()
    every: int = 1

    def runs_at(self, step: int) -> bool:
        """Whether the phase takes part in training step ``step`` (counting from 0)."""
        return (step + 1) % self.every == 0


@contextlib.contextmanager
def frozen_networks(networks: Iterable[nn.Module]) -> Iterator[None]:
    """No parameter of ``networks`` takes gradients inside the block; afterwards each parameter
    takes them again only if it did before (a network may hold parameters frozen on purpose)."""
    before = {param: param.requires_grad for net in networks for param in net.parameters()}
    for param in before:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param, requires_grad in before.items():
            param.requires_grad_(requires_grad)


@contextlib.contextmanager
def modes_kept(module: nn.Module) -> Iterator[None]:
    """Every submodule of ``module`` is back in the train or eval mode it had when the block began."""
    modes = [(submodule, submodule.training) for submodule in module.modules()]
    try:
        yield
    finally:
        for submodule, training in modes:
            submodule.training = training


def in_float32(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """A step's ``outputs`` with their floating tensors in float32 (autocast gives bfloat16 or float16), as
    :meth:`System.sample_images` gets them: networks it runs on them outside autocast take float32."""
    return {key: value.float() if isinstance(value, Tensor) and value.is_floating_point() else value
            for key, value in outputs.items()}


def generated(network: Callable[[Tensor], Any], input: Tensor, out_channels: int, generator: str) -> Tensor:
    """The output of ``network``, the generator named ``generator``, for ``input``, checked to be ``N x out_channels x H x W``;
    an exception it raises carries a note naming it (a plugin's generator, say)."""
    try:
        output = network(input)
    except Exception as error:
        error.add_note(f"(raised in the forward pass of generator '{generator}')")
        raise
    expected = (input.shape[0], out_channels, *input.shape[2:])
    if not isinstance(output, Tensor):
        raise OptionError(f"generator '{generator}' returned a {type(output).__name__} for an input of {tuple(input.shape)}; "
                          f"a generator must return one tensor, N x {out_channels} x H x W, the size of its input.")
    if tuple(output.shape) != expected:
        other_size = output.dim() == input.dim() and output.shape[2:] != input.shape[2:]
        sizes = (" A generator that takes only sizes of some multiple (or above some least size) declares it as "
                 "size_multiple (min_input_size), which gantk keeps to: crop sizes are checked, inputs padded.") if other_size else ""
        raise OptionError(
            f"generator '{generator}' returned {tuple(output.shape)} for an input of {tuple(input.shape)}; "
            f"a generator must return N x {out_channels} x H x W, the size of its input.{sizes}"
        )
    if not output.is_floating_point():
        raise OptionError(f"generator '{generator}' returned {output.dtype} values for an input of {tuple(input.shape)}; a "
                          "generator returns floating-point values (images in [-1, 1], or a mask's logits).")
    return output


def check_discriminator_matches_objective(disc: str | None, objective: ObjectiveSet) -> None:
    """A discriminator needs an adversarial term and an adversarial term needs a discriminator."""
    if disc and objective.adversarial is None:
        raise OptionError(
            f"--disc {disc} is set but the objective '{objective.spec}' has no adversarial term: add one, such as "
            f"bce+{objective.spec} or hinge+{objective.spec} (`gantk list objectives` lists them), or pass --disc none "
            "(disc='none' in Python, where None takes the recipe's discriminator)."
        )
    if not disc and objective.adversarial is not None:
        raise OptionError(
            f"the objective '{objective.spec}' has the adversarial term '{objective.adversarial.name}' "
            "but no discriminator is set: choose one with --disc (e.g. patch70) or drop the term (give --loss without it: "
            "without --loss, the recipe's loss is trained)."
        )


def check_phases(system: "System", recipe: str) -> None:
    """Raise ``OptionError`` naming ``recipe`` unless its system's phases can be trained: at least
    one, with distinct names, each running every n-th step for a whole n >= 1 and naming only
    networks the system has."""
    where = f"recipe '{recipe}' built a {type(system).__name__}"
    if not system.phases:
        raise OptionError(f"{where} without phases; a system sets phases = (Phase(...), ...) (see gantk.systems.base.Phase).")
    names = [phase.name for phase in system.phases]
    if len(set(names)) != len(names):
        raise OptionError(f"{where} whose phases share a name ({', '.join(names)}); each phase needs its own.")
    for phase in system.phases:
        if isinstance(phase.every, bool) or not isinstance(phase.every, int) or phase.every < 1:
            raise OptionError(f"{where} whose phase {phase.name} has every={phase.every!r}; it takes a whole number of steps, 1 or more.")
    unknown = sorted({net for phase in system.phases for net in (*phase.trains, *phase.frozen)} - set(system.networks))
    if unknown:
        raise OptionError(
            f"{where} whose phases name the network(s) {', '.join(unknown)}, which it does not have "
            f"(its networks: {', '.join(system.networks) or 'none'})."
        )


def check_unpaired_images(config: dict[str, Any], translation: str, judged: str) -> None:
    """Refuse what unpaired ``translation`` cannot train: masks, and a discriminator conditioned on an input
    (``judged``: what its discriminators see, alone)."""
    if config.get("num_classes") is not None or config.get("input_classes") is not None:
        raise OptionError(f"{translation} works on images, not masks: use an 'unaligned' image dataset.")
    if config.get("conditional"):
        raise OptionError(f"{translation}'s {judged} alone (no input to condition on: the data is unpaired): drop --conditional.")


def critic_steps(config: dict[str, Any]) -> int:
    """Discriminator steps per generator step; more than one needs a discriminator."""
    n_critic = int(config.get("n_critic", 1))
    if n_critic > 1 and not config.get("disc"):
        raise OptionError(
            f"--n-critic {n_critic} asks for discriminator steps, but no discriminator is set: "
            "choose one with --disc (e.g. patch70) or drop --n-critic."
        )
    return n_critic


def disc_augmentation(config: dict[str, Any]) -> DiffAugment | None:
    """The augmentation ``--disc-augment`` names in ``config`` (``None``: none); it needs a discriminator, and
    ``color`` one that judges images."""
    text = config.get("disc_augment")
    if not text:
        return None
    policy = parse_policy(text)
    if not config.get("disc"):
        raise OptionError(f"--disc-augment {text} augments what the discriminator sees, and there is no discriminator: "
                          "choose one with --disc, or drop --disc-augment.")
    if "color" in policy and config.get("num_classes") is not None:
        raise OptionError(f"--disc-augment {text}: color changes the colours of the images the discriminator judges, and "
                          "this model's discriminator judges masks (class probabilities): use translation,cutout.")
    return DiffAugment(policy)


class System(nn.Module, metaclass=abc.ABCMeta):
    """Base of the compositions the trainer runs (paired translation, cycle translation, ...).

    Subclasses fill ``self.networks`` (an ``nn.ModuleDict``), best through :meth:`add_network`,
    set ``phases`` and implement the methods below. ``config`` is the resolved, JSON-serialisable
    description the system was built from: checkpoints store it so the system can be rebuilt from
    the file alone.
    """

    phases: tuple[Phase, ...] = ()
    trains_unpaired = False  # whether it trains on unpaired data (trainA/ and trainB/), as cycle translation does
    input_classes: int | None = None  # where the inputs are label maps: their class count (see encoded_inputs)
    disc_augment: DiffAugment | None = None  # --disc-augment, in the systems that take it (disc_augmentation)

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.config = config
        self.networks = nn.ModuleDict()
        self.network_parts: dict[str, tuple[str, str]] = {}  # name -> (kind, registered name), for messages
        # The share of training done before the current step (LossContext.progress): a tensor the trainer sets in
        # place, so that a recorded CUDA graph reads each step's value; 0 outside training. Not in checkpoints.
        self.register_buffer("training_progress", torch.zeros(()), persistent=False)

    def discriminator_augment(self, judged: Tensor) -> Callable[[Tensor], Tensor] | None:
        """One draw of :attr:`disc_augment` for a batch like ``judged`` (what the discriminator judges), for a
        :class:`~gantk.objectives.LossContext`; ``None`` without one."""
        if self.disc_augment is None:
            return None
        images, channels, height, width = judged.shape
        return self.disc_augment.drawn(images, height, width, channels, judged.device)

    def add_network(self, name: str, components: Components, kind: str, component: str, **options: Any) -> nn.Module:
        """Build the registered ``kind`` ``component`` with ``options`` as the network ``name``."""
        self.networks[name] = net = components.create(kind, component, **options)
        self.network_parts[name] = (kind, component)
        return net

    def network_names(self, kind: str) -> list[str]:
        """The names of the networks added as ``kind`` (``generator``, ``discriminator``), in the order added."""
        return [name for name, (added_as, _) in self.network_parts.items() if added_as == kind]

    @property
    def generators(self) -> list[nn.Module]:
        """The networks added as generators."""
        return [self.networks[name] for name in self.network_names("generator")]

    def keep_averages(self, decay: float) -> None:
        """Keep an exponential moving average of each generator's weights (``averaged``, a submodule: checkpoints
        hold it), ``decay`` its weight of the past per update; :meth:`translating` gives the averages."""
        names = self.network_names("generator")
        self.averaged = nn.ModuleDict({name: copy.deepcopy(self.networks[name]).requires_grad_(False) for name in names})
        self.average_decay = decay
        self.register_buffer("average_updates", torch.zeros(len(names), dtype=torch.long))  # per generator, in that order

    @torch.no_grad()
    def reset_averages(self) -> None:
        """Start the averages afresh from the generators' weights as they are (loaded from another run, say)."""
        averaged = getattr(self, "averaged", None)
        if averaged is not None:
            for name, average in averaged.items():
                average.load_state_dict(self.networks[name].state_dict())
            self.average_updates.zero_()

    @torch.no_grad()
    def update_averages(self, phase: Phase) -> None:
        """Move the averages of the generators ``phase`` trains towards their weights (the trainer calls it after
        the phase's optimizer step). Each generator's first update copies its weights, and the memory grows over its
        first updates (``n / (n + 10)``, up to the decay), so the average soon forgets the starting weights;
        batch-norm statistics are copied. Device work only (no value read on the CPU): a CUDA graph records it."""
        for index, (name, average) in enumerate(getattr(self, "averaged", {}).items()):
            if name not in phase.trains:
                continue
            updates = self.average_updates[index]
            decay = (updates / (updates + 10)).clamp(max=self.average_decay)
            for kept, weight in zip(average.parameters(), self.networks[name].parameters(), strict=True):
                kept.lerp_(weight, (1 - decay).to(kept.dtype))
            for kept, buffer in zip(average.buffers(), self.networks[name].buffers(), strict=True):
                kept.copy_(buffer)
            updates += 1

    def translating(self, name: str) -> nn.Module:
        """The network translation runs for generator ``name``: the average of its weights where the run keeps one."""
        averaged = getattr(self, "averaged", None)
        return averaged[name] if averaged is not None and name in averaged else self.networks[name]

    @abc.abstractmethod
    def forward(self, batch: Mapping[str, Tensor], nets: Nets) -> dict[str, Tensor]:
        """Generator outputs shared by all phases of a step."""

    @abc.abstractmethod
    def phase_losses(
        self, phase: Phase, batch: Mapping[str, Tensor], outputs: dict[str, Tensor], nets: Nets
    ) -> dict[str, Tensor]:
        """Named, weighted loss terms of ``phase``; the trainer back-propagates their sum."""

    @abc.abstractmethod
    def sample_images(self, batch: Mapping[str, Tensor], outputs: dict[str, Tensor]) -> list[Tensor]:
        """Rows of a sample grid (e.g. input | output | target) as images in [-1, 1]; rows of one
        channel are shown gray, and channels beyond the third are left out. Called outside autocast, with
        ``outputs`` in float32 (:func:`in_float32`)."""

    @abc.abstractmethod
    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """Run the trained mapping on a batch of normalised images (inference); label-map inputs are
        given encoded (:meth:`encoded_inputs`)."""

    def encoded_inputs(self, inputs: Tensor) -> Tensor:
        """Inputs as the generator takes them: images as they are; for :attr:`input_classes`, class ids
        ``N x H x W`` one channel per class (:func:`~gantk.systems.targets.encode_labels`)."""
        return inputs if self.input_classes is None else targets.encode_labels(inputs, self.input_classes)

    def check_direction(self, direction: str) -> None:
        """Raise :class:`~gantk.errors.OptionError` for a ``direction`` :meth:`translate` does not take,
        so a caller can refuse it before reading any image. Accepts every direction by default."""

    def cuda_graph_obstacle(self) -> str | None:
        """Why a training step of this system cannot be recorded once and replayed as a CUDA graph
        (``gantk train --cuda-graph``), or ``None`` when it can.

        A replay repeats the device work of the recorded step: a step must do the same work every time
        it runs, with nothing decided on the CPU from step to step (Python-side randomness or state,
        reading tensor values). A system vouches for that by returning ``None``; the default does not.
        """
        return f"{type(self).__name__} does not say that its step can be replayed (see System.cuda_graph_obstacle)"

    def after_optimizer_step(self, phase: Phase) -> None:
        """What must follow each update of ``phase``'s networks (clipping a critic's weights, say).

        The trainer calls it without gradients right after the phase's optimizer step, in every
        process (keep it deterministic so the processes' weights stay equal), also when the fp16
        gradient scaler skipped that step. Does nothing by default.
        """
