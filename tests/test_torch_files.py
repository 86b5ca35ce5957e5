"""Checks of torch.save files before torch reads them (gantk.torch_files)."""

from __future__ import annotations

import io
import struct
import zipfile

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
