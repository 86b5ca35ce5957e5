"""Image files: listing, header probing, decoding (PIL; torchvision for JPEG and GIF) and PNG writing."""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import unicodedata
import warnings
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from ..class_colours import IGNORED_COLOUR, class_colours
from ..errors import DataError, OptionError, first_sentence
from ..files import replacing
from ..lazy_import import LazyModule
from .png_check import png_problem
from .transforms import to_uint8

tvio = LazyModule("torchvision.io")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".tif", ".tiff", ".gif")
# zlib level of the PNGs gantk writes: on photos, 3 encodes about three times as fast as zlib's default 6 for files a few
# percent larger (docs/benchmarks.md, "Writing PNG files")
PNG_COMPRESSION = 3
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Files torchvision decodes, told by their first bytes (JPEG, GIF); PIL decodes the others: torchvision
# reads neither BMP nor TIFF, WebP without its EXIF orientation, and crashes on some damaged PNGs. A PNG
# mask of 16-bit colour (or gray+alpha), which PIL reads in 8 bits, goes to torchvision once checked whole.
_TORCHVISION_SIGNATURES = (b"\xff\xd8", b"GIF8")
_PNG_WIDE_COLOUR_TYPES = (2, 4, 6)
# PNG colour type (IHDR) -> channels once decoded here; PIL opens 16-bit gray+alpha (type 4) as RGBA.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 1, 6: 4}
# PIL mode of an image file -> channels once decoded here (gray+alpha -> gray, RGBA -> 4, others -> RGB).
_MODE_CHANNELS = {"1": 1, "L": 1, "LA": 1, "I": 1, "F": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "RGBA": 4}
MAX_CLASS_ID = 2**16 - 1  # the largest id a 16-bit mask holds
MAX_PIXELS = 2**28  # decoded at most (a guard against decompression bombs), unless GANTK_MAX_IMAGE_PIXELS says otherwise
MAX_PIXELS_ENV = "GANTK_MAX_IMAGE_PIXELS"
_EXIF_ORIENTATION = 0x0112
_ORIENTATIONS = range(1, 9)  # EXIF's: 1 upright, 2 to 8 flipped or turned (see _upright)
ORIENTATION_NAMES = {1: "(no EXIF orientation)", 2: "(EXIF orientation 2: mirrored when read)",
                     3: "(EXIF orientation 3: turned 180 degrees when read)", 4: "(EXIF orientation 4: flipped upside down when read)",
                     5: "(EXIF orientation 5: transposed when read)", 6: "(EXIF orientation 6: turned 90 degrees clockwise when read)",
                     7: "(EXIF orientation 7: transversed when read)", 8: "(EXIF orientation 8: turned 90 degrees anticlockwise when read)"}
_EXIF_QUARTER_TURNS = {5, 6, 7, 8}  # orientations that swap width and height
_PROBED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
_STORED_SIZE_FORMATS = ("PNG", "JPEG", "WEBP")  # PIL gives their stored size (it turns TIFFs upright itself)
# torchvision starts its errors with "function, path/of/source.cpp:line, " (the function may be "operator()").
_TORCH_SOURCE = re.compile(r"^[^,]+, \S+:\d+, ")


class ImageInfo(NamedTuple):
    """What ``read_image`` will return for a file: channels (1, 3 or 4), height, width."""

    channels: int
    height: int
    width: int


def is_image_file(path: Path) -> bool:
    """A visible file with one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name; hidden and other files are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def has_images(folder: Path) -> bool:
    """Whether ``folder`` holds at least one image file (stops at the first)."""
    folder = Path(folder)
    return folder.is_dir() and any(is_image_file(p) for p in folder.iterdir())


def other_files(folder: Path) -> list[str]:
    """Names of visible files in ``folder`` that are not supported images (to explain an 'empty' folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and not is_image_file(p))


def stem_key(path: Path) -> str:
    """The name without extension that pairs files, in one Unicode form (macOS writes names decomposed)."""
    return unicodedata.normalize("NFC", path.stem)


