"""Reading and writing image files: channel counts, bit depths and colour models as a user's files have them."""

from __future__ import annotations

import io
import os
import re
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from gantk.data.io import (
    _reason, has_images, has_wide_ids, image_from_pil, infer_channels, list_images, other_files, probe, read_image, read_mask, to_channels,
    write_mask, write_png,
)
from gantk.data import io as io_module
from gantk.errors import DataError, OptionError


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


def test_written_pngs_keep_their_alpha(tmp_path):
    rgba = torch.tensor([10, 20, 30, 40], dtype=torch.uint8).view(4, 1, 1).expand(4, 2, 2).contiguous()
    write_png(rgba, tmp_path / "a.png")
    assert read_image(tmp_path / "a.png")[:, 0, 0].tolist() == [10, 20, 30, 40]
    write_png(rgba[2:], tmp_path / "gray.png")
    assert Image.open(tmp_path / "gray.png").getpixel((0, 0)) == (30, 40)  # read_image drops a gray image's alpha


def test_file_name_case_does_not_hide_images(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.JPG", format="JPEG")
    for name in ("b.Png", ".hidden.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name, format="PNG")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.Png"]


def test_a_truncated_png_is_reported_without_the_decoder_source(tmp_path):
    path = write_png(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8), tmp_path / "cut.png")
    with path.open("r+b") as file:
        file.truncate(100)
    with pytest.raises(DataError, match=r"cut.png: cannot be decoded as an image \(\w") as info:
        read_image(path)
    assert ".cpp" not in str(info.value) and "operator()" not in str(info.value)


@pytest.mark.parametrize("read", [read_image, read_mask])
def test_a_file_gone_since_the_data_were_listed_is_named_as_such(tmp_path, read):
    with pytest.raises(DataError, match=r"gone.png: not found: it was moved or deleted after gantk listed the data; put it back"):
        read(tmp_path / "gone.png")


def test_a_reason_keeps_a_quoted_path_whole_and_drops_the_advice():
    denied = "[Errno 13] Permission denied: '/data/odd dir. name/q.png'"
    assert _reason(RuntimeError(f"read_file, /src/read_write_file.cpp:78, {denied}")) == denied
    advised = "decode_png, /src/decode_png.cpp:79, Out of bound read. Probably, the input image is corrupted"
    assert _reason(RuntimeError(advised)) == "out of bound read"


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
@pytest.mark.parametrize("orientation, shape", [(1, (3, 6, 8)), (3, (3, 6, 8)), (5, (3, 8, 6)), (6, (3, 8, 6)), (7, (3, 8, 6)),
                                                (8, (3, 8, 6))])
def test_exif_orientation_is_applied(tmp_path, suffix, orientation, shape):
    """A phone photo taken upright is stored sideways with an EXIF orientation: it is read as shown."""
    from gantk.data.io import read_mask

    image = Image.new("RGB", (8, 6))
    image.putpixel((0, 0), (255, 255, 255))  # top left as stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"photo{suffix}"
    image.save(path, exif=exif, quality=100)
    decoded = read_image(path)
    assert decoded.shape == shape and probe(path) == (3, *shape[1:])
    corner = {1: (0, 0), 3: (-1, -1), 5: (0, 0), 6: (0, -1), 7: (-1, -1), 8: (-1, 0)}[orientation]  # where the stored top left is shown
    assert decoded[:, corner[0], corner[1]].float().mean() > 128
    if suffix == ".png":
        image.convert("P").save(tmp_path / "palette.png", exif=exif)
        assert read_mask(path).shape == read_mask(tmp_path / "palette.png").shape == shape[1:]


