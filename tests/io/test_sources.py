import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from activessf.io.schema import image_id_for
from activessf.io.sources import InputError, load_inputs


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_folder_is_recursive_sorted_and_filters_extensions(tmp_path):
    for rel in ["b/2.PNG", "a/1.jpg", "a/deep/3.tif", "notes.txt", ".hidden.jpg"]:
        _touch(tmp_path / rel)
    table = load_inputs(str(tmp_path))
    names = [p.split("/")[-1] for p in table["source_path"].to_pylist()]
    assert names == ["1.jpg", "3.tif", "2.PNG"]
    assert table["label"].null_count == 3
    assert table["image_id"].to_pylist()[0] == image_id_for(table["source_path"].to_pylist()[0])


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
    assert table.num_rows == 1  # duplicates removed
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