def pair_by_stem(a_files: list[Path], b_files: list[Path]) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """Match two file lists by name without extension (:func:`stem_key`).

    Returns:
        ``(pairs, only_a, only_b)``: matched pairs sorted by name, then the files of each side without
        a partner.
    """
    b_by_stem = {stem_key(p): p for p in b_files}
    a_stems = {stem_key(p) for p in a_files}
    pairs = [(a, b_by_stem[stem_key(a)]) for a in a_files if stem_key(a) in b_by_stem]
    only_a = [a for a in a_files if stem_key(a) not in b_by_stem]
    only_b = [b for b in b_files if stem_key(b) not in a_stems]
    return pairs, only_a, only_b


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # torchvision 0.29 announces the future move of image IO to TorchCodec on every call.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The image decoding and encoding", category=DeprecationWarning)
        yield


def probe(path: Path) -> ImageInfo:
    """Channels and size as :func:`read_image` gives them (upright), from the file's header; files
    PIL cannot open are decoded."""
    try:
        with _no_pixel_limit(), Image.open(path) as image:
            if image.format in _PROBED_FORMATS:
                _refuse_turned_tiff(image, path)
                width, height = image.size
                if image.format in _STORED_SIZE_FORMATS and _orientation(image, path) in _EXIF_QUARTER_TURNS:
                    width, height = height, width
                channels = 3 if image.format == "GIF" else _MODE_CHANNELS.get(image.mode, 3)  # torchvision decodes GIFs to RGB
                if image.format == "PNG":
                    channels = _PNG_CHANNELS.get(_png_header(path)[25], channels)
                if image.format != "GIF" and _has_palette_alpha(image):
                    channels = 4
                return ImageInfo(channels, height, width)
    except (OSError, SyntaxError, ValueError):  # what PIL raises for a bad header: read_image names the file
        pass
    image = read_image(path)
    return ImageInfo(*image.shape)


def orientation(path: Path) -> int:
    """The EXIF orientation :func:`read_image` applies to the file: 1 (none) for formats that carry none, or
    files PIL cannot open."""
    try:
        with _no_pixel_limit(), Image.open(path) as image:
            return _orientation(image, path) if image.format in _STORED_SIZE_FORMATS else 1
    except (OSError, SyntaxError, ValueError):
        return 1


def _orientation(image: Image.Image, path: Path) -> int:
    """The EXIF orientation of an opened PNG, JPEG or WebP file, which both :func:`probe` and :func:`read_image`
    apply: from its EXIF block (a JPEG's in any APP1 segment, a PNG's before or after the image data, found
    without decoding it, or in ImageMagick's "Raw profile type exif" text), else from its XMP, as PIL reads
    them; 1 where there is none or it is damaged (the pixels are then read as stored)."""
    exif = image.info.get("exif") or (_late_png_exif(path) if image.format == "PNG" else None)
    raw = image.info.get("Raw profile type exif")
    try:
        if not exif and isinstance(raw, str):
            exif = bytes.fromhex("".join(raw.split("\n")[3:]))
        parsed = Image.Exif()
        if exif:
            parsed.load(exif)
        orientation = parsed.get(_EXIF_ORIENTATION)
        if orientation is None:
            xmp = image.info.get("XML:com.adobe.xmp") or image.info.get("xmp") or ""
            found = re.search(r'tiff:Orientation(?:="|>)([1-8])', xmp if isinstance(xmp, str) else xmp.decode("latin-1"))
            orientation = int(found[1]) if found else 1
    except Exception:  # a damaged block (PIL raises struct.error, ValueError, ...)
        return 1
    return orientation if orientation in _ORIENTATIONS else 1


def _late_png_exif(path: Path) -> bytes | None:
    """The body of a PNG's eXIf chunk when it comes after the image data, found by reading chunk headers only."""
    with open(path, "rb") as file:
        file.seek(8)
        while len(head := file.read(8)) == 8:
            length, kind = struct.unpack(">I4s", head)
            if kind == b"eXIf":
                return file.read(length)
            if kind == b"IEND":
                return None
            file.seek(length + 4, os.SEEK_CUR)  # the body and its CRC
    return None


