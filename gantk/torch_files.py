"""Files ``torch.save`` wrote, read without running code from them (``weights_only``), and why one cannot be."""

from __future__ import annotations

import re
import warnings
import zipfile
from collections import Counter
from typing import Any, BinaryIO

import torch

from .errors import first_sentence

ZIP_SIGNATURE = b"PK\x03\x04"  # how torch.save's files start (older ones: a pickle's protocol opcode)
PICKLE_PROTOCOL = b"\x80"
SAFE_PICKLE_PROTOCOL = 3  # the highest torch.load(weights_only=True) reads (4 and 5 frame their data)
READ_CHUNK = 1 << 24  # bytes read at a time in checking an entry's CRC-32


class InflatingEntries(Exception):
    """A zip refused before torch.load reads it (see :func:`inflating_entries`): ``entry`` is the first entry that
    would unpack to more than the file holds, ``None`` where the zip's directory cannot be read."""

    def __init__(self, entry: str | None):
        super().__init__(entry)
        self.entry = entry


class DamagedEntry(Exception):
    """A zip ``entry`` whose contents differ from the checksum written with it (see :func:`damaged_entry`)."""

    def __init__(self, entry: str):
        super().__init__(entry)
        self.entry = entry


def read_weights_only(handle: BinaryIO, map_location: str | torch.device = "cpu") -> Any:
    """What the open file ``handle`` holds, read by ``torch.load`` with ``weights_only=True`` (no code from the file
    runs) once its zip is checked.

    Raises:
        InflatingEntries: entries that would unpack to more than the file, or a directory that cannot be read.
        DamagedEntry: contents that differ from their checksums.
        Exception: torch.load's own errors, which :func:`unreadable_reason` words.
    """
    inflating = inflating_entries(handle)
    if inflating is None or inflating:
        raise InflatingEntries(inflating[0] if inflating else None)
    if damaged := damaged_entry(handle):
        raise DamagedEntry(damaged)
    handle.seek(0)
    with warnings.catch_warnings():  # torch's note on a plain pickle's protocol: unreadable_reason says more
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        return torch.load(handle, map_location=map_location, weights_only=True)


def inflating_entries(handle: BinaryIO) -> list[str] | None:
    """The entries of a zip that would give torch.load more bytes than the file holds, which it would read into memory
    before anything is checked (a small file could ask for gigabytes): compressed entries (torch.save stores its
    entries as they are), or entries whose sizes add up to more than the file (names pointing at one stored record);
    ``None`` for a zip whose directory cannot be read (torch's reader skips parts of it that this check reads), ``[]``
    for any other file."""
    handle.seek(0)
    try:
        head = handle.read(len(ZIP_SIGNATURE))
    except OSError:
        return []  # the file cannot be read: torch.load's error names it
    if head != ZIP_SIGNATURE:
        return []  # not a zip: torch.load tells what it is
    try:
        with zipfile.ZipFile(handle) as archive:
            entries = archive.infolist()
            compressed = [info.filename for info in entries if info.compress_type != zipfile.ZIP_STORED]
            if compressed or sum(info.file_size for info in entries) <= handle.seek(0, 2):
                return compressed
            offsets = Counter(info.header_offset for info in entries)
            return [info.filename for info in entries if offsets[info.header_offset] > 1] or [entries[-1].filename]
    except Exception:  # zipfile's errors for a damaged directory: BadZipFile, ValueError, EOFError, OSError (a bad offset)...
        return None


def damaged_entry(handle: BinaryIO) -> str | None:
    """The first entry of a zip whose contents differ from the CRC-32 recorded when it was written (a bit
    flipped on a disk or in a copy, which torch.load does not check); ``None`` where all match, for entries
    written without one (``torch.serialization.set_crc32_options(False)`` records 0) and for a file that is no zip."""
    handle.seek(0)
    if handle.read(len(ZIP_SIGNATURE)) != ZIP_SIGNATURE:
        return None
    with zipfile.ZipFile(handle) as archive:
        for info in archive.infolist():
            if info.CRC == 0:
                continue
            try:
                with archive.open(info) as entry:
                    while entry.read(READ_CHUNK):
                        pass
            except (zipfile.BadZipFile, EOFError):  # zipfile checks the CRC-32 at the entry's end
                return info.filename
    return None


def pickle_protocol(handle: BinaryIO) -> int | None:
    """The pickle protocol of a torch.save zip's ``data.pkl``; ``None`` where it cannot be told."""
    handle.seek(0)
    try:
        with zipfile.ZipFile(handle) as archive:
            name = next(info.filename for info in archive.infolist() if info.filename.endswith("/data.pkl"))
            with archive.open(name) as entry:
                start = entry.read(2)
    except Exception:  # no readable zip, or none with a data.pkl
        return None
    return start[1] if len(start) == 2 and start[:1] == PICKLE_PROTOCOL else None


def unreadable_reason(handle: BinaryIO, error: Exception) -> str:
    """Why a file could not be read safely, in plain words (without torch's advice to load it unsafely)."""
    handle.seek(0)
    head = handle.read(len(ZIP_SIGNATURE))
    if not head:
        return "the file is empty"
    zip_file = head.startswith(ZIP_SIGNATURE) or ZIP_SIGNATURE.startswith(head)
    if not zip_file and not head.startswith(PICKLE_PROTOCOL):
        return "the file was not written by torch.save"
    if len(head) < len(ZIP_SIGNATURE) and zip_file:
        return "the file is cut short or damaged"
    text = str(error)
    plain = re.search(r"WeightsUnpickler error:\s*Unsupported operand", text) or "Invalid magic number" in text  # no torch header
    if plain and not zip_file:
        return "a plain pickle, not a file torch.save wrote"
    if plain:  # a zip whose pickled data the safe reader cannot read
        if (protocol := pickle_protocol(handle)) is not None and protocol > SAFE_PICKLE_PROTOCOL:
            return (f"its data is pickled with protocol {protocol}, which torch reads without running code only up to "
                    f"protocol {SAFE_PICKLE_PROTOCOL}: save it again with torch.save's default protocol")
        return "the file is damaged: its pickled data is not as torch.save writes it"
    if "WeightsUnpickler error:" in text:  # e.g. "Unsupported global: GLOBAL x.Y was not an allowed global by default"
        return first_sentence(text.split("WeightsUnpickler error:", 1)[1])
    if blocked := re.search(r"unsupported GLOBAL (\S+) whose module (\S+) is blocked", text):
        return f"it refers to code ({blocked[1]}), which gantk does not load"
    if zip_file:  # e.g. the zip reader's "failed finding central directory"
        return f"the file is cut short or damaged: {first_sentence(text) or type(error).__name__}"
    return f"{type(error).__name__} while reading it safely"
