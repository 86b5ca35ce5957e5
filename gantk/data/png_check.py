"""What makes a PNG file unsafe to give torchvision's decoder, which crashes the process (rather than
raising) on some damaged files: chunks failing their CRC, image data that does not inflate to the
rows its header promises, or rows with unknown filter types. (PIL raises on damaged chunks and data
streams; rows missing from a whole stream it reads as 0.)"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
# Adam7 passes: first column, first row, column step, row step.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_LAST_FILTER = 4  # Paeth


def png_problem(data: bytes) -> str | None:
    """Why the PNG file ``data`` is damaged, or ``None`` when its chunks and rows are whole."""
    header, image_data, position = None, [], 8
    while position + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        end = position + 12 + length
        if end > len(data):
            return f"its {kind.decode('latin-1')} chunk is cut short"
        body = data[position + 8:end - 4]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[end - 4:end])[0]:
            return f"its {kind.decode('latin-1')} chunk fails its CRC check"
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            image_data.append(body)
        elif kind == b"IEND":
            break
        position = end
    if header is None or len(header) != 13:
        return "it has no IHDR chunk"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if colour not in _SAMPLES or interlace > 1:
        return f"its header names colour type {colour} and interlace method {interlace}, which PNG does not define"
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    starts, expected = [], 0
    for x0, y0, dx, dy in passes:
        columns, count = max(0, -(-(width - x0) // dx)), max(0, -(-(height - y0) // dy))
        if columns and count:
            row_bytes = 1 + -(-columns * _SAMPLES[colour] * depth // 8)
            starts.append(expected + row_bytes * np.arange(count))
            expected += row_bytes * count
    inflater = zlib.decompressobj()
    try:
        rows = inflater.decompress(b"".join(image_data), expected + 1)  # no further: a few bytes can inflate to gigabytes
    except zlib.error as error:
        return f"its image data does not inflate ({error})"
    if len(rows) > expected:
        return f"its image data holds more bytes than {width}x{height} pixels need ({expected})"
    if not inflater.eof:
        return "its image data does not inflate (incomplete or truncated stream)"
    if len(rows) != expected:
        return f"its image data holds {len(rows)} bytes where {width}x{height} pixels need {expected}"
    filters = np.frombuffer(rows, np.uint8)[np.concatenate(starts)] if starts else np.zeros(0, np.uint8)
    if (filters > _LAST_FILTER).any():
        return "its rows name unknown filter types"
    return None
