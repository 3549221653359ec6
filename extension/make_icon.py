"""Draw the extension's 128x128 icon (icon.png) with the standard library alone.

The marketplace and the extensions page need a PNG; drawing it in code keeps the repository
free of an image editor's output and makes the file reproducible:
`python3 extension/make_icon.py` rewrites extension/icon.png byte for byte.

The picture: three stacked containers on a blue tile, joined by a link to a dot — an image
mapped to where it came from.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

SIZE = 128
BACKGROUND = (0, 92, 175)
BOX = (255, 255, 255)
RIB = (0, 92, 175)
LINK = (255, 196, 0)

Pixel = tuple[int, int, int]


def _inside(x: int, y: int) -> Pixel:
    """The colour of one pixel: shapes later in the list are drawn on top."""
    colour = BACKGROUND
    for top in (22, 52, 82):  # three containers, each 24 px high, 30 px apart
        if 18 <= x < 78 and top <= y < top + 24:
            colour = RIB if (x - 18) % 12 == 6 and top + 4 <= y < top + 20 else BOX
    if 78 <= x < 100 and 62 <= y < 66:  # the link
        colour = LINK
    if (x - 104) ** 2 + (y - 64) ** 2 <= 10**2:  # the place it maps to
        colour = LINK
    return colour


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def render() -> bytes:
    """The PNG file: 8-bit RGB, no interlace, filter 0 on every row."""
    rows = bytearray()
    for y in range(SIZE):
        rows.append(0)
        for x in range(SIZE):
            rows.extend(_inside(x, y))
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )


def main() -> int:
    target = Path(__file__).with_name("icon.png")
    target.write_bytes(render())
    print(f"wrote {target} ({target.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
