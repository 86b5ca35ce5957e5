"""Unpaired translation by patchwise contrastive learning (CUT, Park et al. 2020): one generator, one
discriminator, and PatchNCE, which makes each patch of an output closer, in the generator's own encoder
features, to the input patch at its place than to the input's other patches."""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import OptionError
from ..nn.init import init_weights
from ..objectives.base import LossContext
from ..objectives.spec import ObjectiveSet
from ..plugins import Components
from .base import (Nets, Phase, System, check_discriminator_matches_objective, check_unpaired_images, critic_steps,
                   disc_augmentation, generated)

PROJECTION_WIDTH = 256  # CUT's netF_nc
NEGATIVE_SELF = -10.0  # the logit a patch gets against itself among the negatives, as CUT masks it
NCE_DEFAULTS = {"nce_weight": 1.0, "nce_identity": True, "patches": 256, "temperature": 0.07, "flip_equivariance": False}
NORM_EPS = 1e-7  # added to each vector's length, as CUT's Normalize does (F's first outputs are tiny: it matters)


class PatchProjection(nn.Module):
    """CUT's ``netF`` (mlp_sample): the features of the patches at ``patch_ids`` of each encoder layer, through a
    two-layer MLP of that layer (``PROJECTION_WIDTH`` wide), each vector then divided by its length plus ``NORM_EPS``."""

    def __init__(self, channels: tuple[int, ...], width: int = PROJECTION_WIDTH):
        super().__init__()
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, width), nn.ReLU(), nn.Linear(width, width)) for c in channels)
        init_weights(self, "xavier", 0.02)

    def forward(self, features: list[Tensor], patch_ids: list[Tensor]) -> list[Tensor]:
        """``(N * patches) x width`` vectors per layer, from its ``N x C x H x W`` features and patch indices (into H * W)."""
        projected = []
        for mlp, layer, ids in zip(self.mlps, features, patch_ids, strict=True):
            patches = layer.flatten(2).transpose(1, 2)[:, ids].flatten(0, 1)  # N * patches x C, image by image
            vectors = mlp(patches)
            projected.append(vectors / (vectors.norm(dim=1, keepdim=True) + NORM_EPS))
        return projected


def patch_ids(features: list[Tensor], count: int) -> list[Tensor]:
    """For each layer, ``count`` distinct positions drawn at random (all of them where it has fewer), shared by
    the images of the batch."""
    return [torch.randperm(layer.shape[2] * layer.shape[3], device=layer.device)[:count] for layer in features]


def patch_nce(query: Tensor, key: Tensor, images: int, temperature: float) -> Tensor:
    """PatchNCE (InfoNCE over patches) of ``query`` against ``key``, both ``(images * patches) x D`` unit vectors:
    for each query, the cross-entropy of picking its own key among the keys of the other patches of its image,
    with logits the dot products over ``temperature``; the mean over queries. Keys take no gradient."""
    key = key.detach()
    positive = (query * key).sum(1, keepdim=True)
    query_by_image, key_by_image = query.view(images, -1, query.shape[1]), key.view(images, -1, key.shape[1])
    negative = query_by_image @ key_by_image.transpose(1, 2)
    same = torch.eye(negative.shape[1], dtype=torch.bool, device=negative.device)[None]
    negative = negative.masked_fill(same, NEGATIVE_SELF).flatten(0, 1)
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))


