"""Seeded synthetic microscopy: textured cells, several per image, some of them touching.

:func:`touching_cells` draws ``n`` grey-level images with an instance mask each (0 background,
1..K one label per cell). Cells are ellipses of random size and orientation. A share of them is
placed right next to an earlier cell so that the two overlap slightly; the overlap is split
between them (each pixel goes to the cell whose ellipse it is deeper inside), so touching cells
share a border, as in the crowded cell images U-Net was built for. In the image, that shared
border (a one-pixel membrane) is drawn a little darker than the cells; the cells carry a smooth
texture and their own brightness, and everything is covered in noise. In the mask, the membrane
is background by default (as in the paper's annotations), so touching cells are parted by a
one-pixel line of background and no two labels are 4-adjacent.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _smooth_noise(shape: tuple[int, int], scale: int, g: torch.Generator) -> torch.Tensor:
    """Zero-mean noise with unit-ish spread, smoothed over about ``scale`` pixels."""
    h, w = shape
    coarse = torch.randn(1, 1, h // scale + 2, w // scale + 2, generator=g, dtype=torch.float64)
    fine = F.interpolate(coarse, scale_factor=scale, mode="bilinear", align_corners=False)
    return fine[0, 0, :h, :w]


def _place(k: int, size: int, radius: tuple[float, float], touching: float,
           g: torch.Generator) -> list[tuple[float, float, float, float, float]]:
    """Up to ``k`` ellipses (cy, cx, ry, rx, angle), some touching an earlier one."""
    cells: list[tuple[float, float, float, float, float]] = []

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))

    for _ in range(40 * k):
        if len(cells) == k:
            break
        r = u(*radius)
        ry, rx = r * u(0.85, 1.15), r * u(0.85, 1.15)
        angle = u(0.0, math.pi)
        near = None
        if cells and u(0.0, 1.0) < touching:
            near = int(torch.randint(0, len(cells), (), generator=g))
            cy0, cx0, ry0, rx0, _ = cells[near]
            theta = u(0.0, 2 * math.pi)
            gap = 0.5 * (ry0 + rx0) + 0.5 * (ry + rx) - u(1.5, 3.0)  # a little overlap
            cy, cx = cy0 + gap * math.sin(theta), cx0 + gap * math.cos(theta)
        else:
            cy, cx = u(r, size - r), u(r, size - r)
        if not (0.6 * r <= cy <= size - 0.6 * r and 0.6 * r <= cx <= size - 0.6 * r):
            continue
        clear = all(
            math.hypot(cy - c[0], cx - c[1]) > 0.5 * (c[2] + c[3]) + r + 2.0
            for i, c in enumerate(cells) if i != near
        )
        if clear:
            cells.append((cy, cx, ry, rx, angle))
    return cells


def _render(cells: list, size: int, noise: float, membrane_contrast: float, separate: bool,
            g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64),
                            torch.arange(size, dtype=torch.float64), indexing="ij")
    depth = torch.full((len(cells) + 1, size, size), 1.0, dtype=torch.float64)  # row 0: background
    for k, (cy, cx, ry, rx, angle) in enumerate(cells, start=1):
        dy, dx = yy - cy, xx - cx
        c, s = math.cos(angle), math.sin(angle)
        u, v = c * dx + s * dy, -s * dx + c * dy
        depth[k] = torch.sqrt((u / rx) ** 2 + (v / ry) ** 2)   # < 1 inside the ellipse
    mask = depth.argmin(dim=0)                                   # deepest ellipse wins

    # the shared membrane: pixels of a cell 4-adjacent to an *earlier* (lower-label) cell
    padded = F.pad(mask[None, None].double(), (1, 1, 1, 1), mode="replicate")[0, 0].long()
    membrane = torch.zeros_like(mask, dtype=torch.bool)
    for sy, sx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        other = padded[sy:sy + size, sx:sx + size]
        membrane |= (other > 0) & (other < mask)

    brightness = 0.55 + 0.25 * torch.rand(len(cells) + 1, generator=g, dtype=torch.float64)
    brightness[0] = 0.15
    image = brightness[mask]
    image = image + 0.08 * (mask > 0) * _smooth_noise((size, size), 3, g)   # cell texture
    image = image + 0.05 * _smooth_noise((size, size), 8, g)                # uneven illumination
    image = torch.where(membrane, image - membrane_contrast, image)          # faint membrane
    image = image + noise * torch.randn(size, size, generator=g, dtype=torch.float64)
    if separate:
        mask = torch.where(membrane, torch.zeros_like(mask), mask)
    return image.clamp(0.0, 1.0), mask


def touching_cells(
    n: int,
    size: int = 64,
    seed: int = 0,
    cells: tuple[int, int] = (4, 8),
    radius: tuple[float, float] = (5.0, 9.0),
    touching: float = 0.6,
    noise: float = 0.12,
    membrane: float = 0.25,
    separate: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` synthetic cell images with instance masks, some cells touching.

    Args:
        n: number of images.
        size: height and width in pixels.
        seed: everything is drawn from ``torch.Generator().manual_seed(seed)``.
        cells: (min, max) number of cells per image, both inclusive (fewer when they do not fit).
        radius: (min, max) mean radius of a cell in pixels.
        touching: probability that a new cell is placed against an earlier one.
        noise: standard deviation of the pixel noise.
        membrane: how much darker than its cell the shared border of two touching cells is drawn.
        separate: if True, where two cells touch, the pixels of the later cell that border
            the earlier one are set to background in the mask: touching cells are then parted
            by a one-pixel background line (their shared membrane, drawn faintly darker in the
            image), as in the paper's annotations, and no two labels are 4-adjacent. If False,
            touching cells share their border directly.

    Returns:
        ``(images, masks)``: images (n, 1, size, size) float32 in [0, 1]; masks
        (n, size, size) int64 with 0 for background and 1..K for the K cells of each image.
    """
    g = torch.Generator().manual_seed(seed)
    images = torch.empty(n, 1, size, size, dtype=torch.float32)
    masks = torch.empty(n, size, size, dtype=torch.int64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many tiny ops: thread hand-offs would cost more than the work
    try:
        for i in range(n):
            k = int(torch.randint(cells[0], cells[1] + 1, (), generator=g))
            placed = _place(k, size, radius, touching, g)
            image, mask = _render(placed, size, noise, membrane, separate, g)
            images[i, 0] = image.float()
            masks[i] = mask
    finally:
        torch.set_num_threads(threads)
    return images, masks
