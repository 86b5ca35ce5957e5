"""A plain eager PyTorch CycleGAN training iteration, written as the reference code does it.

G step with both discriminators frozen (LSGAN + λ·cycle + 0.5·λ·identity, λ = 10), then the
discriminators' step on pools of past fakes. Network names follow gantk's (``G_AB`` maps A to B,
``D_B`` judges domain B).
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ImagePool:
    """The reference image buffer: up to ``size`` past fakes, each query image swapped in with probability 1/2."""

    def __init__(self, size: int = 50):
        self.size, self.images = size, []

    def query(self, images: Tensor) -> Tensor:
        out = []
        for image in images.detach().split(1):
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.random() < 0.5:
                index = random.randrange(self.size)
                out.append(self.images[index])
                self.images[index] = image
            else:
                out.append(image)
        return torch.cat(out)


class CycleGANStep:
    """One CycleGAN iteration on a batch of unpaired ``real_A``, ``real_B``."""

    def __init__(self, G_AB: nn.Module, G_BA: nn.Module, D_A: nn.Module, D_B: nn.Module, *, lr: float = 2e-4,
                 betas=(0.5, 0.999), lambda_cycle: float = 10.0, lambda_identity: float = 0.5, pool_size: int = 50,
                 fused: bool | None = None):
        self.G_AB, self.G_BA, self.D_A, self.D_B = G_AB, G_BA, D_A, D_B
        self.lambda_cycle, self.lambda_identity = lambda_cycle, lambda_identity
        self.opt_G = torch.optim.Adam([*G_AB.parameters(), *G_BA.parameters()], lr=lr, betas=betas, fused=fused)
        self.opt_D = torch.optim.Adam([*D_A.parameters(), *D_B.parameters()], lr=lr, betas=betas, fused=fused)
        self.pool_A, self.pool_B = ImagePool(pool_size), ImagePool(pool_size)

    @staticmethod
    def gan_loss(pred: Tensor, real: bool) -> Tensor:
        return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))

    def discriminator_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * (self.gan_loss(D(real), True) + self.gan_loss(D(fake.detach()), False))

    def __call__(self, real_A: Tensor, real_B: Tensor) -> dict[str, float]:
        fake_B, fake_A = self.G_AB(real_A), self.G_BA(real_B)

        for D in (self.D_A, self.D_B):
            D.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        weight_idt = self.lambda_cycle * self.lambda_identity
        loss_G = (
            self.gan_loss(self.D_B(fake_B), True) + self.gan_loss(self.D_A(fake_A), True)
            + self.lambda_cycle * (F.l1_loss(self.G_BA(fake_B), real_A) + F.l1_loss(self.G_AB(fake_A), real_B))
            + weight_idt * (F.l1_loss(self.G_AB(real_B), real_B) + F.l1_loss(self.G_BA(real_A), real_A))
        )
        loss_G.backward()
        self.opt_G.step()

        for D in (self.D_A, self.D_B):
            D.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D = self.discriminator_loss(self.D_B, real_B, self.pool_B.query(fake_B)) + self.discriminator_loss(
            self.D_A, real_A, self.pool_A.query(fake_A)
        )
        loss_D.backward()
        self.opt_D.step()
        return {"D": loss_D.item(), "G": loss_G.item()}
