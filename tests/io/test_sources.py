import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from activessf.io.schema import image_id_for
from activessf.io.sources import InputError, load_inputs, readable


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_folder_is_recursive_sorted_and_filters_extensions(tmp_path):
    for rel in ["b/2.PNG", "a/1.jpg", "a/deep/3.tif", "notes.txt", ".hidden.jpg"]:
        _touch(tmp_path / rel)
    table = readable(load_inputs(str(tmp_path)))
    names = [p.split("/")[-1] for p in table["source_path"].to_pylist()]
    assert names == ["1.jpg", "3.tif", "2.PNG"]
    assert table["label"].null_count == 3
    # Ids hash the path relative to the input folder, so a moved folder keeps them.
    assert table["image_id"].to_pylist()[0] == image_id_for("a/1.jpg")


def test_imagefolder_labels(tmp_path):
    for rel in ["SNE/a.jpg", "SNE/sub/b.jpg", "LY/c.jpg"]:
        _touch(tmp_path / rel)
    table = load_inputs(str(tmp_path), labeled=True)
    assert sorted(table["label"].to_pylist()) == ["LY", "SNE", "SNE"]


def test_labeled_folder_with_loose_image_is_an_error(tmp_path):
    _touch(tmp_path / "loose.jpg")
    with pytest.raises(InputError, match="ROOT/<class>/image"):
        load_inputs(str(tmp_path), labeled=True)


def test_csv_and_parquet_manifests_resolve_relative_paths(tmp_path):
    _touch(tmp_path / "imgs/a.jpg")
    (tmp_path / "m.csv").write_text("path,label\nimgs/a.jpg,EO\nimgs/a.jpg,EO\n")
    table = load_inputs(str(tmp_path / "m.csv"))
    assert table["reason"].to_pylist() == [None, f"duplicate of {tmp_path / 'imgs/a.jpg'}"]
    assert len(set(table["image_id"].to_pylist())) == 2  # the duplicate row has its own id
    table = readable(table)
    assert table["source_path"][0].as_py() == str(tmp_path / "imgs/a.jpg")
    assert table["label"].to_pylist() == ["EO"]
    pq.write_table(pa.table({"source_path": [str(tmp_path / "imgs/a.jpg")]}), tmp_path / "m.parquet")
    assert load_inputs(str(tmp_path / "m.parquet")).num_rows == 1


def test_manifest_without_path_column_and_empty_folder_fail_clearly(tmp_path):
    (tmp_path / "m.csv").write_text("x,y\n1,2\n")
    with pytest.raises(InputError, match="path column"):
        load_inputs(str(tmp_path / "m.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        load_inputs(str(tmp_path / "empty"))
    with pytest.raises(InputError, match="does not exist"):
        load_inputs(str(tmp_path / "missing"))


def _reasons(table):
    return {p.split("/")[-1]: r for p, r in zip(table["source_path"].to_pylist(), table["reason"].to_pylist())}


def test_skipped_entries_are_rows_with_their_reason(tmp_path):
    for rel in ["a.jpg", ".h.jpg", ".cache/b.png", "notes.txt"]:
        _touch(tmp_path / rel)
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    os.mkfifo(tmp_path / "fifo.png")
    reasons = _reasons(load_inputs(str(tmp_path)))
    assert reasons["a.jpg"] is None
    assert reasons[".h.jpg"] == reasons["b.png"] == "hidden file"
    assert reasons["dangling.jpg"].startswith("dangling symlink")
    assert reasons["fifo.png"] == "not a regular file"
    assert "notes.txt" not in reasons and len(reasons) == 5


def test_symlink_loop_is_followed_once(tmp_path):
    for rel in ["a.jpg", "b.jpg"]:
        _touch(tmp_path / rel)
    os.symlink(tmp_path, tmp_path / "loop")
    table = load_inputs(str(tmp_path))
    assert table.num_rows == 3
    assert readable(table).num_rows == 2
    assert "followed once" in _reasons(table)["loop"]


def test_one_file_reached_twice_is_kept_once(tmp_path):
    _touch(tmp_path / "real/a.jpg")
    os.symlink(tmp_path / "real/a.jpg", tmp_path / "real/alias.jpg")
    reasons = _reasons(load_inputs(str(tmp_path)))
    assert reasons == {"a.jpg": None, "alias.jpg": f"duplicate of {tmp_path / 'real/a.jpg'}"}


def test_manifest_relative_and_absolute_paths_are_one_file(tmp_path):
    _touch(tmp_path / "x.jpg")
    (tmp_path / "m.csv").write_text(f"path\n./x.jpg\n{tmp_path / 'x.jpg'}\n")
    table = load_inputs(str(tmp_path / "m.csv"))
    assert table.num_rows == 2 and readable(table).num_rows == 1
    assert table["reason"].to_pylist() == [None, f"duplicate of {tmp_path / 'x.jpg'}"]


def test_one_file_with_two_labels_is_an_error_naming_both_rows(tmp_path):
    _touch(tmp_path / "x.jpg")
    (tmp_path / "m.csv").write_text(f"path,label\nx.jpg,EO\n./x.jpg,LY\n")
    with pytest.raises(InputError, match=r"row 1: .*'EO'.* and .*row 2: .*'LY'.* same file"):
        load_inputs(str(tmp_path / "m.csv"))


def test_blank_label_is_an_error_naming_the_row(tmp_path):
    for rel in ["x.jpg", "y.jpg"]:
        _touch(tmp_path / rel)
    (tmp_path / "m.csv").write_text("path,label\nx.jpg,EO\ny.jpg,  \n")
    with pytest.raises(InputError, match="row 2: blank label"):
        load_inputs(str(tmp_path / "m.csv"))


def test_region_stage_writes_skipped_entries_as_rejected_rows(tmp_path, shared_data):
    from activessf.regions.config import RegionsConfig
    from activessf.regions.stage import iter_local

    folder = tmp_path / "in"
    folder.mkdir()
    real = min((shared_data / "pbc11" / "labeled" / "LY").glob("*.jpg"))
    shutil.copy(real, folder / "a.jpg")
    shutil.copy(real, folder / ".b.jpg")
    os.mkfifo(folder / "fifo.jpg")
    inputs = load_inputs(str(folder))
    rows = [r for manifest, _ in iter_local(inputs, RegionsConfig(), str(tmp_path / "out")) for r in manifest.to_pylist()]
    got = {r["source_path"].split("/")[-1]: (r["status"], r["reason"]) for r in rows}
    assert got == {"a.jpg": ("ok", ""), ".b.jpg": ("rejected", "hidden file"),
                   "fifo.jpg": ("rejected", "not a regular file")}
