"""ResumableSampler: deterministic, disjoint equal shares across ranks, exact mid-epoch resume."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from gantk.data import ResumableSampler, open_dataset
from gantk.data.io import write_png


def items(sampler: ResumableSampler) -> list[tuple[int, int]]:
    return list(sampler)


def test_deterministic_in_seed_and_epoch():
    first, again = ResumableSampler(20, seed=3), ResumableSampler(20, seed=3)
    assert items(first) == items(again)
    assert sorted(i for i, _ in items(first)) == list(range(20))
    assert len({seed for _, seed in items(first)}) == 20
    other = ResumableSampler(20, seed=3)
    other.set_epoch(1)
    assert items(other) != items(first)
    assert items(ResumableSampler(20, seed=4)) != items(first)


def test_no_shuffle_keeps_order():
    assert [i for i, _ in ResumableSampler(5, shuffle=False)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("length, world_size", [(10, 3), (12, 4), (2, 3), (7, 1)])
def test_ranks_get_equal_disjoint_shares(length, world_size):
    shares = [items(ResumableSampler(length, seed=1, rank=r, world_size=world_size)) for r in range(world_size)]
    per_rank = -(-length // world_size)
    assert all(len(share) == per_rank for share in shares)
    assert all(len(ResumableSampler(length, rank=r, world_size=world_size)) == per_rank for r in range(world_size))
    indices = [i for share in shares for i, _ in share]
    assert set(indices) == set(range(length))
    assert len(indices) - len(set(indices)) == per_rank * world_size - length  # only the padding repeats
    positions = [item for share in shares for item in share]
    assert len(set(positions)) == len(positions)  # repeated indices get their own seeds


@pytest.mark.parametrize("start", [0, 1, 4, 7])
def test_set_start_resumes_exactly(start):
    sampler = ResumableSampler(13, seed=5, rank=1, world_size=2)
    sampler.set_epoch(2)
    full = items(sampler)
    sampler.set_start(start)
    assert len(sampler) == len(full) - start
    assert full[:start] + items(sampler) == full
    sampler.set_epoch(3)
    assert len(sampler) == len(full)  # a new epoch starts from the beginning


def test_bad_settings():
    with pytest.raises(ValueError):
        ResumableSampler(4, rank=2, world_size=2)
    with pytest.raises(ValueError):
        ResumableSampler(4).set_start(5)
    assert items(ResumableSampler(0)) == []


def test_drives_a_dataloader(tmp_path):
    for i in range(4):
        image = torch.full((3, 8, 8), 40 * i, dtype=torch.uint8)
        write_png(image, tmp_path / "A" / f"{i}.png")
        write_png(image, tmp_path / "B" / f"{i}.png")
    ds = open_dataset(tmp_path, load_size=8, crop_size=6)
    sampler = ResumableSampler(len(ds), seed=0)
    batches = list(DataLoader(ds, sampler=sampler, batch_size=2))
    again = list(DataLoader(ds, sampler=sampler, batch_size=2, num_workers=1))
    assert len(batches) == 2 and batches[0]["A"].shape == (2, 3, 6, 6)
    assert all(torch.equal(a["A"], b["A"]) and a["A_path"] == b["A_path"] for a, b in zip(batches, again))


def test_items_in_order_and_dealt_round_robin_across_processes():
    from gantk.data.sampler import derive_seed, in_order

    assert [index for index, _ in in_order(range(7))] == list(range(7))
    assert [index for index, _ in ResumableSampler(6, shuffle=False, rank=1, world_size=2)] == [1, 3, 5]
    seeds = [derive_seed(i) for i in range(200)]
    assert all(0 <= seed < 2**63 for seed in seeds) and max(seeds) > 2**60  # the whole 63-bit range
