"""The original WGAN (Arjovsky et al. 2017): a critic kept Lipschitz by clipping its weights.

A recipe whose system is pix2pix's paired system with one more rule: after each update of a
discriminator, every one of its parameters is clamped to ``[-clip, clip]``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.nn.utils import parametrize

from gantk.errors import OptionError
from gantk.plugins import Components
from gantk.recipes import pix2pix
from gantk.recipes.base import Recipe
from gantk.systems import PairedSystem
from gantk.systems.base import Phase


class WeightClippedSystem(PairedSystem):
    """Paired translation whose discriminator's weights are clipped to ``[-clip, clip]`` after each of its steps."""

    def __init__(self, config: dict[str, Any], components: Components):
        super().__init__(config, components)
        clip = config["recipe_opt"]["clip"]
        if not (math.isfinite(clip) and clip > 0):
            raise OptionError(f"--recipe-opt clip must be a finite positive number (0.01 in the paper), got {clip}.")
        self.clip = float(clip)
        self.critics = [name for name, (kind, _) in self.network_parts.items() if kind == "discriminator"]
        for name in self.critics:
            if any(parametrize.is_parametrized(module) for module in self.networks[name].modules()):
                raise OptionError(
                    f"--recipe wgan-clip clips the weights of discriminator '{config['disc']}', but it reparametrizes them "
                    "(spectral norm, say: the weights it computes with are not the ones clipped). Use a plain discriminator "
                    "(e.g. --disc patch70), or train an sn-* critic with --recipe pix2pix --loss wgan+l1."
                )

    @torch.no_grad()
    def after_optimizer_step(self, phase: Phase) -> None:
        for name in self.critics:
            if name in phase.trains:
                for parameter in self.networks[name].parameters():
                    parameter.clamp_(-self.clip, self.clip)


def wgan_clip() -> Recipe:
    """WGAN + L1: a weight-clipped critic (clip 0.01), 5 critic steps per G step, lr 5e-5 (Arjovsky et al. 2017)."""
    return Recipe(
        name="wgan-clip",
        system=WeightClippedSystem,
        defaults={
            **pix2pix().defaults,
            "loss": "wgan+l1@100", "disc_opt": {"norm": "instance"}, "n_critic": 5,
            "lr": 5e-5, "beta1": 0.0, "beta2": 0.99, "decay_start": 1.0,
        },
        source="Arjovsky et al. 2017, algorithm 1 (Adam with beta1 = 0 standing in for RMSProp), on pix2pix's networks and L1 term",
        options={"clip": 0.01},
    )
