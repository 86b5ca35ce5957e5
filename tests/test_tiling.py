"""Translating large images in tiles: where tiles go, how their outputs blend, and the translate paths that use them."""


import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gantk.cli import cli
from gantk.errors import OptionError
from gantk.inference import TrainedModel
from gantk.tiling import checked_tile_overlap, tile_starts, translated_in_tiles
from gantk.train import TrainConfig, Trainer
from helpers import write_paired


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiling")
    data = write_paired(root / "data", count=4, size=40)
    config = TrainConfig(data=str(data), out=str(root / "run"), load_size=36, crop_size=32, batch_size=2, workers=0,
                         max_steps=1, gen_opt={"ngf": 8}, disc_opt={"ndf": 8})
    return Trainer(config, progress=False).fit()


@pytest.mark.parametrize("tile, overlap", [(32, 0), (32, 8), (64, 16), (64, 32)])
def test_tiles_cover_every_side_and_neighbours_share_the_overlap(tile, overlap):
    for length in range(1, 300):
        starts = tile_starts(length, tile, overlap)
        ends = [min(start + tile, length) for start in starts]
        assert starts[0] == 0 and ends[-1] == length and starts == sorted(set(starts))
        assert all(start >= 0 for start in starts)
        assert all(end - next_start >= overlap for end, next_start in zip(ends, starts[1:]))  # no gap, at least the overlap
        assert len(starts) == 1 or (len(starts) - 2) * (tile - overlap) < length - tile  # one tile fewer would not do


def test_a_network_of_one_pixel_at_a_time_gives_the_same_outputs_tiled():
    images = torch.rand(2, 3, 37, 130) * 2 - 1
    pointwise = lambda x: torch.tanh(3 * x[:, :1] - x[:, 1:2]) * x[:, 2:]  # noqa: E731
    calls = []
    tiled = translated_in_tiles(lambda part: calls.append(part.shape) or pointwise(part), images, tile=32, overlap=8)
    torch.testing.assert_close(tiled, pointwise(images))
    assert len(calls) == len(tile_starts(37, 32, 8)) * len(tile_starts(130, 32, 8)) == 2 * 6
    assert set(calls) == {(2, 3, 32, 32)}


def test_tile_outputs_blend_across_the_overlap_without_a_seam():
    """Each tile outputs a constant of its own: pixels one tile covers keep it, and across an overlap the
    blend moves by at most the difference over the overlap's width per pixel."""
    constants = iter(torch.tensor([0.0, 1.0, -1.0, 0.5, 2.0, -2.0]).tolist())
    first_tile = {}

    def run(part):
        value = next(constants)
        first_tile.setdefault("value", value)
        return torch.full((1, 1, *part.shape[-2:]), value)

    tile, overlap = 32, 12
    blended = translated_in_tiles(run, torch.zeros(1, 3, 50, 70), tile, overlap)[0, 0]
    starts_y, starts_x = tile_starts(50, tile, overlap), tile_starts(70, tile, overlap)
    assert len(starts_y) * len(starts_x) == 6
    alone = blended[: starts_y[1], : starts_x[1]]  # covered by the first tile only
    assert torch.all(alone == first_tile["value"])
    assert blended.min() >= -2 and blended.max() <= 2  # a weighted mean of the tiles' outputs
    largest_step = 4 / (overlap + 1) + 1e-5  # constants differ by at most 4
    assert blended.diff(dim=0).abs().max() <= largest_step and blended.diff(dim=1).abs().max() <= largest_step


def test_tiling_options_are_checked_against_the_generators():
    assert checked_tile_overlap(64, None, 32, 32) == 16  # a quarter of the tile
    assert checked_tile_overlap(64, 0, 32, 32) == 0
    assert checked_tile_overlap(np.int64(64), np.int64(32), 32, 32) == 32  # sizes computed with numpy
    for tile, overlap, message in [(48, None, "tile \\(--tile\\) 48 does not fit the generators: they take sides that are multiples "
                                               "of 32; use --tile 64, say"),
                                   (16, None, "use --tile 32, say"), (0, None, "a positive integer, got 0"),
                                   (64, 33, "from 0 to half the tile's 64, 32, got 33"), (64, -1, "got -1")]:
        with pytest.raises(OptionError, match=message):
            checked_tile_overlap(tile, overlap, 32, 32)
    with pytest.raises(OptionError, match="they take sides that are multiples of 4 and at least 12 px; use --tile 12, say"):
        checked_tile_overlap(8, None, 4, 12)


def test_a_model_translates_in_tiles_of_the_given_side(image_run):
    model = TrainedModel.load(image_run, eval_mode=True)
    images = model.inputs(torch.randint(0, 256, (1, 3, 70, 100), dtype=torch.uint8))
    seen = []
    run_system = model.system.translate
    model.system.translate = lambda inputs, direction: seen.append(tuple(inputs.shape)) or run_system(inputs, direction=direction)
    tiled = model.translate(images, tile=64, overlap=16)
    assert tiled.shape == (1, 3, 70, 100) and bool(tiled.isfinite().all())
    assert seen == [(1, 3, 64, 64)] * 4  # rows from 0 and 6, columns from 0 and 36
    torch.testing.assert_close(tiled[..., :6, :36], model.translate(images[..., :64, :64])[..., :6, :36])  # the first tile's own
    assert not torch.allclose(tiled, model.translate(images, pad=True))  # tiles see less than the whole image
    torch.testing.assert_close(model.translate(images, tile=128), model.translate(images, pad=True))  # one tile: the padded whole
    with pytest.raises(OptionError, match="and no tile \\(--tile\\) is given"):
        model.translate(images, pad=True, overlap=8)


def test_gantk_translate_tiles_large_inputs_at_their_own_size(image_run, tmp_path):
    from gantk.data import read_image, write_png

    write_png(torch.rand(3, 90, 150) * 2 - 1, tmp_path / "in" / "large.png")
    result = CliRunner().invoke(cli, ["translate", "--checkpoint", str(image_run), "--size", "native", "--eval-mode", "--tile", "64",
                                      "--tile-overlap", "8", str(tmp_path / "in"), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = read_image(tmp_path / "out" / "large.png")
    model = TrainedModel.load(image_run, eval_mode=True)
    expected = model.translate(model.inputs(read_image(tmp_path / "in" / "large.png")), tile=64, overlap=8)
    assert written.shape == (3, 90, 150)
    torch.testing.assert_close(written, ((expected[0] + 1) * 127.5).round().to(torch.uint8), atol=1, rtol=0)
    for options, message in [(["--tile", "40"], "--tile 64, say"), (["--tile-overlap", "8"], "and no tile (--tile) is given")]:
        result = CliRunner().invoke(cli, ["translate", "--checkpoint", str(image_run), *options, str(tmp_path / "in"), str(tmp_path / "o2")])
        assert result.exit_code != 0 and message in result.output, result.output
        assert not (tmp_path / "o2").exists()


def test_tiles_with_inputs_resized_to_the_crop_are_warned_of(image_run, tmp_path):
    import warnings

    from gantk.data import write_png
    from gantk.errors import GantkWarning
    from gantk.translate import translate

    write_png(torch.rand(3, 90, 150) * 2 - 1, tmp_path / "in" / "large.png")
    with pytest.warns(GantkWarning, match="--tile 64 with --size crop: the model runs on inputs resized to its 32 px crop, one "
                                          "tile each; tiles are for large inputs at their own size"):
        translate(image_run, tmp_path / "in", tmp_path / "crop", tile=64, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GantkWarning)
        translate(image_run, tmp_path / "in", tmp_path / "native", size="native", tile=64, progress=False)
