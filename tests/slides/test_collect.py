"""Tile results gathered per slide: a slide is finished when its header and every planned tile are in."""

from activessf.slides.collect import TileGather


def _tile(slide: str, tile: int, status: str = "ok", reason: str = "") -> dict:
    return {"image_id": slide, "tile": tile, "status": status, "reason": reason}


def test_slides_finish_with_their_tiles_in_plan_order_whatever_the_arrival_order():
    gather = TileGather()
    header = {**_tile("a", -1), "tiles_planned": 3}
    assert gather.add([_tile("a", 2), _tile("b", 0)]) == []
    assert gather.add([_tile("a", 0, "error", "unreadable tile"), header]) == []
    (done,) = gather.add([_tile("a", 1)])
    assert [r["tile"] for r in done.rows] == [0, 1, 2] and done.header is header
    assert done.tiles_done == 3 and done.failed == ["unreadable tile"]
    assert list(gather.pending) == ["b"]  # slide b still waits for its header
