"""A deterministic, resumable, distributed sampler that gives every item its own augmentation seed."""

from __future__ import annotations

import hashlib
from typing import Iterator, Sized

import torch
from torch.utils.data import Sampler


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers; the same parts give the same seed in any process.

    Example:
        >>> derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(1, 0)
        True
    """
    digest = hashlib.blake2b(",".join(str(int(p)) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class ResumableSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, sample_seed)`` pairs for ``dataset[(index, sample_seed)]``.

    The order of an epoch and the seed of every position depend only on ``(seed, epoch)``. With
    ``world_size > 1`` the epoch is padded by repeating its first items (as
    ``DistributedSampler`` does) so every rank gets the same number of items, then dealt out
    round-robin: ranks are disjoint apart from the padding. ``set_start(k)`` skips this rank's
    first ``k`` items, so an interrupted epoch resumes exactly where it stopped.

    Args:
        length: number of items in the dataset.
        seed: base seed of the order and of the sample seeds.
        shuffle: random order per epoch; otherwise ``0 .. length-1``.
        rank: this process's rank.
        world_size: number of processes.

    Example:
        >>> sampler = ResumableSampler(5, seed=0)
        >>> sampler.set_epoch(1)
        >>> sampler.set_start(3)
        >>> len(sampler)
        2
    """

    def __init__(self, length: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        if length < 0 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"invalid sampler settings: length={length}, rank={rank}, world_size={world_size}.")
        self.length = length
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    @property
    def per_rank(self) -> int:
        """Items each rank gets in a full epoch."""
        return -(-self.length // self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to iterate; also resets the start to 0 (call ``set_start`` after this)."""
        self.epoch = epoch
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip this rank's first ``start`` items of the current epoch."""
        if not 0 <= start <= self.per_rank:
            raise ValueError(f"start {start} is outside 0..{self.per_rank}, the items per rank of an epoch.")
        self.start = start

    def epoch_items(self) -> list[tuple[int, int]]:
        """This rank's ``(index, sample_seed)`` pairs of the whole current epoch."""
        if self.length == 0:
            return []
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        order = torch.randperm(self.length, generator=generator) if self.shuffle else torch.arange(self.length)
        total = self.per_rank * self.world_size
        order = order.repeat(-(-total // self.length))[:total]
        seeds = torch.randint(0, 2**62, (total,), generator=generator)
        return list(zip(order[self.rank :: self.world_size].tolist(), seeds[self.rank :: self.world_size].tolist()))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.epoch_items()[self.start :])

    def __len__(self) -> int:
        return self.per_rank - self.start


def in_order(dataset: Sized) -> ResumableSampler:
    """Every item of ``dataset`` once, in order, each with a fixed sample seed: loading it draws
    nothing from the global RNG, so results do not depend on the number of loader workers."""
    return ResumableSampler(len(dataset), seed=0, shuffle=False)
