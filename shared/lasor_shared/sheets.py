"""Contact sheets: the one grid layout of every picture made of tiles (dataset previews, body-model and
pose sheets, photo results)."""

from __future__ import annotations

from PIL import Image, ImageDraw

TITLE_PX = 20  # height of the title line


def tile_grid(tiles, cols: int, cell: tuple[int, int] | None = None, top: int = 0, title: str | None = None):
    """Paste PIL `tiles` row by row into a white grid of `cols` columns and return it. `cell` (w, h): the
    distance between tiles (default: the first tile's size; larger leaves a gap right of and below each);
    `top`: pixels left free above the grid for the caller's legend; `title`: a text line above the grid
    (TITLE_PX high when `top` is 0)."""
    w, h = cell or tiles[0].size
    if title and not top:
        top = TITLE_PX
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w, rows * h + top), (255, 255, 255))
    if title:
        ImageDraw.Draw(sheet).text((6, 4), title, fill=(0, 0, 0))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * w, top + (i // cols) * h))
    return sheet