@pytest.mark.parametrize("suffix, saved", [(".jpg", {"quality": 100}), (".webp", {"lossless": True})])  # torchvision, PIL
@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_photo_is_turned_upright_as_pil_turns_it(tmp_path, orientation, suffix, saved):
    blocks = np.kron(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20, np.ones((8, 8), np.uint8))  # 4 x 3 blocks, each its own value
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(np.stack([blocks, 255 - blocks, blocks // 2], -1)).save(path, exif=exif, **saved)
    shown = torch.from_numpy(np.array(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))).permute(2, 0, 1)
    decoded = read_image(path)
    assert decoded.shape == shown.shape and (decoded.int() - shown.int()).abs().max() <= 8
    Image.fromarray(blocks).save(tmp_path / f"mask{suffix}", exif=exif, **saved)
    gray = torch.from_numpy(np.array(ImageOps.exif_transpose(Image.open(tmp_path / f"mask{suffix}")).convert("L")))
    assert (read_mask(tmp_path / f"mask{suffix}") - gray.long()).abs().max() <= 8


def jpeg_with_xmp_before_exif(path, orientation):
    """A JPEG whose first APP1 segment is XMP and whose second is the EXIF block, as some editors write them."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6)).save(buffer, "JPEG")
    data = buffer.getvalue()
    after_app0 = 4 + struct.unpack(">H", data[4:6])[0]
    tiff = b"MM" + struct.pack(">HIH", 42, 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0\0\0\0"
    segments = [b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x='adobe:ns:meta/'/>", b"Exif\0\0" + tiff]
    app1 = b"".join(b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body for body in segments)
    path.write_bytes(data[:after_app0] + app1 + data[after_app0:])
    return path


def png_with_exif_after_the_image_data(path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6)).save(buffer, "PNG", exif=exif)
    data = buffer.getvalue()
    start = data.index(b"eXIf") - 4
    end = start + 12 + struct.unpack(">I", data[start:start + 4])[0]
    chunk, data = data[start:end], data[:start] + data[end:]
    iend = data.index(b"IEND") - 4
    path.write_bytes(data[:iend] + chunk + data[iend:])
    return path


def jpeg_with_a_damaged_exif_block(path, orientation):
    buffer = io.BytesIO()
    Image.new("RGB", (6, 8)).save(buffer, "JPEG")  # stored upright: the orientation cannot be read
    data = buffer.getvalue()
    after_app0 = 4 + struct.unpack(">H", data[4:6])[0]
    body = b"Exif\0\0MM\0*\0\0"  # a TIFF header cut short
    path.write_bytes(data[:after_app0] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + data[after_app0:])
    return path


def png_with_the_orientation_in_xmp(path, orientation):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", f'<x:xmpmeta><rdf:Description tiff:Orientation="{orientation}"/></x:xmpmeta>')
    Image.new("RGB", (8, 6)).save(path, "PNG", pnginfo=info)
    return path


def png_with_the_orientation_in_a_raw_profile(path, orientation):
    from PIL import PngImagePlugin

    exif = Image.Exif()
    exif[0x0112] = orientation
    data = exif.tobytes()
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(data)}\n{data.hex()}\n")  # as ImageMagick writes it
    Image.new("RGB", (8, 6)).save(path, "PNG", pnginfo=info)
    return path


@pytest.mark.parametrize("written", [jpeg_with_xmp_before_exif, png_with_exif_after_the_image_data, jpeg_with_a_damaged_exif_block,
                                     png_with_the_orientation_in_xmp, png_with_the_orientation_in_a_raw_profile])
def test_an_orientation_anywhere_in_the_file_is_read_by_probe_and_decoding_alike(tmp_path, written):
    path = written(tmp_path / "photo", 6)
    shown = ImageOps.exif_transpose(Image.open(path))
    assert (shown.height, shown.width) == (8, 6)  # as viewers show it
    assert read_image(path).shape == (3, 8, 6) and probe(path) == (3, 8, 6) and read_mask(path).shape == (8, 6)


@pytest.mark.parametrize("suffix, mode, value, expected", [
    (".bmp", "RGB", (10, 20, 30), [10, 20, 30]),
    (".bmp", "L", 77, [77]),
    (".tif", "RGBA", (10, 20, 30, 40), [10, 20, 30, 40]),
    (".tiff", "I;16", 0x1234, [0x12]),  # 16 bits keep their high byte
    (".tiff", "I;16B", 0x1234, [0x12]),  # in either byte order
    (".tif", "P", 3, None),  # a palette image is read as the RGB of its palette
    (".tif", "1", 1, [255]),
    (".tif", "CMYK", (0, 0, 0, 0), [255, 255, 255]),
])
def test_bmp_and_tiff_files_are_read_as_other_images(tmp_path, suffix, mode, value, expected):
    image = Image.new(mode, (8, 6), value)
    if mode == "P":
        image.putpalette([0] * 9 + [200, 100, 50])
        expected = [200, 100, 50]
    path = tmp_path / f"scan{suffix}"
    image.save(path)
    decoded = read_image(path)
    assert decoded.dtype == torch.uint8 and decoded.shape == (len(expected), 6, 8) and probe(path) == (len(expected), 6, 8)
    assert decoded[:, 0, 0].tolist() == expected and list_images(tmp_path) == [path]


def test_tiff_masks_keep_their_labels_and_float_tiffs_are_refused(tmp_path):
    from gantk.data.io import read_mask

    labels = np.arange(48, dtype=np.uint16).reshape(6, 8) * 300  # 16-bit label ids
    Image.fromarray(labels).save(tmp_path / "labels.tif")
    assert read_mask(tmp_path / "labels.tif").tolist() == labels.astype(np.int64).tolist()
    palette = Image.new("P", (8, 6), 2)
    palette.putpalette([0] * 3 + [255] * 6)
    palette.save(tmp_path / "palette.tif")
    assert set(read_mask(tmp_path / "palette.tif").flatten().tolist()) == {2}
    Image.new("L", (8, 6), 1).save(tmp_path / "labels.bmp")
    assert read_mask(tmp_path / "labels.bmp").unique().tolist() == [1]
    Image.fromarray(np.full((6, 8), 65535, np.int32)).save(tmp_path / "wide.tif")  # 32-bit: labels, not an image
    assert read_mask(tmp_path / "wide.tif").unique().tolist() == [65535]
    with pytest.raises(DataError, match=r"wide.tif: 32-bit and floating-point images are not read as an image"):
        read_image(tmp_path / "wide.tif")
    Image.fromarray(np.zeros((6, 8), np.float32)).save(tmp_path / "depth.tif")
    with pytest.raises(DataError, match=r"depth.tif: floating-point images are not read as a mask"):
        read_mask(tmp_path / "depth.tif")
    with pytest.raises(DataError, match=r"depth.tif: 32-bit and floating-point images are not read as an image; save it with 8 or 16 bits \(integers for a mask\)"):
        read_image(tmp_path / "depth.tif")
    (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(DataError, match=r"broken.tif: cannot be decoded as an image"):
        read_image(tmp_path / "broken.tif")


def test_probing_reads_headers_only(tmp_path, monkeypatch):
    from PIL import ImageFile

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (8, 6)).save(tmp_path / "photo.png", exif=exif)
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("probe decoded the image"))
    assert probe(tmp_path / "photo.png") == (3, 8, 6)


def test_images_above_pils_pixel_limit_are_read(tmp_path, monkeypatch):
    """PIL refuses images above a size (about 179 megapixels by default): scans may be larger."""
    for suffix in (".tif", ".png"):
        Image.new("RGB", (80, 60)).save(tmp_path / f"scan{suffix}")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 80 x 60 is then a "decompression bomb"
    for suffix in (".tif", ".png"):
        assert probe(tmp_path / f"scan{suffix}") == (3, 60, 80) and read_image(tmp_path / f"scan{suffix}").shape == (3, 60, 80)
    assert Image.MAX_IMAGE_PIXELS == 100


@pytest.mark.parametrize("mode", ["L", "I;16", "P", "RGB", "CMYK"])
def test_tiffs_are_turned_upright_or_refused_when_pil_cannot(tmp_path, mode):
    stored = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    image = Image.fromarray(stored).convert(mode)
    for orientation, shown in ((1, stored), (3, stored[::-1, ::-1])):  # turns that keep the size are read as shown
        image.save(tmp_path / "flat.tif", tiffinfo={274: orientation})
        decoded = read_image(tmp_path / "flat.tif")
        assert probe(tmp_path / "flat.tif") == (decoded.shape[0], 6, 8)
        if mode == "L":
            assert decoded[0].tolist() == shown.tolist()
    image.save(tmp_path / "turned.tif", tiffinfo={274: 6})  # PIL scrambles most kinds of TIFF it turns a quarter
    from PIL import TiffImagePlugin, TiffTags

    xmp = TiffImagePlugin.ImageFileDirectory_v2()
    xmp[700], xmp.tagtype[700] = b'<x:xmpmeta><rdf:Description tiff:Orientation="8"/></x:xmpmeta>', TiffTags.BYTE
    image.save(tmp_path / "turned-in-xmp.tif", tiffinfo=xmp)  # PIL turns these too, as it loads them
    for read in (probe, read_image):
        for name, orientation in (("turned", 6), ("turned-in-xmp", 8)):
            with pytest.raises(DataError, match=rf"{name}.tif: a TIFF stored turned a quarter \(orientation {orientation}\) is not "
                                                "read reliably"):
                read(tmp_path / f"{name}.tif")


@pytest.mark.parametrize("num_classes, ids", [(2, [0, 1]), (255, [0, 7, 254]), (256, [0, 7, 255]), (300, [0, 255, 256, 299])])
def test_written_masks_read_back_as_their_ids(tmp_path, num_classes, ids):
    written = torch.tensor([ids] * 3)
    path = write_mask(written, num_classes, tmp_path / "mask.png")
    assert torch.equal(read_mask(path), written * 255 if num_classes == 2 else written)
    assert has_wide_ids(path) == (num_classes > 255)  # so 255 reads as a class id, not as binary
    assert Image.open(path).mode == {2: "L", 255: "P"}.get(num_classes, "I;16")  # classes in colour where ids fit a palette


def test_palette_masks_show_each_class_in_its_colour_and_ignored_pixels_grey(tmp_path):
    import doctest

    from gantk import class_colours as module
    from gantk.class_colours import IGNORED_COLOUR, class_colours

    assert doctest.testmod(module).failed == 0
    colours = class_colours()
    assert len(set(colours)) == 256 and IGNORED_COLOUR not in colours and colours[:2] == ((0, 0, 0), (255, 255, 255))
    written = torch.tensor([[0, 1, 2, 20]])
    shown = Image.open(write_mask(written, 21, tmp_path / "voc.png")).convert("RGB")
    assert [shown.getpixel((x, 0)) for x in range(4)] == [colours[i] for i in (0, 1, 2, 20)]
    shifted = Image.open(write_mask(written, 21, tmp_path / "ade.png", ignore_label=0))  # values 1..21; 0 ignored
    assert torch.equal(read_mask(tmp_path / "ade.png"), written + 1)
    assert shifted.convert("RGB").getpixel((0, 0)) == colours[0] and shifted.getpalette()[:3] == list(IGNORED_COLOUR)


def test_a_folder_of_other_files_has_no_images_and_names_only_the_visible_ones(tmp_path):
    for name in ("notes.txt", ".DS_Store"):
        (tmp_path / name).write_text("")
    assert not has_images(tmp_path) and other_files(tmp_path) == ["notes.txt"]
    write_png(torch.zeros(3, 4, 4), tmp_path / "a.png")
    assert has_images(tmp_path) and other_files(tmp_path) == ["notes.txt"]


def test_a_side_takes_the_channels_all_its_files_share_or_rgb():
    assert [infer_channels(counts) for counts in ([1, 1], [4, 4], [1, 3], [1, 4], [3, 4])] == [1, 4, 3, 3, 3]
    image = torch.arange(4, dtype=torch.uint8)[:, None, None].expand(4, 2, 2)
    assert to_channels(image, 3)[:, 0, 0].tolist() == [0, 1, 2]  # alpha dropped
    assert to_channels(image[:1], 3)[:, 0, 0].tolist() == [0, 0, 0]


@pytest.mark.parametrize("mode, colour", [("RGB", (1, 1, 2)), ("RGBA", (1, 2, 1, 255))])
def test_a_mask_whose_colour_channels_differ_anywhere_is_refused(tmp_path, mode, colour):
    Image.new(mode, (4, 4), colour).save(tmp_path / "mask.png")
    with pytest.raises(DataError, match="a mask must hold one class id per pixel"):
        read_mask(tmp_path / "mask.png")


@pytest.mark.parametrize("mode, wide", [("L", False), ("P", False), ("I;16", True), ("I", True)])
def test_masks_of_more_than_8_bits_are_told_from_their_header(tmp_path, mode, wide):
    Image.new(mode, (4, 4), 3).save(tmp_path / "mask.tif")
    assert has_wide_ids(tmp_path / "mask.tif") is wide and read_mask(tmp_path / "mask.tif").unique().tolist() == [3]


def write_png16(path, array: np.ndarray, colour_type: int) -> None:
    """A 16-bit PNG of an ``H x W x C`` array (PIL writes none with alpha or colour): 4 gray+alpha, 2 RGB, 6 RGBA."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = array.shape[:2]
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array)  # filter 0 before each row
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("colour_type, channels", [(4, 1), (2, 3), (6, 4)])
def test_sixteen_bit_pngs_are_probed_as_read_and_hold_wide_ids(tmp_path, colour_type, channels):
    pixels = np.full((6, 8, {4: 2, 2: 3, 6: 4}[colour_type]), 300, np.uint16)
    if colour_type != 2:
        pixels[..., -1] = 65535  # opaque alpha
    write_png16(tmp_path / "a.png", pixels, colour_type)
    assert probe(tmp_path / "a.png") == (channels, 6, 8) and read_image(tmp_path / "a.png").shape == (channels, 6, 8)
    assert has_wide_ids(tmp_path / "a.png") and read_mask(tmp_path / "a.png").unique().tolist() == [300]


@pytest.mark.parametrize("palette", ["grey ramp", "colours"])  # PIL opens a GIF whose whole palette is the grey ramp as mode L
def test_gif_files_are_listed_and_read_as_rgb_as_probed(tmp_path, palette):
    indices = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = Image.fromarray(indices, mode="P")
    image.putpalette([v for i in range(256) for v in ((i, i, i) if palette == "grey ramp" else (i, 255 - i, 7))])
    image.save(tmp_path / "a.gif")
    (tmp_path / "notes.txt").write_text("not an image")
    assert list_images(tmp_path) == [tmp_path / "a.gif"] and other_files(tmp_path) == ["notes.txt"]
    decoded = read_image(tmp_path / "a.gif")
    assert probe(tmp_path / "a.gif") == (3, 16, 16) and decoded.shape == (3, 16, 16)
    expected = [[i, i, i] if palette == "grey ramp" else [i, 255 - i, 7] for i in (0, 21, 255)]
    assert [decoded[:, y, x].tolist() for y, x in ((0, 0), (1, 5), (15, 15))] == expected


def test_an_animation_under_another_extension_reads_as_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (10, 6), colour) for colour in ((255, 255, 255), (0, 200, 0))]
    frames[0].save(tmp_path / "moving.jpg", format="GIF", save_all=True, append_images=frames[1:])
    image = read_image(tmp_path / "moving.jpg")
    assert image.shape == (3, 6, 10) and image[:, 0, 0].tolist() == [255, 255, 255]
    assert probe(tmp_path / "moving.jpg") == (3, 6, 10) and read_mask(tmp_path / "moving.jpg").unique().tolist() == [255]


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp"])
def test_one_bit_masks_read_as_0_and_255_in_every_container(tmp_path, suffix):
    bits = np.zeros((6, 8), bool)
    bits[2:4, 3:6] = True
    Image.fromarray(bits).save(tmp_path / f"mask{suffix}")
    assert read_mask(tmp_path / f"mask{suffix}").tolist() == (bits.astype(np.int64) * 255).tolist()