def _upright(image: Tensor, orientation: int) -> Tensor:
    """A ``C x H x W`` image stored with EXIF ``orientation``, turned upright as ``ImageOps.exif_transpose`` turns it."""
    turned = {
        2: lambda x: x.flip(2), 3: lambda x: x.flip(1, 2), 4: lambda x: x.flip(1), 5: lambda x: x.transpose(1, 2),
        6: lambda x: x.rot90(-1, (1, 2)), 7: lambda x: x.transpose(1, 2).flip(1, 2), 8: lambda x: x.rot90(1, (1, 2)),
    }.get(orientation)
    return turned(image).contiguous() if turned else image


def _refuse_turned_tiff(image: Image.Image, path: Path) -> None:
    """PIL turns a TIFF whose orientation swaps width and height upright as it loads it, and for most
    kinds of TIFF (gray, 16-bit, palette, RGBA, CMYK) the pixels come out scrambled: refuse them."""
    if image.format != "TIFF":
        return
    orientation = image.tag_v2.get(_EXIF_ORIENTATION) or _orientation(image, path)  # its tag, else its XMP
    if orientation in _EXIF_QUARTER_TURNS:
        raise DataError(
            f"{path}: a TIFF stored turned a quarter (orientation {orientation}) is not read "
            "reliably; save it upright (orientation 1), or as PNG."
        )


@contextlib.contextmanager
def _no_pixel_limit() -> Iterator[None]:
    """PIL without its limit of about 179 megapixels (a guard against decompression bombs): a
    dataset's own scans may be larger."""
    before, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def read_image(path: str | os.PathLike[str]) -> Tensor:
    """Decode an image as uint8 ``C x H x W`` keeping its kind: 1 (gray), 3 (RGB) or 4 (RGBA) channels.

    Palette PNGs become RGB (RGBA with transparency), gray+alpha becomes gray, 16-bit PNGs are scaled to 8 bits, CMYK
    JPEGs are converted to RGB, and EXIF orientation is applied (phone photos come upright).
    PNG, WebP, BMP and TIFF files are decoded with PIL, JPEG and GIF with torchvision.

    Raises:
        DataError: the file cannot be read or decoded.
    """
    path = _image_file(path)
    orientation = _checked_header(path)
    if _decoded_with_pil(path):
        array, turn = _read_with_pil(path, orientation)
        return _upright(_channels_first(array), turn)
    try:
        data = _file_bytes(path)
        with _quiet():
            image = tvio.decode_image(data, mode=tvio.ImageReadMode.UNCHANGED)
            if data[:2].numpy().tobytes() == b"\xff\xd8" and image.shape[0] == 4:
                image = tvio.decode_image(data, mode=tvio.ImageReadMode.RGB)
    except Exception as error:
        _refuse_if_gone(path)
        raise DataError(f"{path}: cannot be decoded as an image ({_reason(error)}); replace or delete the file.") from None
    return _upright(_first_frame(image), orientation)


def read_mask(path: str | os.PathLike[str]) -> Tensor:
    """Decode a label mask as ``H x W`` int64 values (palette PNGs give their palette indices).

    Raises:
        DataError: the file cannot be decoded, or its colour channels differ (a colour image, not labels).
    """
    path = _image_file(path)
    orientation = _checked_header(path)
    if _decoded_with_pil(path, as_mask=True):
        array, turn = _read_with_pil(path, orientation, as_mask=True)
        mask = torch.from_numpy(array.astype(np.int64))
        if mask.numel() and not 0 <= mask.min() <= mask.max() <= MAX_CLASS_ID:  # 32-bit labels may be negative, or wider
            raise DataError(
                f"{path}: holds label values from {mask.min().item()} to {mask.max().item()}, but class ids are 0..{MAX_CLASS_ID}; map "
                "them to ids 0..K-1 (an 'ignore' or 'void' label to a value --ignore-label then names) and save the mask again."
            )
        return _one_id_per_pixel(_upright(mask.permute(2, 0, 1) if mask.dim() == 3 else mask[None], turn), path)
    try:
        data = _file_bytes(path)
        if data[:8].numpy().tobytes() == _PNG_SIGNATURE and (problem := png_problem(data.numpy().tobytes())):
            raise DataError(problem)
        with _quiet():
            mask = tvio.decode_image(data, mode=tvio.ImageReadMode.UNCHANGED)
    except Exception as error:
        _refuse_if_gone(path)
        raise DataError(f"{path}: cannot be decoded as a mask ({_reason(error)}); replace or delete the file.") from None
    return _one_id_per_pixel(_upright(_first_frame(mask), orientation).to(torch.int64), path)


