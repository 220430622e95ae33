"""Tiling math: the grid covers the slide, cores partition it, a cell is owned once and whole."""

import numpy as np
import pytest

from activessf.slides import tiling


@pytest.mark.parametrize("length,tile,overlap", [(100, 512, 128), (512, 512, 128), (513, 512, 128),
                                                 (2688, 512, 256), (20000, 1024, 256), (1000, 300, 0)])
def test_grid_inside_the_axis_with_at_least_the_overlap(length, tile, overlap):
    starts = tiling.grid_starts(length, tile, overlap)
    extent = min(tile, length)
    assert starts[0] == 0 and starts[-1] + extent == length  # covers the axis, never runs past it
    gaps = np.diff(starts)
    assert (gaps > 0).all() and (extent - gaps >= overlap).all()
    # As few tiles as the nominal stride needs.
    assert len(starts) == (1 if length <= tile else int(np.ceil((length - overlap) / (tile - overlap))))


@pytest.mark.parametrize("length,tile,overlap", [(2688, 512, 256), (3001, 700, 150), (600, 512, 128)])
def test_cores_partition_the_axis_and_stay_half_an_overlap_inside(length, tile, overlap):
    starts = tiling.grid_starts(length, tile, overlap)
    extent = min(tile, length)
    cores = [tiling.core_bounds(starts, i, extent, length) for i in range(len(starts))]
    assert cores[0][0] == 0 and cores[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(cores, cores[1:]))
    for i, (lo, hi) in enumerate(cores):
        if i > 0:
            assert lo - starts[i] >= overlap // 2
        if i < len(starts) - 1:
            assert starts[i] + extent - hi >= overlap // 2


def test_every_cell_owned_once_and_whole_in_its_owner():
    """Random cells up to ``overlap`` wide over a 2-D grid: exactly one tile owns each, and the
    owner holds it whole (the cell is never kept as a piece cut by a tile border)."""
    rng = np.random.default_rng(0)
    width, height, tile, overlap = 2500, 1700, 512, 200
    xs, ys = tiling.grid_starts(width, tile, overlap), tiling.grid_starts(height, tile, overlap)
    size = rng.integers(10, overlap + 1, (2000, 2))
    boxes = np.column_stack([rng.integers(0, width - size[:, 0]), rng.integers(0, height - size[:, 1]), size])
    owners = np.zeros(len(boxes), int)
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            (cx0, cx1), (cy0, cy1) = tiling.core_bounds(xs, i, tile, width), tiling.core_bounds(ys, j, tile, height)
            mine = tiling.owned(boxes, (cx0, cy0, cx1, cy1))
            owners += mine
            b = boxes[mine]
            assert ((b[:, 0] >= x) & (b[:, 1] >= y) & (b[:, 0] + b[:, 2] <= x + tile)
                    & (b[:, 1] + b[:, 3] <= y + tile)).all()
    assert (owners == 1).all()


def test_choose_scale_reads_the_coarsest_level_fine_enough():
    dims, ds = (40000, 30000), [1.0, 4.0, 16.0]
    s = tiling.choose_scale(dims, ds, mpp=0.25, target_mpp=0.5, level=0)
    assert (s.level, s.factor, s.width, s.height) == (0, 2.0, 20000, 15000)
    s = tiling.choose_scale(dims, ds, mpp=0.25, target_mpp=1.0, level=0)
    assert (s.level, s.factor) == (1, 4.0)
    s = tiling.choose_scale(dims, ds, mpp=0.25, target_mpp=0.1, level=0)  # never upsampled
    assert (s.level, s.factor, s.width) == (0, 1.0, 40000)
    s = tiling.choose_scale(dims, ds, mpp=None, target_mpp=0.5, level=1)  # no mpp: the level
    assert (s.level, s.factor, s.width) == (1, 4.0, 10000)
    assert tiling.choose_scale(dims, ds, mpp=None, target_mpp=None, level=9).level == 2


def test_to_level0_covers_the_working_box():
    out = tiling.to_level0(np.array([[10, 20, 30, 40]]), (100, 200), 2.5)
    assert out.tolist() == [[275, 550, 75, 100]]


def test_duplicates_drop_only_repeats_from_other_tiles():
    boxes = np.array([[0, 0, 100, 100], [5, 3, 100, 98], [500, 500, 50, 50], [510, 505, 50, 50],
                      [2000, 0, 80, 80]])
    tiles = np.array([3, 1, 2, 2, 0])
    drop = tiling.duplicates(boxes, tiles, 0.5)
    # The pair from tiles 3 and 1 is one cell: tile 1's box stays. Two boxes of one tile are two
    # cells to the filter that drew them, and stay.
    assert drop.tolist() == [True, False, False, False, False]


def test_glass_mask_and_tissue_fraction():
    import cv2

    rgb = np.full((100, 200, 3), 242, np.uint8)
    rgb[:50, :100] = (200, 120, 180)  # stained quarter
    mask = tiling.stained_mask(rgb, 0.1)
    assert mask.sum() == 50 * 100
    table = cv2.integral(mask.astype(np.uint8))
    assert tiling.tissue_fraction(table, (0, 0, 200, 100)) == pytest.approx(0.25)
    assert tiling.tissue_fraction(table, (100, 0, 200, 100)) == 0.0
    assert tiling.tissue_fraction(table, (-100, -50, 100, 50)) == pytest.approx(0.25)  # outside = glass