@pytest.mark.parametrize("value", [-1, 2**16])
def test_32_bit_labels_outside_16_bits_are_refused(tmp_path, value):
    labels = np.zeros((6, 8), np.int32)
    labels[0, 0] = value
    Image.fromarray(labels).save(tmp_path / "labels.tif")
    with pytest.raises(DataError, match=rf"labels.tif: holds label values from {min(value, 0)} to {max(value, 0)}, but class ids are 0..65535"):
        read_mask(tmp_path / "labels.tif")


def test_files_are_decoded_by_their_content_whatever_their_extension(tmp_path):
    upright = Image.new("RGB", (8, 6), (10, 20, 30))
    upright.putpixel((0, 0), (250, 0, 0))
    upright.save(tmp_path / "bitmap.jpg", format="BMP")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: shown rotated 90 degrees clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "phone.jpg", format="WEBP", lossless=True, exif=exif)
    assert read_image(tmp_path / "bitmap.jpg")[:, 0, 0].tolist() == [250, 0, 0]
    turned = read_image(tmp_path / "phone.jpg")
    assert turned.shape == (3, 6, 8) and turned[:, 0, 0].tolist() == [250, 0, 0] and probe(tmp_path / "phone.jpg") == (3, 6, 8)


@pytest.mark.parametrize("suffix", [".jpg", ".gif"])
def test_jpegs_and_gifs_whose_names_are_not_utf8_are_read(tmp_path, suffix):
    path = tmp_path / os.fsdecode(b"caf\xe9" + suffix.encode())  # a Latin-1 name, as old archives unpack them
    try:
        Image.new("L", (8, 6), 90).save(path)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes UTF-8 names only")
    assert read_image(path).shape == (1 if suffix == ".jpg" else 3, 6, 8) and read_mask(path).shape == (6, 8)


