"""Paired translation: one generator A -> B, optionally against one discriminator (pix2pix, segmentation)."""

from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor, nn

from ..errors import OptionError
from ..objectives.base import LossContext
from ..objectives.spec import ObjectiveSet
from ..plugins import Components
from . import targets
from .base import Nets, Phase, System, check_discriminator_matches_objective, critic_steps, disc_augmentation, generated


class PairedSystem(System):
    """G: A -> B trained on aligned pairs; D (optional) judges B, seeing A too when conditional.

    With ``num_classes`` set the target is a mask: G outputs logits (one channel for binary
    masks), the objective's pixel terms and D see probabilities, and real masks are one-hot.
    With ``ignore_label`` set too, pixels of the ignored id are 0 in both the real and the fake
    maps, so no term scores them (the ``lovasz`` term leaves them out itself).

    With ``input_classes`` set the inputs are label maps (class ids, encoded one channel per class),
    translated to images: labels to photo.
    """

    def __init__(self, config: dict[str, Any], components: Components):
        super().__init__(config)
        data_format = config.get("data_format")
        if data_format in components.registry("data_format") and components.create("data_format", data_format).paired_targets is None:
            raise OptionError(
                f"this recipe trains on pairs, and {data_format} data has none (an input with its target): train "
                "unpaired data with --recipe cyclegan or cut, or pass paired data."
            )
        channels = config["channels"]
        self.num_classes = config.get("num_classes")
        self.input_classes = config.get("input_classes")
        self.ignores = self.num_classes is not None and config.get("ignore_label") is not None
        gen_opt = dict(config.get("gen_opt") or {})
        if self.num_classes is None:
            out_channels = channels["B"]
        else:
            out_channels = targets.logit_channels(self.num_classes)
            entry = components.registry("generator").get(config["gen"])
            if not entry.takes_option("final_activation"):
                raise OptionError(
                    f"mask targets need the generator to output logits through a final_activation option, which "
                    f"generator '{config['gen']}' does not take: choose another --gen (e.g. unet, resnet9 or smp)."
                )
            gen_opt["final_activation"] = "none"
        self.add_network("G", components, "generator", config["gen"], in_channels=channels["A"], out_channels=out_channels, **gen_opt)
        self.out_channels = out_channels
        self.objective = ObjectiveSet.from_spec(config["loss"], components.registry("objective"), config.get("loss_opt"))
        mask_terms = [t.name for t in self.objective.terms if t.objective.needs_masks]
        image_terms = [t.name for t in self.objective.terms if t.objective.needs_images]
        for term in self.objective.terms:
            if self.num_classes is not None:
                term.objective.check_classes(self.num_classes)
            else:
                term.objective.check_images(channels["B"], config.get("crop_size"))
        if self.num_classes is None and mask_terms:
            fix = ("the data's targets are images (--direction BtoA maps the masks to the images): predict masks with "
                   "--direction AtoB, or train masks to images with terms that score images (the pix2pix recipe, the "
                   f"default, trains with bce+l1@100; this is the {config.get('recipe')} recipe with --loss {config['loss']})"
                   if self.input_classes
                   else "the data are image pairs: train on a segmentation dataset (images/ + masks/), or drop it from --loss")
            raise OptionError(
                f"the {' and '.join(mask_terms)} term{'s score' if len(mask_terms) > 1 else ' scores'} class masks, but {fix}."
            )
        if self.num_classes is not None and image_terms:
            raise OptionError(
                f"the {' and '.join(image_terms)} term{'s score' if len(image_terms) > 1 else ' scores'} images, but the "
                "data's targets are class masks: drop it from --loss."
            )
        unpaired_terms = [t.name for t in self.objective.terms if t.objective.needs_unpaired]
        if unpaired_terms:
            raise OptionError(
                f"the {' and '.join(unpaired_terms)} term{'s need' if len(unpaired_terms) > 1 else ' needs'} a generator "
                "each way (A to B and B to A), which this recipe does not train: drop it from --loss, or train unpaired "
                "data with --recipe cyclegan."
            )
        self.conditional = bool(config.get("conditional", True))
        disc = config.get("disc")
        check_discriminator_matches_objective(disc, self.objective)
        n_critic = critic_steps(config)
        self.disc_augment = disc_augmentation(config)
        if disc:
            d_in = out_channels + (channels["A"] if self.conditional else 0)
            self.add_network("D", components, "discriminator", disc, in_channels=d_in, **(config.get("disc_opt") or {}))
            self.phases = (Phase("D", ("D",)), Phase("G", ("G",), frozen=("D",), every=n_critic))
        else:
            self.phases = (Phase("G", ("G",)),)

    def cuda_graph_obstacle(self) -> str | None:
        return self.objective.cuda_graph_obstacle()  # the same networks every step; dropout draws on the device

    def _visible(self, output: Tensor) -> Tensor:
        return output if self.num_classes is None else targets.probabilities(output)

    def _real(self, target: Tensor) -> Tensor:
        return target if self.num_classes is None else targets.encode_mask(target, self.num_classes)

    def forward(self, batch: Mapping[str, Tensor], nets: Nets) -> dict[str, Tensor]:
        inputs = self.encoded_inputs(batch["A"])
        logits = generated(nets["G"], inputs, self.out_channels, self.config["gen"])
        return {"fake_logits": logits, "fake": self._visible(logits)}

    def phase_losses(self, phase: Phase, batch: Mapping[str, Tensor], outputs: dict[str, Tensor], nets: Nets) -> dict[str, Tensor]:
        kept = targets.kept_pixels(batch["B"]) if self.ignores else None
        real = self._real(batch["B"])
        ctx = LossContext(
            input=self.encoded_inputs(batch["A"]),
            fake=outputs["fake"] if kept is None else outputs["fake"] * kept,
            real=real,
            fake_logits=outputs["fake_logits"],
            target=batch["B"],
            kept=kept,
            discriminator=nets.get("D"),
            conditional=self.conditional,
            augment=self.discriminator_augment(real),
            progress=self.training_progress,
        )
        if phase.name == "D":
            losses = self.objective.discriminator_losses(ctx)
        else:
            losses = self.objective.generator_losses(ctx)
        return {f"{phase.name}/{name}": value for name, value in losses.items()}

    def display(self, images: Tensor, *, side: str) -> Tensor:
        """Images of side "A" or "B" (masks: class ids, one-hot maps or probabilities) for a grid."""
        if side == "A":
            return targets.shown_inputs(images, self.input_classes)
        return targets.shown(images, self.num_classes)

    def sample_images(self, batch: Mapping[str, Tensor], outputs: dict[str, Tensor]) -> list[Tensor]:
        return [
            self.display(batch["A"], side="A"),
            self.display(outputs["fake"].detach(), side="B"),
            self.display(batch["B"], side="B"),
        ]

    def check_direction(self, direction: str) -> None:
        if direction != "AtoB":
            source, target = ("B", "A") if self.config.get("direction") == "BtoA" else ("A", "B")
            maps = ("the data's masks to its images" if self.input_classes is not None
                    else f"the data's {source} images to {target}")
            raise OptionError(
                f"a paired model maps its input to its output only: use direction 'AtoB' (the default; this model "
                f"maps {maps}). Direction 'BtoA' is for cyclegan models; for the "
                "reverse mapping, train another model with the other --direction."
            )

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        self.check_direction(direction)
        generator = self.translation_generator()
        return self._visible(generated(generator, images, self.out_channels, self.config["gen"]))

    def translation_generator(self) -> nn.Module:
        """The network :meth:`translate` runs: ``G`` (the average of its weights, where the run keeps one), or in a
        subclass another with its architecture."""
        return self.translating("G")