def max_pixels() -> int:
    """The most pixels an image may have to be decoded: ``GANTK_MAX_IMAGE_PIXELS``, else ``MAX_PIXELS``."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return MAX_PIXELS
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        # not a problem of one file: an OptionError, which checks of many files do not collect per file
        raise OptionError(f"{MAX_PIXELS_ENV}={text!r} is not a number of pixels; set a whole number such as {MAX_PIXELS}.")
    return int(text)


def _checked_header(path: Path) -> int:
    """Refuse, from its header, an image larger than :func:`max_pixels` (a few bytes can claim gigapixels); return
    its orientation (:func:`_orientation`; 1 for a header PIL cannot read), which decoding then applies: torchvision
    only looks in the first APP1 segment of a JPEG, which may hold XMP instead."""
    limit = max_pixels()
    try:
        with _no_pixel_limit(), Image.open(path) as image:
            width, height = image.size
            frames = 1  # torchvision decodes every frame of a GIF; counted up to the limit (PIL decodes each one passed)
            if image.format == "GIF" and 0 < width * height <= limit:
                frames = _gif_frames(image, limit // (width * height) + 1)
            orientation = _orientation(image, path)
    except (OSError, SyntaxError, ValueError):  # no header PIL reads: decoding names the problem
        width, height = _jpeg_size(path) or (0, 0)  # libjpeg may decode what PIL cannot read: its size is checked still
        frames, orientation = 1, 1
    if width * height * frames > limit:
        size = f"{width}x{height}" if frames == 1 else f"{frames} frames of {width}x{height}, decoded together,"
        raise DataError(
            f"{path}: {size} is {width * height * frames:,} pixels, more than the {limit:,} gantk decodes "
            f"(a guard against decompression bombs); downscale it{'' if frames == 1 else ' or save its first frame alone'}, "
            f"or set {MAX_PIXELS_ENV} higher if you trust the file."
        )
    return orientation


def _gif_frames(image: Image.Image, most: int) -> int:
    """The frames of an opened GIF up to its first damaged one, if any (decoding reads those before it fails), and
    no more than ``most``."""
    frames = 1
    try:
        while frames < most:
            image.seek(frames)
            frames += 1
    except Exception:  # EOFError past the last frame; IndexError, struct.error... at a damaged one
        pass
    return frames


def _first_frame(image: Tensor) -> Tensor:
    """The first frame of a decoded animation (``N x C x H x W``, a GIF whatever its extension), as multi-frame
    WebP and TIFF files read."""
    return image[0] if image.dim() == 4 else image


def _one_id_per_pixel(mask: Tensor, path: Path) -> Tensor:
    """The ``H x W`` class ids of a decoded ``C x H x W`` mask, whose colour channels must agree."""
    if mask.shape[0] in (3, 4) and not torch.equal(mask[1:3], mask[:1].expand(2, -1, -1)):
        raise DataError(
            f"{path}: a mask must hold one class id per pixel, but this file has different colour channels; "
            "save it as a grayscale (or palette) PNG of class ids."
        )
    return mask[0]


def _jpeg_size(path: Path) -> tuple[int, int] | None:
    """The width and height a JPEG file's frame header (SOF) claims; ``None`` for a file without one that can be read."""
    try:
        with open(path, "rb") as handle:
            if handle.read(2) != b"\xff\xd8":
                return None
            while (marker := handle.read(2)) and marker[0] == 0xFF:
                length = int.from_bytes(handle.read(2), "big")
                if 0xC0 <= marker[1] <= 0xCF and marker[1] not in (0xC4, 0xC8, 0xCC):  # a start of frame
                    height, width = struct.unpack(">xHH", handle.read(5))
                    return width, height
                handle.seek(length - 2, os.SEEK_CUR)
    except (OSError, struct.error):
        return None
    return None


