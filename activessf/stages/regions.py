"""The region stage: inputs (images and whole slides) -> manifest, regions, crops, contact sheet.

Skipped when its marker records the same fingerprint (config, inputs and their content). Runs on
Ray Data (``activessf.distributed.regions`` / ``.slides``) or in this process (tests).
"""

from __future__ import annotations

from typing import Iterator, Literal

import pyarrow as pa

from activessf import console
from activessf.config import to_dict
from activessf.io import fs as afs
from activessf.io.markers import begin_stage, files_stamp, fingerprint, write_marker
from activessf.io.sources import load_inputs, refuse_output_inside_input
from activessf.regions.config import RegionsConfig
from activessf.regions.stage import (RegionsSummary, iter_local, iter_slides_local, split_inputs, write_contact_sheet,
                                     write_stage_outputs, write_summary)


def _executors(executor: str):
    """``(images, slides)`` iterators of the executor; Ray is imported only when it is used."""
    if executor == "ray":
        from activessf.distributed.regions import iter_ray
        from activessf.distributed.slides import iter_slides_ray

        return iter_ray, iter_slides_ray
    return iter_local, iter_slides_local


def _all_parts(images: pa.Table, slides: pa.Table, cfg: RegionsConfig, out_dir: str,
               executor: str) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Images first, then whole slides, through the chosen executor, counted on one progress bar."""
    run_images, run_slides = _executors(executor)
    with console.Bar(console.label("regions"), images.num_rows + slides.num_rows) as bar:
        for table, run in ((images, run_images), (slides, run_slides)):
            if table.num_rows:
                for part in run(table, cfg, out_dir):
                    bar.update(part[0].num_rows)
                    yield part


def run_regions(
    source: str,
    out_dir: str,
    cfg: RegionsConfig,
    labeled: bool = False,
    executor: Literal["ray", "local"] = "ray",
    force: bool = False,
) -> RegionsSummary | None:
    """Run the region stage end to end: inputs -> manifest, regions, crops, contact sheet.

    Args:
        source: Folder, manifest or one file (see ``load_inputs``); whole slides among the inputs
            are tiled (``cfg.slides``).
        out_dir: Output folder (local or object storage).
        cfg: Stage config.
        labeled: Take labels from ImageFolder sub-folders.
        executor: ``ray`` (Ray Data, local or cluster) or ``local`` (this process, for tests).
        force: Rerun even when the outputs are complete and current.

    Returns:
        The summary, or None when the stage was already complete and was skipped.
    """
    refuse_output_inside_input(source, out_dir)
    inputs = load_inputs(source, labeled=labeled, slides=True)
    paths = inputs.column("source_path").to_pylist()
    # Keyed by content too (size + mtime): new bytes at an old path must not reuse old regions.
    fp = fingerprint("regions", to_dict(cfg), paths, inputs.column("label").to_pylist(),
                     inputs.column("image_id").to_pylist(), labeled, files_stamp(paths))
    if not begin_stage("regions", out_dir, fp, cfg, force):
        return None
    # Crops of an interrupted or older attempt: a rerun writes every crop again, and one that is
    # no longer cut (another config, a changed image) must not stay behind unlisted.
    afs.remove_dir(afs.join(out_dir, "crops"))
    images, slides = split_inputs(inputs, cfg)
    parts = _all_parts(images, slides, cfg, out_dir, executor)
    summary = write_stage_outputs(parts, out_dir, expected_inputs=inputs.num_rows)
    write_summary(out_dir, summary)
    sheet = write_contact_sheet(out_dir, cfg)
    write_marker(out_dir, "regions", fp, {**summary.__dict__, "contact_sheet": sheet})
    console.detail(summary.line())
    return summary
