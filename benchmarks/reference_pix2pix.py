"""A plain eager PyTorch pix2pix training loop, written as the paper's reference code does it.

No gantk machinery: two Adam optimizers, ``BCEWithLogits + λ·L1``, a D step then a G step with
D's ``requires_grad`` turned off, data prepared on the CPU. gantk's benchmarks compare the
trainer against this loop with identical networks.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as TF


def linear_decay(total_steps: int, decay_start: float = 0.5):
    """The paper's schedule as a ``LambdaLR`` factor: constant, then linearly to 0 over the rest."""
    start = math.floor(total_steps * decay_start)

    def factor(step: int) -> float:
        return 1.0 if step < start else max(0.0, 1.0 - (step - start) / max(1, total_steps - start))

    return factor


class Pix2PixStep:
    """One pix2pix iteration: ``fake = G(A)``; D on ``cat(A, fake.detach())`` and ``cat(A, B)``; G with D frozen.

    Args:
        G: the generator (A -> B).
        D: the conditional discriminator (sees A and B stacked on channels).
        lr, betas: Adam settings of both optimizers (the paper: 2e-4, (0.5, 0.999)).
        lambda_l1: weight of the L1 term.
        total_steps: length of the linear-decay schedule (``None``: constant lr).
        fused: Adam's ``fused`` argument (``None``: PyTorch's default implementation).
    """

    def __init__(self, G: nn.Module, D: nn.Module, *, lr: float = 2e-4, betas=(0.5, 0.999), lambda_l1: float = 100.0,
                 total_steps: int | None = None, fused: bool | None = None):
        self.G, self.D, self.lambda_l1 = G, D, lambda_l1
        self.opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas, fused=fused)
        self.opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=betas, fused=fused)
        self.schedulers = [] if total_steps is None else [
            torch.optim.lr_scheduler.LambdaLR(opt, linear_decay(total_steps)) for opt in (self.opt_G, self.opt_D)
        ]
        self.bce = nn.BCEWithLogitsLoss()

    def visible(self, output: Tensor) -> Tensor:
        """What D sees of the generator's output (the image itself)."""
        return output

    def real(self, target: Tensor) -> Tensor:
        """What D sees of the target."""
        return target

    def discriminator_loss(self, pred_real: Tensor, pred_fake: Tensor) -> Tensor:
        return 0.5 * (self.bce(pred_real, torch.ones_like(pred_real)) + self.bce(pred_fake, torch.zeros_like(pred_fake)))

    def generator_loss(self, pred_fake: Tensor, output: Tensor, target: Tensor) -> Tensor:
        return self.bce(pred_fake, torch.ones_like(pred_fake)) + self.lambda_l1 * F.l1_loss(output, target)

    def __call__(self, real_A: Tensor, real_B: Tensor) -> dict[str, float]:
        output = self.G(real_A)
        fake_B = self.visible(output)

        self.D.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        pred_fake = self.D(torch.cat([real_A, fake_B.detach()], 1))
        pred_real = self.D(torch.cat([real_A, self.real(real_B)], 1))
        loss_D = self.discriminator_loss(pred_real, pred_fake)
        loss_D.backward()
        self.opt_D.step()

        self.D.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        pred_fake = self.D(torch.cat([real_A, fake_B], 1))
        loss_G = self.generator_loss(pred_fake, output, real_B)
        loss_G.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)

        for scheduler in self.schedulers:
            scheduler.step()
        return {"D": loss_D.item(), "G": loss_G.item()}


class SegmentationStep(Pix2PixStep):
    """The segmentation variant: G gives binary-mask logits, D sees probabilities, hinge + Lovász losses."""

    def __init__(self, G: nn.Module, D: nn.Module, **kwargs):
        super().__init__(G, D, **kwargs)
        from segmentation_models_pytorch.losses import LovaszLoss

        self.lovasz = LovaszLoss("binary", from_logits=True)

    def visible(self, output: Tensor) -> Tensor:
        return torch.sigmoid(output)

    def real(self, target: Tensor) -> Tensor:
        return target.unsqueeze(1).float()

    def discriminator_loss(self, pred_real: Tensor, pred_fake: Tensor) -> Tensor:
        return 0.5 * (F.relu(1.0 - pred_real).mean() + F.relu(1.0 + pred_fake).mean())

    def generator_loss(self, pred_fake: Tensor, output: Tensor, target: Tensor) -> Tensor:
        return -pred_fake.mean() + self.lovasz(output.float(), target)


class PairedFolder(torch.utils.data.Dataset):
    """``root/A/*`` and ``root/B/*`` pairs with the paper's augmentation: resize, random crop, random flip.

    Random choices come from torch's global RNG, as in the reference code.
    """

    def __init__(self, root: str | Path, load_size: int, crop_size: int, augment: bool = True):
        root = Path(root)
        self.pairs = [(a, root / "B" / a.name) for a in sorted((root / "A").iterdir())]
        self.load_size, self.crop_size, self.augment = load_size, crop_size, augment

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        a_path, b_path = self.pairs[index]
        a, b = (decode_image(str(path), mode=ImageReadMode.UNCHANGED) for path in (a_path, b_path))
        if self.augment:
            a, b = (TF.resize(x, [self.load_size] * 2, antialias=True) for x in (a, b))
            top, left = (int(torch.randint(0, self.load_size - self.crop_size + 1, ())) for _ in range(2))
            a, b = (TF.crop(x, top, left, self.crop_size, self.crop_size) for x in (a, b))
            if torch.rand(()) < 0.5:
                a, b = TF.horizontal_flip(a), TF.horizontal_flip(b)
        else:
            a, b = (TF.resize(x, [self.crop_size] * 2, antialias=True) for x in (a, b))
        return a.float() / 127.5 - 1, b.float() / 127.5 - 1