def _file_bytes(path: Path) -> Tensor:
    """A file's bytes as a uint8 tensor, for torchvision to decode (its read_file takes no name that is not UTF-8)."""
    return torch.from_numpy(np.fromfile(path, dtype=np.uint8))


def _decoded_with_pil(path: Path, as_mask: bool = False) -> bool:
    """Whether the file's content (not its extension, which may be wrong) is for PIL to decode."""
    try:
        head = _png_header(path)
    except OSError:  # torchvision's reading names the file
        return False
    if head.startswith(_PNG_SIGNATURE) and len(head) == 26:
        return not (as_mask and head[24] == 16 and head[25] in _PNG_WIDE_COLOUR_TYPES)
    return not head.startswith(_TORCHVISION_SIGNATURES)


def _read_with_pil(path: Path, orientation: int, as_mask: bool = False) -> tuple[np.ndarray, int]:
    """A PNG, WebP, BMP or TIFF file as an ``H x W`` or ``H x W x C`` array (for an image, 8-bit gray, RGB or RGBA as
    :func:`read_image` gives them; for a mask, the stored values: palette indices, 16-bit labels) and the orientation
    still to apply to it (:func:`_upright`): the file's ``orientation``, as :func:`_checked_header` read it, for the
    formats whose pixels PIL gives as stored; 1 for the others, which PIL turns upright."""
    what = "a mask" if as_mask else "an image"
    try:
        with _no_pixel_limit(), Image.open(path) as opened:
            _refuse_turned_tiff(opened, path)
            stored = opened.format in _STORED_SIZE_FORMATS
            array, turn = _pixels(opened, str(path), as_mask, turned_by_pil=not stored), orientation if stored else 1
            if opened.format == "PNG" and not as_mask and array.ndim == 3 and array.shape[2] == 4 and _png_header(path)[25] == 4:
                return array[..., 0], turn  # PIL opens 16-bit gray+alpha as RGBA of the gray's high byte
            return array, turn
    except (OSError, SyntaxError, ValueError) as error:  # what PIL raises for a file it cannot decode
        reason = error
        if str(error).startswith("cannot identify image file"):  # PIL's message names the file
            head = _png_header(path)
            reason = "the file is empty" if not head else "damaged or unsupported file" if head.startswith(_PNG_SIGNATURE) \
                else "unsupported image file"
        raise DataError(f"{path}: cannot be decoded as {what} ({reason}); replace or delete the file.") from None


def image_from_pil(image: Image.Image) -> Tensor:
    """A PIL image as :func:`read_image` gives a file: upright, uint8 ``C x H x W``, gray, RGB or RGBA."""
    return _channels_first(_pixels(image, "the PIL image"))


def _channels_first(array: np.ndarray) -> Tensor:
    """An ``H x W`` or ``H x W x C`` array as a ``C x H x W`` tensor."""
    return torch.from_numpy(array).permute(2, 0, 1) if array.ndim == 3 else torch.from_numpy(array)[None]


