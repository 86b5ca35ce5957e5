"""Checks of torch.save files before torch reads them (gantk.torch_files)."""

from __future__ import annotations

import io
import struct
import zipfile

from gantk import torch_files
from gantk.torch_files import damaged_entry


def test_an_entry_whose_recorded_size_runs_past_the_file_is_named_as_damaged():
    written = io.BytesIO()
    with zipfile.ZipFile(written, "w") as archive:
        archive.writestr("archive/data.pkl", b"x" * 100)
    data = bytearray(written.getvalue())
    assert damaged_entry(io.BytesIO(bytes(data))) is None
    entry = data.index(b"PK\x01\x02")  # the central directory's record of the entry: its sizes at bytes 20 and 24
    struct.pack_into("<II", data, entry + 20, 10_000, 10_000)
    assert damaged_entry(io.BytesIO(bytes(data))) == "archive/data.pkl"


def test_an_entry_damaged_past_the_first_chunk_read_is_named(monkeypatch):
    contents = bytes(range(256)) * 40  # more than zipfile reads from the file at once
    written = io.BytesIO()
    with zipfile.ZipFile(written, "w") as archive:
        archive.writestr("archive/data/0", contents)
    data = bytearray(written.getvalue())
    data[data.index(contents) + len(contents) - 10] ^= 1  # a bit flipped near the entry's end
    monkeypatch.setattr(torch_files, "READ_CHUNK", 1024)  # the entry spans several reads, as a large tensor's does
    assert damaged_entry(io.BytesIO(bytes(data))) == "archive/data/0"
