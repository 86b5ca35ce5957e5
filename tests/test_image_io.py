"""Reading and writing image files: channel counts, bit depths and colour models as a user's files have them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gantk.data.io import list_images, probe, read_image, write_png


def test_gray_jpegs_are_one_channel(tmp_path):
    Image.new("L", (8, 6), 90).save(tmp_path / "a.jpg")
    assert (probe(tmp_path / "a.jpg").channels, read_image(tmp_path / "a.jpg").shape) == (1, (1, 6, 8))


def test_gray_and_alpha_pngs_are_one_channel(tmp_path):
    Image.new("LA", (8, 6), (90, 200)).save(tmp_path / "a.png")
    assert (probe(tmp_path / "a.png").channels, read_image(tmp_path / "a.png").shape) == (1, (1, 6, 8))


def test_sixteen_bit_pngs_keep_their_high_byte(tmp_path):
    Image.fromarray(np.full((6, 8), 0x1234, np.uint16)).save(tmp_path / "depth.png")
    image = read_image(tmp_path / "depth.png")
    assert image.dtype == torch.uint8 and image.shape == (1, 6, 8) and set(image.flatten().tolist()) == {0x12}


def test_cmyk_jpegs_are_read_as_rgb(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "red.jpg")
    image = read_image(tmp_path / "red.jpg")
    assert image.shape[0] == 3
    expected = torch.tensor(Image.open(tmp_path / "red.jpg").convert("RGB").getpixel((4, 4)), dtype=torch.float)
    assert torch.allclose(image[:, 4, 4].float(), expected, atol=8)


@pytest.mark.parametrize("value, pixel", [(-1.0, 0), (0.0, 128), (1.0, 255)])
def test_written_pngs_round_to_the_nearest_level(tmp_path, value, pixel):
    write_png(torch.full((1, 2, 2), value), tmp_path / "a.png")
    assert set(read_image(tmp_path / "a.png").flatten().tolist()) == {pixel}


def test_written_pngs_drop_alpha_not_colour(tmp_path):
    rgba = torch.tensor([10, 20, 30, 40], dtype=torch.uint8).view(4, 1, 1).expand(4, 2, 2).contiguous()
    write_png(rgba, tmp_path / "a.png")
    assert read_image(tmp_path / "a.png")[:, 0, 0].tolist() == [10, 20, 30]


def test_file_name_case_does_not_hide_images(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.JPG", format="JPEG")
    for name in ("b.Png", ".hidden.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name, format="PNG")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.Png"]