def _pixels(image: Image.Image, name: str, as_mask: bool = False, turned_by_pil: bool = True) -> np.ndarray:
    """An opened image as an ``H x W`` or ``H x W x C`` array (see :func:`_read_with_pil`), turned upright as PIL
    finds it unless not ``turned_by_pil`` (the pixels as stored)."""
    what = "a mask" if as_mask else "an image"
    if turned_by_pil:
        try:
            image = ImageOps.exif_transpose(image)
        except Exception:  # a damaged EXIF block: the pixels as stored, as _orientation reads it
            pass
    if image.mode == "F" or (image.mode == "I" and not as_mask):
        refused = "32-bit and floating-point images are" if not as_mask else "floating-point images are"
        raise DataError(f"{name}: {refused} not read as {what}; save it with 8 or 16 bits (integers for a mask).")
    if image.mode in ("La", "RGBa") and not as_mask:  # premultiplied alpha (PIL converts La to little else): as LA, RGBA
        image = image.convert(image.mode[:-1] + "A")
    if image.mode == "1" or (not as_mask and image.mode not in ("L", "RGB", "RGBA") and not image.mode.startswith("I;16")):
        # 1-bit -> 0/255 as PNGs; palette with transparency -> RGBA; palette, CMYK, ... -> RGB
        image = image.convert("L" if image.mode in ("1", "LA") else "RGBA" if _has_palette_alpha(image) else "RGB")
    array = np.array(image)
    array = array.astype(array.dtype.newbyteorder("="))  # big-endian 16-bit TIFFs: native order, as torch needs
    return (array >> 8).astype(np.uint8) if array.dtype == np.uint16 and not as_mask else array


def _has_palette_alpha(image: Image.Image) -> bool:
    """Whether an opened image is a palette image with transparency (a PNG's tRNS chunk, as pngquant writes them)."""
    return image.mode == "PA" or (image.mode == "P" and "transparency" in image.info)


def to_channels(image: Tensor, channels: int, path: str | Path | None = None) -> Tensor:
    """Convert a decoded ``C x H x W`` image (of the file ``path``, named in errors) to ``channels`` (gray -> RGB
    repeats, RGBA -> RGB drops alpha)."""
    have = image.shape[0]
    if have == channels:
        return image
    if channels == 3 and have == 1:
        return image.expand(3, -1, -1)
    if channels == 3 and have == 4:
        return image[:3]
    raise DataError(
        f"{f'{path}: ' if path is not None else ''}cannot convert a {have}-channel image to {channels} channels; make the "
        "files of one side all the same kind."
    )


def infer_channels(channel_counts: list[int]) -> int:
    """Channels of a side from its files' counts: 1 if all gray, 4 if all RGBA, else 3."""
    kinds = set(channel_counts)
    if kinds == {1}:
        return 1
    if kinds == {4}:
        return 4
    return 3


def write_png(image: Tensor, path: str | os.PathLike[str]) -> Path:
    """Write a ``C x H x W`` image as PNG and return its path (parents are created).

    A floating image is read as values in [-1, 1] (clamped); uint8 is written as is. 1, 2, 3 or 4
    channels: gray, gray with alpha, RGB or RGBA.
    """
    path = _file_to_write(path)
    image = image.detach().cpu()
    if image.is_floating_point():
        image = to_uint8(image)
    elif image.dtype != torch.uint8:
        raise DataError(f"cannot write a {image.dtype} image to {path}: pass uint8 pixels, or floats in [-1, 1].")
    if image.dim() != 3 or image.shape[0] not in (1, 2, 3, 4):
        raise DataError(
            f"cannot write an image of shape {tuple(image.shape)} to {path}: expected C x H x W with 1 to 4 channels."
        )
    if image.shape[0] in (2, 4):  # torchvision encodes gray and RGB only
        buffer = io.BytesIO()
        pil_image(image).save(buffer, "PNG", compress_level=PNG_COMPRESSION)
        encoded = buffer.getvalue()
    else:
        with _quiet():
            encoded = tvio.encode_png(image.contiguous(), compression_level=PNG_COMPRESSION).numpy().tobytes()
    with replacing(path, binary=True) as handle:  # a write cut short (disk full) is an error, and no file
        handle.write(encoded)
    return path