class ContrastiveSystem(System):
    """G: A -> B judged by an unconditional discriminator of B, and PatchNCE between each input and its output.

    Recipe options (CUT's defaults): ``nce_weight`` (1; FastCUT's 10) weighs PatchNCE, ``nce_identity`` (true;
    FastCUT's false) adds PatchNCE between each B image and G's output for it, averaged with the first,
    ``patches`` (256) per layer and image, ``temperature`` (0.07), ``flip_equivariance`` (false; FastCUT's true)
    flips the step's inputs with probability 1/2 and G's features of its outputs back. The encoder layers are
    those the generator names (``nce_channels``: the resnet generators of 5 blocks or more). ``--loss`` holds the adversarial
    term (CUT's lsgan), and may add others that need no target. The projection network ``F`` trains with G.
    """

    trains_unpaired = True

    def __init__(self, config: dict[str, Any], components: Components):
        super().__init__(config)
        channels = config["channels"]
        check_unpaired_images(config, "contrastive translation", "discriminator sees B's images")
        self.nce = nce_options(config.get("recipe_opt") or {})
        self.objective = ObjectiveSet.from_spec(config["loss"], components.registry("objective"), config.get("loss_opt"))
        unfit = [t.name for t in self.objective.terms if t.objective.compares_pairs or t.objective.needs_masks
                 or getattr(t.objective, "gives_back", None)]
        if unfit:
            raise OptionError(f"{' and '.join(unfit)} {'need' if len(unfit) > 1 else 'needs'} a target for each output or a "
                              "generator each way, which contrastive translation does not have: drop it from --loss "
                              "(PatchNCE, weighted by --recipe-opt nce_weight, ties each output to its input).")
        if channels["A"] != channels["B"]:
            raise OptionError(f"PatchNCE runs G's encoder on its outputs, so A and B need one channel count, and the data has "
                              f"{channels['A']} and {channels['B']}: train on images of one kind (RGB or grey) on both sides.")
        disc = config.get("disc")
        if not disc:
            raise OptionError("contrastive translation trains its generator against a discriminator (PatchNCE alone, the "
                              "reference's --lambda_GAN 0, is not built): choose one with --disc (the recipe's: patch70).")
        check_discriminator_matches_objective(disc, self.objective)
        n_critic = critic_steps(config)
        self.disc_augment = disc_augmentation(config)
        generator = self.add_network("G", components, "generator", config["gen"], in_channels=channels["A"],
                                     out_channels=channels["B"], **(config.get("gen_opt") or {}))
        nce_channels = tuple(getattr(generator, "nce_channels", ()))
        if not nce_channels:
            raise OptionError(f"contrastive translation compares the generator's encoder features at CUT's layers, up to the "
                              f"fifth residual block, and --gen {config['gen']} with these options names none (nce_channels): "
                              "use resnet9 or resnet6, with n_blocks of 5 or more.")
        self.networks["F"] = PatchProjection(nce_channels)
        self.add_network("D", components, "discriminator", disc, in_channels=channels["B"], **(config.get("disc_opt") or {}))
        self.phases = (Phase("D", ("D",)), Phase("G", ("G", "F"), frozen=("D",), every=n_critic))  # CUT's order

    def cuda_graph_obstacle(self) -> str | None:
        return "PatchNCE draws new patch positions each step"

    def forward(self, batch: Mapping[str, Tensor], nets: Nets) -> dict[str, Tensor]:
        channels, gen = self.config["channels"], self.config["gen"]
        flipped = self.nce["flip_equivariance"] and self.training and bool(torch.rand(()) < 0.5)  # torch's saved stream
        sides = "AB" if self.nce["nce_identity"] else "A"  # through G in one batch, as CUT's
        inputs = torch.cat([batch[side] for side in sides])
        inputs = inputs.flip(3) if flipped else inputs
        fakes = generated(nets["G"], inputs, channels["B"], gen).split([len(batch[side]) for side in sides])
        outputs = dict(zip(("fake_B", "idt_B"), fakes))
        if self.nce["flip_equivariance"]:
            outputs["flipped"] = torch.tensor(flipped)
        return outputs

    def _context(self, batch: Mapping[str, Tensor], fake: Tensor, nets: Nets) -> LossContext:
        return LossContext(input=batch["A"], fake=fake, real=batch["B"], discriminator=nets.get("D"), conditional=False,
                           augment=self.discriminator_augment(fake), progress=self.training_progress)

    def nce_loss(self, source: Tensor, output: Tensor, nets: Nets, flipped: bool = False) -> Tensor:
        """PatchNCE between ``source`` images and G's ``output`` for them (for them ``flipped`` horizontally), averaged
        over the encoder layers: the output's patches are the queries, the source's at the same places the keys."""
        with torch.no_grad():  # the keys take no gradient
            keys = nets["G"](source, encode=True)
        queries = nets["G"](output, encode=True)
        if flipped:
            queries = [layer.flip(3) for layer in queries]
        ids = patch_ids(keys, self.nce["patches"])
        with torch.autocast(source.device.type, enabled=False):  # logits over a temperature of 0.07: float32
            with torch.no_grad():
                projected_keys = nets["F"]([layer.float() for layer in keys], ids)
            projected_queries = nets["F"]([layer.float() for layer in queries], ids)
            losses = [patch_nce(q, k, len(source), self.nce["temperature"]) for q, k in zip(projected_queries, projected_keys)]
        return torch.stack(losses).mean()

    def phase_losses(self, phase: Phase, batch: Mapping[str, Tensor], outputs: dict[str, Tensor], nets: Nets) -> dict[str, Tensor]:
        fake = outputs["fake_B"]
        if phase.name != "G":
            terms = self.objective.discriminator_losses(self._context(batch, fake.detach(), nets))
            return {f"D/{name}": value for name, value in terms.items()}
        losses = {f"G/{name}": value for name, value in self.objective.generator_losses(self._context(batch, fake, nets)).items()}
        flipped = bool(outputs.get("flipped", False))
        nce = self.nce_loss(batch["A"], fake, nets, flipped)
        if self.nce["nce_identity"]:
            nce = (nce + self.nce_loss(batch["B"], outputs["idt_B"], nets, flipped)) / 2
        losses["G/nce"] = self.nce["nce_weight"] * nce
        return losses

    def sample_images(self, batch: Mapping[str, Tensor], outputs: dict[str, Tensor]) -> list[Tensor]:
        """A, G(A), B and, with nce_identity, G(B) (outputs of flipped inputs flipped back)."""
        shown = [outputs[name].detach() for name in ("fake_B", "idt_B") if name in outputs]
        if bool(outputs.get("flipped", False)):
            shown = [images.flip(3) for images in shown]
        return [batch["A"], shown[0], batch["B"], *shown[1:]]

    def check_direction(self, direction: str) -> None:
        if direction != "AtoB":
            source, target = ("B", "A") if self.config.get("direction") == "BtoA" else ("A", "B")
            raise OptionError(f"a contrastive (cut) model maps its input to its output only: use direction 'AtoB' (the default; "
                              f"this model maps the data's {source} images to {target}); for the reverse mapping, train "
                              "another model with the other --direction.")

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        self.check_direction(direction)
        return generated(self.translating("G"), images, self.config["channels"]["B"], self.config["gen"])


def nce_options(recipe_opt: Mapping[str, Any]) -> dict[str, Any]:
    """The PatchNCE settings of ``recipe_opt``, checked (the recipe gives their defaults)."""
    options = {key: recipe_opt.get(key, default) for key, default in NCE_DEFAULTS.items()}
    for key in ("nce_weight", "temperature"):
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (
                key == "temperature" and value == 0):
            least = "above 0" if key == "temperature" else "of at least 0"
            raise OptionError(f"--recipe-opt {key}={value!r} is not valid: a number {least} (CUT's is {NCE_DEFAULTS[key]}).")
    if isinstance(options["patches"], bool) or not isinstance(options["patches"], int) or options["patches"] < 2:
        raise OptionError(f"--recipe-opt patches={options['patches']!r} is not valid: a whole number of at least 2 (CUT's is "
                          f"{NCE_DEFAULTS['patches']}), the patches per layer and image PatchNCE contrasts.")
    for key in ("nce_identity", "flip_equivariance"):
        if not isinstance(options[key], bool):
            raise OptionError(f"--recipe-opt {key}={options[key]!r} is not valid: true or false.")
    return {**options, "nce_weight": float(options["nce_weight"]), "temperature": float(options["temperature"])}
