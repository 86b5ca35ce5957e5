"""A buffer of past generated images shown to a discriminator (Shrivastava et al. 2017, CycleGAN)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ImagePool(nn.Module):
    """Holds up to ``size`` past fakes; once full, each query image is swapped with a stored one
    with probability 0.5, so the discriminator also sees older generator outputs.

    The stored images travel in ``state_dict`` (extra state), so a resumed run continues exactly.

    Example:
        >>> pool = ImagePool(2)
        >>> pool.query(torch.zeros(3, 1, 4, 4)).shape
        torch.Size([3, 1, 4, 4])
    """

    def __init__(self, size: int = 50):
        super().__init__()
        if size < 0:
            raise ValueError(f"image pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        """Return a batch of the same shape: new images while filling, then a 50/50 mix of new and stored."""
        if self.size == 0:
            return images
        if self.images and self.images[0].device != images.device:  # restored from a checkpoint read on the CPU
            self.images = [image.to(images.device) for image in self.images]
        chosen = []
        for image in images.detach():
            image = image.unsqueeze(0).clone()  # its own memory: a compiled generator may reuse that of its outputs
            if len(self.images) < self.size:
                self.images.append(image)
                chosen.append(image)
            elif torch.rand(()) < 0.5:
                index = int(torch.randint(0, self.size, ()))
                chosen.append(self.images[index])
                self.images[index] = image
            else:
                chosen.append(image)
        return torch.cat(chosen, dim=0)

    def get_extra_state(self) -> Tensor:
        return torch.cat(self.images) if self.images else torch.empty(0)

    def set_extra_state(self, state: Tensor) -> None:
        self.images = list(state.split(1)) if state.numel() else []