def pil_image(image: Tensor) -> Image.Image:
    """A ``C x H x W`` image (uint8, or floats in [-1, 1], clamped) of 1 to 4 channels as a PIL image: L, LA, RGB or
    RGBA, from the channels (the inverse of :func:`image_from_pil`)."""
    pixels = (to_uint8(image) if image.is_floating_point() else image).detach().cpu().permute(1, 2, 0).numpy()
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def has_wide_ids(path: Path) -> bool:
    """Whether a mask file stores more than 8 bits per pixel (16-bit labels), read from its header."""
    try:
        with _no_pixel_limit(), Image.open(path) as image:
            if image.format == "PNG":  # PIL opens 16-bit gray+alpha and colour PNGs as 8-bit modes
                return _png_header(path)[24] == 16
            return image.mode.startswith("I")
    except (OSError, SyntaxError, ValueError):  # read_mask reports the file
        return False


def write_mask(ids: Tensor, num_classes: int, path: str | os.PathLike[str], ignore_label: int | None = None) -> Path:
    """Write class ids ``H x W`` as a PNG that :func:`read_mask` reads back (the image of :func:`mask_image`)."""
    path = _file_to_write(path)
    mask = mask_image(ids, num_classes, ignore_label)
    with replacing(path, binary=True) as handle:
        mask.save(handle, format="PNG", compress_level=PNG_COMPRESSION)
    return path


def mask_image(ids: Tensor, num_classes: int, ignore_label: int | None = None) -> Image.Image:
    """Class ids ``H x W`` as the image :func:`write_mask` writes: a binary mask as 0/255, up to 255 classes as a
    palette image whose indices are the ids (in the colours of :func:`gantk.class_colours.class_colours`, so viewers
    show the classes), more as 16-bit ids (in 8 bits, 255 would read as binary). With the ignore label 0 (classes
    ``0..K-1`` read from the values ``1..K``), the values are the ids plus one, and 0 is grey."""
    ids = ids.detach().cpu()
    largest_id = num_classes if ignore_label == 0 else num_classes - 1  # as written; a binary mask's 255 aside
    if ignore_label == 0:
        ids = ids + 1
    elif num_classes == 2:
        return Image.fromarray((ids * 255).numpy().astype(np.uint8))
    if largest_id >= 255:
        return Image.fromarray(ids.numpy().astype(np.uint16))
    mask = Image.fromarray(ids.numpy().astype(np.uint8))  # gray until given a palette
    shown = [IGNORED_COLOUR, *class_colours()] if ignore_label == 0 else class_colours()
    mask.putpalette([value for colour in shown[:256] for value in colour])
    return mask


def _file_to_write(path: str | Path) -> Path:
    """``path`` as a ``Path``, refused where it is a folder."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"cannot write an image to {path}: it is a folder; give a file name ending in .png.")
    return path


def _png_header(path: Path) -> bytes:
    """The first 26 bytes of a file: for a PNG, its signature and IHDR chunk, with bit depth at 24 and colour type at 25."""
    with open(path, "rb") as file:
        return file.read(26)


def _image_file(path: str | Path) -> Path:
    """``path`` as a ``Path``; a folder, or a file this user may not read, is an error (decoding would blame the
    file's contents)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder; pass an image file.")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:  # not a damaged image: decoding would say so
        raise DataError(f"{path}: permission denied: this user may not read it; change its permissions (chmod a+r), or "
                        "move it out of the data.") from None
    except OSError:  # a missing file, say: decoding names it
        pass
    return path


def _refuse_if_gone(path: Path) -> None:
    """Name a file that is no longer there (moved or deleted after the data were listed) as such."""
    if not path.exists():
        raise DataError(f"{path}: not found: it was moved or deleted after gantk listed the data; put it back.") from None


def _reason(error: Exception) -> str:
    """The first sentence of the decoder's message, without torchvision's source location and advice."""
    lines = str(error).strip().splitlines()
    first = first_sentence(_TORCH_SOURCE.sub("", lines[-1] if lines else ""))
    if first.lower() in ("", "internal error"):
        return "damaged or unsupported file"
    return first[0].lower() + first[1:] if first[1:2].islower() else first  # keeps "JPEG ..."