def test_pil_images_of_premultiplied_alpha_read_as_those_of_straight_alpha():
    rgba = image_from_pil(Image.new("RGBA", (8, 6), (200, 100, 50, 128)).convert("RGBa"))
    assert rgba.shape == (4, 6, 8) and rgba[:, 0, 0].tolist() == [199, 99, 49, 128]  # RGBA, as PIL un-premultiplies it
    assert image_from_pil(Image.new("LA", (8, 6), (90, 255)).convert("La")).unique().tolist() == [90]  # gray, as LA


def _png_header_only(path, width, height):
    """A PNG whose header claims ``width x height`` gray pixels and which holds no image data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("read", [read_image, read_mask])
def test_an_image_claiming_more_pixels_than_the_limit_is_refused_from_its_header(tmp_path, read):
    bomb = _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(DataError, match=r"bomb.png: 100000x100000 is 10,000,000,000 pixels, more than the 268,435,456 gantk decodes .* "
                                        "set GANTK_MAX_IMAGE_PIXELS higher if you trust the file"):
        read(bomb)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_the_pixel_limit_is_set_by_the_environment(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"small{suffix}"
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(path)
    monkeypatch.setenv("GANTK_MAX_IMAGE_PIXELS", "399")
    with pytest.raises(DataError, match="20x20 is 400 pixels, more than the 399 gantk decodes"):
        read_image(path)
    monkeypatch.setenv("GANTK_MAX_IMAGE_PIXELS", "400")
    assert read_image(path).shape == (1, 20, 20)
    for text in ("lots", "\u00b2"):
        monkeypatch.setenv("GANTK_MAX_IMAGE_PIXELS", text)
        with pytest.raises(OptionError, match="GANTK_MAX_IMAGE_PIXELS=.* is not a number of pixels"):
            read_image(path)
    from gantk.data import check_dataset

    with pytest.raises(OptionError, match="is not a number of pixels"):  # once, not once per file checked
        check_dataset(tmp_path)


@pytest.mark.parametrize("read", [read_image, read_mask])
def test_the_pixel_limit_holds_for_a_jpeg_whose_header_pil_cannot_read(tmp_path, monkeypatch, read):
    written = io.BytesIO()
    Image.new("L", (32, 32), 200).save(written, "JPEG")
    data = bytearray(written.getvalue())
    struct.pack_into(">HH", data, data.index(b"\xff\xc0") + 5, 300, 200)  # the frame claims 200 x 300
    path = tmp_path / "claims.jpg"
    path.write_bytes(bytes(data[:2]) + b"\xff\xee\x00\x07Adobe" + bytes(data[2:]))  # an APP14 too short for PIL
    with pytest.raises(Exception):
        Image.open(path)  # only libjpeg, which torchvision decodes with, reads it
    monkeypatch.setenv("GANTK_MAX_IMAGE_PIXELS", "59999")
    with pytest.raises(DataError, match=r"claims.jpg: 200x300 is 60,000 pixels, more than the 59,999 gantk decodes"):
        read(path)


def test_a_gif_whose_screen_is_over_the_pixel_limit_is_refused_before_its_frames_are_decoded(tmp_path, monkeypatch):
    frames = [Image.new("L", (10, 10), value) for value in (0, 255)]
    written = io.BytesIO()
    frames[0].save(written, format="GIF", save_all=True, append_images=frames[1:])
    data = bytearray(written.getvalue())
    struct.pack_into("<HH", data, 6, 300, 200)  # the logical screen each frame is decoded at
    (tmp_path / "screen.gif").write_bytes(data)
    monkeypatch.setenv("GANTK_MAX_IMAGE_PIXELS", "59999")
    from PIL import GifImagePlugin

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "seek", lambda *_: pytest.fail("a frame was decoded"))
    with pytest.raises(DataError, match=r"screen.gif: 300x200 is 60,000 pixels, more than the 59,999 gantk decodes"):
        read_image(tmp_path / "screen.gif")


@pytest.mark.parametrize("read", [read_image, read_mask])
def test_the_pixel_limit_counts_every_frame_of_a_gif_as_it_is_decoded(tmp_path, monkeypatch, read):
    frames = [Image.new("L", (10, 10), value) for value in (0, 255, 0)]  # each frame differs, so each is stored
    frames[0].save(tmp_path / "moving.png", format="GIF", save_all=True, append_images=frames[1:])
    monkeypatch.setenv("GANTK_MAX_IMAGE_PIXELS", "299")
    with pytest.raises(DataError, match=r"moving.png: 3 frames of 10x10, decoded together, is 300 pixels, more than the 299 gantk "
                                        r"decodes \(a guard against decompression bombs\); downscale it or save its first frame alone"):
        read(tmp_path / "moving.png")
    monkeypatch.setenv("GANTK_MAX_IMAGE_PIXELS", "300")
    assert read(tmp_path / "moving.png").shape[-2:] == (10, 10)


def test_a_gif_cut_short_is_named_as_undecodable(tmp_path):
    frames = [Image.new("L", (16, 16), value) for value in range(0, 250, 25)]
    frames[0].save(tmp_path / "whole.gif", save_all=True, append_images=frames[1:])
    whole = (tmp_path / "whole.gif").read_bytes()
    for length in range(len(whole) // 3, len(whole) - 1, 7):  # cut inside one frame or another
        (tmp_path / "cut.gif").write_bytes(whole[:length])
        with pytest.raises(DataError, match="cut.gif: cannot be decoded as an image"):
            read_image(tmp_path / "cut.gif")


def test_the_frames_of_a_gif_before_a_damaged_one_count_towards_the_pixel_limit(tmp_path, monkeypatch):
    frames = [Image.new("L", (10, 10), value) for value in (0, 255, 0, 255)]
    frames[0].save(tmp_path / "whole.gif", save_all=True, append_images=frames[1:])
    (tmp_path / "cut.gif").write_bytes((tmp_path / "whole.gif").read_bytes()[:-30])  # into the last frame
    with Image.open(tmp_path / "cut.gif") as cut, pytest.raises(IndexError):
        cut.n_frames  # PIL cannot count them all
    monkeypatch.setenv("GANTK_MAX_IMAGE_PIXELS", "299")
    with pytest.raises(DataError, match=r"cut.gif: 3 frames of 10x10, decoded together, is 300 pixels"):
        read_image(tmp_path / "cut.gif")


def test_readers_take_text_paths_and_refuse_a_folder(tmp_path):
    write_png(torch.zeros(1, 4, 4, dtype=torch.uint8), tmp_path / "a.png")
    assert read_image(str(tmp_path / "a.png")).shape == (1, 4, 4) and read_mask(str(tmp_path / "a.png")).shape == (4, 4)
    for read in (read_image, read_mask):
        with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path))} is a folder; pass an image file.$"):
            read(str(tmp_path))


def test_writing_names_a_folder_or_a_dtype_it_cannot_write(tmp_path):
    with pytest.raises(DataError, match=f"^cannot write an image to {re.escape(str(tmp_path))}: it is a folder"):
        write_png(torch.zeros(3, 4, 4, dtype=torch.uint8), tmp_path)
    for num_classes in (2, 3, 300):  # gray, palette and 16-bit masks
        with pytest.raises(DataError, match=f"^cannot write an image to {re.escape(str(tmp_path))}: it is a folder"):
            write_mask(torch.zeros(4, 4, dtype=torch.long), num_classes, tmp_path)
    with pytest.raises(DataError, match="cannot write a torch.int16 image to .*: pass uint8 pixels, or floats in \\[-1, 1\\]"):
        write_png(torch.zeros(3, 4, 4, dtype=torch.int16), tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_images_and_masks_are_written_at_gantks_png_level(channels, tmp_path, monkeypatch):
    """The same pixels at every level; the files gantk writes are zlib streams of its level (the header's FLEVEL)."""
    noisy = torch.randint(0, 256, (channels, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    smooth = torch.arange(64, dtype=torch.uint8).expand(channels, 64, 64).contiguous()
    image = torch.where(torch.rand(channels, 64, 64, generator=torch.Generator().manual_seed(1)) < 0.3, noisy, smooth)
    ids = image[0].long() % 3
    sizes = {}
    for level in (1, 9):
        monkeypatch.setattr(io_module, "PNG_COMPRESSION", level)
        written = write_png(image, tmp_path / f"{level}.png")
        mask = write_mask(ids, 3, tmp_path / f"mask-{level}.png")
        assert torch.equal(read_image(written), image if channels != 2 else image[:1])  # gray+alpha reads as gray
        assert torch.equal(read_mask(mask), ids)
        for path in (written, mask):
            idat = path.read_bytes().split(b"IDAT", 1)[1]
            assert idat[1] >> 6 == (0 if level == 1 else 3)  # FLEVEL: 0 fastest, 3 maximum compression
        sizes[level] = written.stat().st_size
    assert sizes[1] > sizes[9]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_rows(path, width, height, rows: bytes, depth=8, colour_type=2, interlace=0) -> None:
    """A PNG whose IDAT inflates to ``rows``, with valid CRCs (whatever ``rows`` holds)."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, interlace)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


DAMAGED_PNG_READ = """
import sys
from gantk.data.io import read_image, read_mask
from gantk.errors import DataError
for read in (read_image, read_mask):
    try:
        read(sys.argv[1])
    except DataError as error:
        print(error)
"""


@pytest.mark.parametrize("damage", ["flipped byte", "too few rows", "wide mask, flipped byte", "wide mask, too few rows",
                                    "wide mask, bad filter"])
def test_damaged_pngs_are_named_not_a_crash(tmp_path, damage):
    """torchvision's PNG decoder crashes the process on such files: each is an error naming the file, in a process
    of its own here so that a crash fails this test rather than ending the run."""
    import subprocess
    import sys

    path, wide = tmp_path / "damaged.png", damage.startswith("wide")
    pixels = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    if wide:
        write_png16(path, pixels.astype(np.uint16) * 257, colour_type=2)
    else:
        Image.fromarray(pixels).save(path)
    row = (6 if wide else 3) * 16
    if damage.endswith("flipped byte"):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))
    elif damage.endswith("too few rows"):
        png_with_rows(path, 16, 16, (b"\0" + b"\x80" * row) * 3, depth=16 if wide else 8)
    else:
        png_with_rows(path, 16, 16, (b"\x09" + b"\x80" * row) * 16, depth=16)
    result = subprocess.run([sys.executable, "-c", DAMAGED_PNG_READ, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    # Rows missing from whole chunks and a whole data stream PIL reads as 0 (no crash): images, and 8-bit masks.
    expected = [] if damage.endswith("too few rows") else [f"{path}: cannot be decoded as an image ("]
    expected += [] if damage == "too few rows" else [f"{path}: cannot be decoded as a mask ("]
    lines = result.stdout.splitlines()
    assert [line[:len(start)] for line, start in zip(lines, expected)] == expected and len(lines) == len(expected), result.stdout
    assert all(line.endswith("); replace or delete the file.") for line in lines)


@pytest.mark.parametrize("interlace", [0, 1])
def test_the_png_check_counts_the_rows_of_each_interlace_pass(interlace):
    from gantk.data.png_check import png_problem

    width, height = 13, 7  # Adam7 passes of 2x1, 2x1, 4x1, 3x2, 7x2, 6x4 and 13x3 pixels
    sizes = [(height, width)] if not interlace else [(1, 2), (1, 2), (1, 4), (2, 3), (2, 7), (4, 6), (3, 13)]
    rows = b"".join((b"\x04" + b"\x07" * columns) * count for count, columns in sizes)  # gray 8-bit, Paeth rows
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, interlace)

    def png(rows):
        return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")

    assert png_problem(png(rows)) is None
    assert png_problem(png(rows[:-1])) == f"its image data holds {len(rows) - 1} bytes where 13x7 pixels need {len(rows)}"
    assert png_problem(png(rows + bytes(10**8))) == f"its image data holds more bytes than 13x7 pixels need ({len(rows)})"
    cut = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows)[:-4]) + png_chunk(b"IEND", b"")
    assert png_problem(cut) == "its image data does not inflate (incomplete or truncated stream)"
    assert png_problem(png(b"\x05" + rows[1:])) == "its rows name unknown filter types"
    damaged = bytearray(png(rows))
    damaged[-20] ^= 1  # inside IDAT
    assert png_problem(bytes(damaged)) == "its IDAT chunk fails its CRC check"


def test_pngs_of_every_colour_type_read_as_before(tmp_path):
    """PNGs are decoded by PIL: the channels and values torchvision gave them."""
    import torchvision.io as tvio

    rng = np.random.default_rng(1)
    cases = {
        "L": Image.fromarray(rng.integers(0, 255, (6, 8), dtype=np.uint8)),
        "LA": Image.fromarray(rng.integers(0, 255, (6, 8, 2), dtype=np.uint8), mode="LA"),
        "RGB": Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)),
        "RGBA": Image.fromarray(rng.integers(0, 255, (6, 8, 4), dtype=np.uint8)),
        "I;16": Image.fromarray(rng.integers(0, 65535, (6, 8), dtype=np.uint16)),
        "P": Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE, colors=7),
        "1": Image.fromarray(rng.integers(0, 2, (6, 8), dtype=bool)),
    }
    for mode, image in cases.items():
        image.save(tmp_path / f"{mode}.png")
        expected = tvio.decode_png(tvio.read_file(str(tmp_path / f"{mode}.png")),
                                   mode=tvio.ImageReadMode.RGB if mode == "P" else tvio.ImageReadMode.UNCHANGED)
        if expected.dtype == torch.uint16:
            expected = (expected.to(torch.int32) >> 8).to(torch.uint8)
        assert torch.equal(read_image(tmp_path / f"{mode}.png"), expected[:1] if mode == "LA" else expected), mode


def test_a_file_this_user_may_not_read_is_named_as_such_not_as_damaged(tmp_path, monkeypatch):
    import gantk.data.io as image_io

    path = write_png(torch.zeros(3, 4, 4, dtype=torch.uint8), tmp_path / "locked.png")

    def refused(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(image_io, "open", refused, raising=False)  # as chmod 000 does to a user other than root
    for read in (read_image, read_mask, probe):
        with pytest.raises(DataError, match=r"locked.png: permission denied: this user may not read it; change its permissions"):
            read(path)


def test_a_palette_png_with_transparency_reads_as_rgba_with_its_alpha(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, np.arange(6)[None] * 50
    Image.fromarray(rgba, "RGBA").quantize(8, method=Image.Quantize.FASTOCTREE).save(tmp_path / "quantized.png")  # as pngquant writes
    assert "transparency" in Image.open(tmp_path / "quantized.png").info
    expected = torch.from_numpy(np.array(Image.open(tmp_path / "quantized.png").convert("RGBA"))).permute(2, 0, 1)
    assert torch.equal(read_image(tmp_path / "quantized.png"), expected) and probe(tmp_path / "quantized.png").channels == 4
    Image.fromarray(rgba[..., :3]).quantize(8).save(tmp_path / "opaque.png")
    assert read_image(tmp_path / "opaque.png").shape[0] == probe(tmp_path / "opaque.png").channels == 3


def test_a_mask_of_255_classes_from_the_values_1_to_255_is_written_in_16_bits(tmp_path):
    """With the ignore label 0 the largest value written is num_classes, which 8 bits would read as binary at 255."""
    written = torch.tensor([[0, 7, 254]])
    path = write_mask(written, 255, tmp_path / "mask.png", ignore_label=0)
    assert Image.open(path).mode == "I;16" and has_wide_ids(path)
    assert torch.equal(read_mask(path), written + 1)
    palette = write_mask(written.clamp(max=253), 254, tmp_path / "palette.png", ignore_label=0)  # values 1..254 fit
    assert Image.open(palette).mode == "P" and torch.equal(read_mask(palette), written.clamp(max=253) + 1)
