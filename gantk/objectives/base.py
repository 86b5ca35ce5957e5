"""The objective contract: a loss term and the context it reads."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Callable, ClassVar, Sequence, Union, overload

import torch
from torch import Tensor, nn

from ..errors import OptionError
from ..registry import built_as

Logits = Union[Tensor, Sequence[Tensor]]  # one map, or one per scale for multi-scale discriminators
# Losses are computed in float32: the largest number it holds, and its smallest at full precision.
FLOAT32_MAX, FLOAT32_TINY = torch.finfo(torch.float32).max, torch.finfo(torch.float32).tiny


@overload
def _in_float32(values: Tensor) -> Tensor: ...


@overload
def _in_float32(values: Sequence[Tensor]) -> list[Tensor]: ...


def _in_float32(values: Logits) -> Logits:
    """Floating-point tensors (or a list of them) in float32, so that losses on them are computed in
    full precision under autocast; class ids are left as they are."""
    if isinstance(values, Tensor):
        return values.float() if values.is_floating_point() else values
    return [_in_float32(scale) for scale in values]


def feature_extractor(discriminator: Any) -> Any:
    """The module whose ``features(x)`` method to call for ``discriminator``, or ``None`` when it has none.

    The wrappers the trainer puts around a network are peeled: ``torch.compile``'s (its module is
    ``_orig_mod``; ``features`` then runs eagerly), ``DistributedDataParallel`` and ``DataParallel``
    (``module``). Calling the inner module bypasses DDP's forward, which is right on the generator's
    side: the discriminator is frozen then, its parameters get no gradients to synchronise. Any
    other wrapper, or a ``features`` attribute that is a submodule rather than a method, counts as none.
    """
    module = unwrapped(discriminator)
    features = getattr(module, "features", None)
    return module if callable(features) and not isinstance(features, nn.Module) else None


def uncompiled(module: Any) -> Any:
    """The module under a ``torch.compile`` wrapper (its ``_orig_mod``), or ``module`` itself: what a
    term calls for a double backward, which compiled graphs do not have (a DDP wrapper stays)."""
    return module._orig_mod if isinstance(module, nn.Module) and "_orig_mod" in module._modules else module


def unwrapped(module: Any) -> Any:
    """The network under the wrappers the trainer may put around it: ``torch.compile``'s (``_orig_mod``),
    ``DistributedDataParallel``'s and ``DataParallel``'s (``module``)."""
    while True:
        if uncompiled(module) is not module:
            module = uncompiled(module)
        elif isinstance(module, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            module = module.module
        else:
            return module


def discriminator_label(discriminator: Any) -> str:
    """How messages name ``discriminator``: its registered name and plugin, else its class."""
    network = unwrapped(discriminator)
    return built_as(network) or f"the discriminator {type(network).__name__}"


def checked_logits(logits: Any, image: Tensor, discriminator: Any, *, from_features: bool = False) -> Logits:
    """``logits`` of ``discriminator`` for ``image``, checked to be ``N x 1 x h x w`` maps (one, or a list of them);
    ``from_features``: they are the last maps of its ``features(x)``."""
    maps = logits if isinstance(logits, (list, tuple)) and logits else [logits]
    if all(isinstance(m, Tensor) and m.dim() == 4 and tuple(m.shape[:2]) == (image.shape[0], 1) for m in maps):
        return logits
    got = [tuple(m.shape) if isinstance(m, Tensor) else type(m).__name__ for m in maps]
    name, got = discriminator_label(discriminator), got[0] if isinstance(logits, Tensor) else got
    if from_features:
        raise OptionError(
            f"the features(x) of {name} end with {got} for an input of {tuple(image.shape)}; they must end "
            "with the logits its forward returns, N x 1 x h x w (or, per scale, lists ending with them)."
        )
    raise OptionError(
        f"{name} returned {got} for an input of {tuple(image.shape)}; a discriminator returns "
        "N x 1 x h x w logits (or a list of such maps, one per scale)."
    )


def logits_of(features: Sequence[Any]) -> Logits:
    """The logits ending ``features(x)``: the last map, or the last map of each scale."""
    return [scale[-1] for scale in features] if isinstance(features[0], (list, tuple)) else features[-1]


class LossContext:
    """What the terms of an objective see for one translation direction (A -> B).

    Args:
        input: the generator's input (the condition), ``N x C_A x H x W``.
        fake: the generator's output in the space the discriminator sees: an image in [-1, 1],
            or mask probabilities (``N x K x H x W``).
        real: the target in the same space as ``fake`` (an image, or one-hot masks).
        fake_logits: the raw generator output (defaults to ``fake``).
        target: the raw target (defaults to ``real``); class ids ``N x H x W`` for masks, -1 where a
            pixel is ignored (``--ignore-label``: ``fake`` and ``real`` are 0 there).
        kept: ``N x 1 x H x W``, 1 at the pixels scored and 0 at ignored ones, where a pixel may be
            ignored; ``None`` (the default) where every pixel is.
        discriminator: the discriminator of domain B, or ``None`` when training without one.
        conditional: the discriminator sees ``cat(input, image)`` rather than the image alone.
        augment: transforms everything the discriminator is shown (``--disc-augment``, see
            :mod:`gantk.nn.diff_augment`), one draw per image for the whole context; ``None``: nothing.
        reconstruct: computes ``G_BA(fake)`` (cycle consistency), called at most once.
        identity: computes ``G_AB(real)`` (identity mapping), called at most once.
        progress: the share of training done before this step, a 0-d float tensor in [0, 1) on the device (a
            tensor, so that a step recorded as a CUDA graph reads each step's value), for terms whose weight
            follows the schedule; ``None`` where the system gives none (outside a trainer's system).

    What terms read (``fake``, ``real``, their raw forms, reconstructions, identity outputs and
    discriminator logits) is float32, also under mixed precision, so losses are computed in full
    precision. Discriminator outputs are computed on first use and shared by all terms of a step;
    when the discriminator's features on the fake are computed (``d_fake_features``, for a term
    that reads them), ``d_fake`` is their last maps: one pass of the discriminator serves both.
    """

    def __init__(
        self,
        *,
        input: Tensor,
        fake: Tensor,
        real: Tensor,
        fake_logits: Tensor | None = None,
        target: Tensor | None = None,
        kept: Tensor | None = None,
        discriminator: nn.Module | Callable[[Tensor], Logits] | None = None,
        conditional: bool = True,
        augment: Callable[[Tensor], Tensor] | None = None,
        reconstruct: Callable[[], Tensor] | None = None,
        identity: Callable[[], Tensor] | None = None,
        progress: Tensor | None = None,
    ):
        self.input = input
        self.fake = _in_float32(fake)
        self.real = _in_float32(real)
        self.fake_logits = self.fake if fake_logits is None else _in_float32(fake_logits)
        self.target = self.real if target is None else _in_float32(target)
        self.kept = kept
        self.discriminator = discriminator
        self.conditional = conditional
        self.augment = augment
        self._reconstruct = reconstruct
        self._identity = identity
        self.progress = progress

    def discriminator_input(self, image: Tensor) -> Tensor:
        """What the discriminator is shown for ``image``: with the condition when conditional, augmented."""
        return self.augmented(torch.cat([self.input, image], dim=1) if self.conditional else image)

    def augmented(self, shown: Tensor) -> Tensor:
        """``shown`` (a discriminator input) as the context's augmentation transforms it."""
        return shown if self.augment is None else self.augment(shown)

    def discriminate(self, image: Tensor) -> Logits:
        if self.discriminator is None:
            raise OptionError(
                "the objective has an adversarial term but no discriminator was given: "
                "choose one with --disc, or drop the adversarial term from --loss."
            )
        shown = self.discriminator_input(image)
        return _in_float32(checked_logits(self.discriminator(shown), shown, self.discriminator))

    @cached_property
    def d_real(self) -> Logits:
        return self.discriminate(self.real)

    @cached_property
    def d_fake(self) -> Logits:
        """Discriminator logits on the fake with gradients flowing back to the generator."""
        if "d_fake_features" in self.__dict__:
            return logits_of(self.d_fake_features)
        return self.discriminate(self.fake)

    @cached_property
    def d_fake_features(self) -> list[Any]:
        """The discriminator's ``features(x)`` on the fake, with gradients flowing back to the generator:
        maps ending with the logits, or one such list per scale (see :func:`feature_extractor`)."""
        module = feature_extractor(self.discriminator)
        if module is None:
            what = "there is no discriminator" if self.discriminator is None else f"{discriminator_label(self.discriminator)} has none"
            raise OptionError(
                f"a term of the objective reads the discriminator's features(x), and {what}: use a discriminator "
                "with features (the built-in PatchGANs, or multiscale from gantk-multiscale)."
            )
        shown = self.discriminator_input(self.fake)
        features = module.features(shown)
        if not isinstance(features, (list, tuple)) or not features:
            raise OptionError(
                f"the features(x) of {discriminator_label(module)} returned a {type(features).__name__}; it must return the list of "
                "feature maps ending with the logits (or one such list per scale)."
            )
        checked_logits(logits_of(features), shown, self.discriminator, from_features=True)
        return _in_float32(list(features))

    @cached_property
    def d_fake_detached(self) -> Logits:
        """Discriminator logits on the fake, cut from the generator (for the discriminator's step)."""
        return self.discriminate(self.fake.detach())

    def discriminator_step_logits(self) -> tuple[Logits, Logits]:
        """``(d_real, d_fake_detached)`` for a discriminator loss.

        The fake pass runs first, as in the reference implementation's pix2pix, so the discriminator's
        normalisation running statistics end each step on the same batch.
        """
        fake = self.d_fake_detached
        return self.d_real, fake

    @cached_property
    def reconstructed(self) -> Tensor:
        if self._reconstruct is None:
            raise OptionError("a term of --loss reads the reconstruction G_BA(G_AB(a)), which only a generator each way gives: "
                              "drop it from --loss, or train unpaired data with --recipe cyclegan.")
        return _in_float32(self._reconstruct())

    @cached_property
    def identity_output(self) -> Tensor:
        if self._identity is None:
            raise OptionError("a term of --loss reads the identity output G_AB(b), which only a generator each way gives: "
                              "drop it from --loss, or train unpaired data with --recipe cyclegan.")
        return _in_float32(self._identity())


class Objective(nn.Module):
    """A loss term. Override ``generator_loss`` and/or ``discriminator_loss``.

    ``adversarial`` terms train against a discriminator (at most one per spec);
    ``default_weight`` is the weight a spec uses when none is written (``l1`` -> 100);
    ``needs_masks`` terms score class masks, so image pairs are refused for them;
    ``needs_images`` terms score image content (a network's features of it), so mask data is refused for them;
    ``compares_pairs`` terms score the output against its own target, so unpaired data is refused for them;
    ``needs_unpaired`` terms read ``ctx.reconstructed`` or ``ctx.identity_output``, which only a system with a
    generator each way (CycleGAN) gives, so the paired recipes refuse them; ``gives_back`` says whose images such a
    term compares with, ``"input"`` (a cycle term: the input's domain) or ``"output"`` (an identity term: the output's),
    which CycleGAN's per-domain weights (``weight_A``, ``weight_B``) scale it by;
    ``reads_discriminator_features`` terms read ``ctx.d_fake_features`` in their generator loss,
    which is then computed first, so the adversarial term takes its logits from the same pass.
    ``cpu_decides`` says why a term's device work is not the same every step (it reads tensor values
    on the CPU, or keeps Python-side state), so a step with it cannot be replayed as a CUDA graph
    (``gantk train --cuda-graph``); ``None`` for a term computed from its inputs alone.
    A method returning ``None`` means the term does not take part in that step. ``prepare`` loads what a term
    needs before training starts; ``check_classes``
    refuses options that do not fit the data's mask classes, and ``check_images`` images a term cannot score,
    before training starts.
    """

    adversarial: ClassVar[bool] = False
    default_weight: ClassVar[float] = 1.0
    needs_masks: ClassVar[bool] = False
    needs_images: ClassVar[bool] = False
    compares_pairs: ClassVar[bool] = False
    needs_unpaired: ClassVar[bool] = False
    gives_back: ClassVar[str | None] = None
    reads_discriminator_features: ClassVar[bool] = False
    cpu_decides: ClassVar[str | None] = None

    def __init__(self) -> None:  # no options: the registry then refuses any (nn.Module's signature takes all)
        super().__init__()

    def generator_loss(self, ctx: LossContext) -> Tensor | None:
        return None

    def discriminator_loss(self, ctx: LossContext) -> Tensor | None:
        return None

    def prepare(self) -> None:
        """Load what the term needs that its options name (a network's weights file, say), raising
        :class:`~gantk.errors.OptionError` for what is missing; called once before training (never for
        translation, which runs no loss). Does nothing by default."""

    def check_classes(self, num_classes: int) -> None:
        """Raise :class:`~gantk.errors.OptionError` when the term's options do not suit masks of
        ``num_classes`` classes (a weight per class, say); called once, on mask data. Accepts any by default."""

    def check_images(self, channels: int, crop_size: int | None) -> None:
        """Raise :class:`~gantk.errors.OptionError` when the term cannot score target images of ``channels``
        channels cropped to ``crop_size`` px (``None``: images keep their size); called once, on image data,
        before training starts. Accepts any by default."""
