"""Unpaired translation: two generators and two discriminators tied by cycle consistency (CycleGAN)."""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ..errors import OptionError
from ..nn import buffers_kept
from ..objectives.base import LossContext
from ..objectives.cycle import IdentityLoss
from ..objectives.spec import ObjectiveSet
from ..plugins import Components
from .base import (Nets, Phase, System, check_discriminator_matches_objective, check_unpaired_images, critic_steps,
                   disc_augmentation, generated)
from .image_pool import ImagePool

DOMAIN_WEIGHTS = {"weight_A": 1.0, "weight_B": 1.0}  # the reference's lambda_A and lambda_B, over the cycle term's 10

# direction -> (generator, reverse generator, discriminator of the output domain, input side, output side)
DIRECTIONS = {
    "AtoB": ("G_AB", "G_BA", "D_B", "A", "B"),
    "BtoA": ("G_BA", "G_AB", "D_A", "B", "A"),
}


class CycleSystem(System):
    """G_AB: A -> B and G_BA: B -> A, each judged by an unconditional discriminator of its output domain.

    The objective spec applies to both directions (``lsgan+cycle+identity`` gives each generator
    an adversarial, a cycle and an identity term). The recipe options ``weight_A`` and ``weight_B`` (default 1)
    scale the terms that give back each domain's images, as the reference's ``lambda_A`` and ``lambda_B`` do:
    ``weight_A`` scales A's cycle (A -> B -> A) and the identity term of G_BA (fed A's images), ``weight_B``
    the other two. Each discriminator learns from a pool of past fakes (``pool_size``, 0 turns it off).
    Phases follow the reference: G step (D frozen), then D step.
    """

    trains_unpaired = True

    def __init__(self, config: dict[str, Any], components: Components):
        super().__init__(config)
        channels = config["channels"]
        check_unpaired_images(config, "cycle translation", "discriminators see one domain's images")
        if config.get("direction", "AtoB") != "AtoB":
            raise OptionError("cycle translation learns both directions at once: train with --direction AtoB and "
                              "translate with --direction BtoA for the reverse mapping.")
        self.objective = ObjectiveSet.from_spec(config["loss"], components.registry("objective"), config.get("loss_opt"))
        paired_terms = [t.name for t in self.objective.terms if t.objective.compares_pairs or t.objective.needs_masks]
        if paired_terms:
            raise OptionError(
                f"{' and '.join(paired_terms)} {'score' if len(paired_terms) > 1 else 'scores'} an output against its "
                "own target, which unpaired data does not have: drop it from --loss (cycle and identity are the "
                "reconstruction terms of unpaired training)."
            )
        if any(isinstance(t.objective, IdentityLoss) for t in self.objective.terms) and channels["A"] != channels["B"]:
            raise OptionError(
                f"the identity term feeds each generator the other domain's images, so it needs the same channel count in A "
                f"and B (got {channels['A']} and {channels['B']}): drop 'identity' from --loss (the recipe's "
                f"default without it: --loss lsgan+cycle@10), or store both domains' images with one channel count "
                "(gray images saved as RGB, say)."
            )
        self.domain_weights = domain_weights(config.get("recipe_opt") or {})
        self.gives_back: dict[str, str] = {}  # the terms that give back a domain's images: the input's or the output's
        for term in self.objective.terms:
            side = getattr(term.objective, "gives_back", None)
            if side not in (None, "input", "output"):
                raise OptionError(f"objective {term.name!r} (plugin '{term.plugin}') has gives_back={side!r}: it is 'input' (a term "
                                  "comparing with the input, as a cycle term does), 'output' (with the target domain's "
                                  "images, as an identity term does) or None.")
            if side is not None:
                self.gives_back[term.name] = side
        disc = config.get("disc")
        check_discriminator_matches_objective(disc, self.objective)
        n_critic = critic_steps(config)
        self.disc_augment = disc_augmentation(config)
        gen_opt = config.get("gen_opt") or {}
        self.add_network("G_AB", components, "generator", config["gen"], in_channels=channels["A"], out_channels=channels["B"], **gen_opt)
        self.add_network("G_BA", components, "generator", config["gen"], in_channels=channels["B"], out_channels=channels["A"], **gen_opt)
        generators = ("G_AB", "G_BA")
        if disc:
            disc_opt = config.get("disc_opt") or {}
            self.add_network("D_A", components, "discriminator", disc, in_channels=channels["A"], **disc_opt)
            self.add_network("D_B", components, "discriminator", disc, in_channels=channels["B"], **disc_opt)
            pool_size = int(config.get("pool_size", 50))
            self.pools = nn.ModuleDict({"D_A": ImagePool(pool_size), "D_B": ImagePool(pool_size)})
            self.phases = (Phase("G", generators, frozen=("D_A", "D_B"), every=n_critic), Phase("D", ("D_A", "D_B")))
        else:
            self.phases = (Phase("G", generators),)

    def cuda_graph_obstacle(self) -> str | None:
        if any(pool.size for pool in getattr(self, "pools", {}).values()):
            return "its image pools choose past fakes on the CPU each step; add --pool-size 0 to train without them"
        return self.objective.cuda_graph_obstacle()

    def forward(self, batch: Mapping[str, Tensor], nets: Nets) -> dict[str, Tensor]:
        channels, gen = self.config["channels"], self.config["gen"]
        return {
            "fake_B": generated(nets["G_AB"], batch["A"], channels["B"], gen),
            "fake_A": generated(nets["G_BA"], batch["B"], channels["A"], gen),
        }

    def _context(self, direction: str, batch: Mapping[str, Tensor], fake: Tensor, nets: Nets) -> LossContext:
        gen, reverse, disc, source, target = DIRECTIONS[direction]
        return LossContext(
            input=batch[source],
            fake=fake,
            real=batch[target],
            discriminator=nets.get(disc),
            conditional=False,
            augment=self.discriminator_augment(fake),
            reconstruct=lambda: nets[reverse](fake),
            identity=lambda: nets[gen](batch[target]),
            progress=self.training_progress,
        )

    def phase_losses(self, phase: Phase, batch: Mapping[str, Tensor], outputs: dict[str, Tensor], nets: Nets) -> dict[str, Tensor]:
        losses = {}
        for direction, (gen, _, disc, source, target) in DIRECTIONS.items():
            fake = outputs[f"fake_{target}"]
            if phase.name == "G":
                terms = self.objective.generator_losses(self._context(direction, batch, fake, nets))
                for name, side in self.gives_back.items():
                    if name in terms:
                        terms[name] = terms[name] * self.domain_weights[source if side == "input" else target]
                losses.update({f"{gen}/{name}": value for name, value in terms.items()})
            else:
                pooled = self.pools[disc].query(fake.detach())
                terms = self.objective.discriminator_losses(self._context(direction, batch, pooled, nets))
                losses.update({f"{disc}/{name}": value for name, value in terms.items()})
        return losses

    def sample_images(self, batch: Mapping[str, Tensor], outputs: dict[str, Tensor]) -> list[Tensor]:
        """A, G_AB(A), G_BA(G_AB(A)), B, G_BA(B), G_AB(G_BA(B)), as the reference's visuals show them; the
        reconstructions leave the networks' statistics and the random stream as training left them."""
        fake_B, fake_A = outputs["fake_B"].detach(), outputs["fake_A"].detach()
        devices = [fake_B.device] if fake_B.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices), buffers_kept(self):
            reconstructed_A, reconstructed_B = self.networks["G_BA"](fake_B), self.networks["G_AB"](fake_A)
        return [batch["A"], fake_B, reconstructed_A, batch["B"], fake_A, reconstructed_B]

    def check_direction(self, direction: str) -> None:
        if direction not in DIRECTIONS:
            raise OptionError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}.")

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        self.check_direction(direction)
        gen, _, _, _, target = DIRECTIONS[direction]
        return generated(self.translating(gen), images, self.config["channels"][target], self.config["gen"])


def domain_weights(recipe_opt: Mapping[str, Any]) -> dict[str, float]:
    """The scales of the terms that give back A's and B's images: ``weight_A`` and ``weight_B`` (default 1)."""
    weights = {}
    for side in "AB":
        value = recipe_opt.get(f"weight_{side}", DOMAIN_WEIGHTS[f"weight_{side}"])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise OptionError(f"--recipe-opt weight_{side}={value!r} is not valid: it scales the terms that give back {side}'s "
                              "images (cycle, identity), a number of at least 0 (1 keeps them as --loss weights them).")
        weights[side] = float(value)
    return weights
