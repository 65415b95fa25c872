"""Synthetic touching cells: seeded, the documented shapes and ranges, and cells that touch."""

import torch
import torch.nn.functional as F

from course import data


def _four_neighbours(mask: torch.Tensor) -> list[torch.Tensor]:
    padded = F.pad(mask[None].double(), (1, 1, 1, 1), mode="replicate")[0].long()
    h, w = mask.shape
    return [padded[sy:sy + h, sx:sx + w] for sy, sx in ((0, 1), (2, 1), (1, 0), (1, 2))]


def test_touching_cells_shapes_and_seed():
    images, masks = data.touching_cells(6, size=40, seed=3)
    assert images.shape == (6, 1, 40, 40) and images.dtype == torch.float32
    assert masks.shape == (6, 40, 40) and masks.dtype == torch.int64
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    again = data.touching_cells(6, size=40, seed=3)
    assert torch.equal(images, again[0]) and torch.equal(masks, again[1])
    other = data.touching_cells(6, size=40, seed=4)
    assert not torch.equal(masks, other[1])


def test_touching_cells_labels_and_counts():
    _, masks = data.touching_cells(20, seed=0, cells=(4, 8))
    for mask in masks:
        labels = mask.unique()
        k = int(labels.max())
        assert int(labels.min()) == 0
        assert labels.tolist() == list(range(k + 1)), "labels are 0..K without holes"
        assert 2 <= k <= 8


def test_cells_are_brighter_than_background():
    images, masks = data.touching_cells(8, seed=1)
    fg = masks[:, None] > 0
    assert float(images[fg].mean()) > float(images[~fg].mean()) + 0.3


def test_some_cells_touch_and_are_parted_by_a_one_pixel_line():
    _, masks = data.touching_cells(10, seed=2)
    _, joined = data.touching_cells(10, seed=2, separate=False)
    touching_pairs = 0
    for mask, whole in zip(masks, joined):
        # separated masks: no two different labels are 4-adjacent
        for other in _four_neighbours(mask):
            assert not ((other > 0) & (mask > 0) & (other != mask)).any()
        # the joined masks have shared borders; the separated ones differ only there
        shared = torch.zeros_like(whole, dtype=torch.bool)
        for other in _four_neighbours(whole):
            shared |= (other > 0) & (whole > 0) & (other != whole)
        touching_pairs += int(shared.any())
        removed = (mask == 0) & (whole > 0)
        assert torch.equal(mask[~removed], whole[~removed])
        assert bool(shared[removed].all())
    assert touching_pairs >= 5, "most images should contain touching cells"
