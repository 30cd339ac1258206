"""Handing a published list to campaign systems as files: the treatment group only, as CSV and
Parquet in a folder per campaign, date and run, with a manifest (row counts, checksums, schema,
model versions, run id) and a marker written last, so a consumer that waits for the marker never
reads half a list.

    <exports>/<campaign_id>/publish_date=<date>/run=<run_id>/
        targets.csv/part-*.csv   targets.parquet/part-*.parquet   manifest.json   _READY

The folder is built under a temporary name and renamed into place before the marker is written;
a run that dies leaves no marker (and at most a temporary folder that the next run replaces). A
list already exported (its folder has a marker) is not written again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crmlake.publish.targets import TREATMENT

MARKER = "_READY"
MANIFEST = "manifest.json"
# What leaves the lake: who to contact, with what, until when; no key, no group, no control.
EXPORTED = ("campaign_id", "publish_date", "msisdn", "rank", "score_band", "offer_code", "channel", "valid_until")


def export_folder(exports: str | Path, campaign_id: str, publish_date, run_id: str) -> Path:
    return Path(exports) / campaign_id / f"publish_date={publish_date}" / f"run={run_id}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_list(
    list_df: DataFrame, exports: str | Path, campaign_id: str, publish_date, run_id: str, models: list[str]
) -> dict:
    """Write the treatment rows of one list (gold.campaign_targets' columns) and return the
    manifest. Nothing is written when the folder already holds a marker."""
    final = export_folder(exports, campaign_id, publish_date, run_id)
    if (final / MARKER).exists():
        return json.loads((final / MANIFEST).read_text(encoding="utf-8"))
    work = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    out_df = list_df.where(F.col("group") == TREATMENT).select(*EXPORTED).orderBy("rank")
    rows = out_df.count()
    out_df.coalesce(1).write.option("header", True).csv(str(work / "targets.csv"))
    out_df.coalesce(1).write.parquet(str(work / "targets.parquet"))
    files = []
    for part in sorted([*work.glob("targets.csv/part-*"), *work.glob("targets.parquet/part-*")]):
        files.append({"path": str(part.relative_to(work)), "bytes": part.stat().st_size, "sha256": _sha256(part)})
    manifest = {
        "campaign_id": campaign_id,
        "publish_date": str(publish_date),
        "run_id": run_id,
        "rows": rows,
        "models": models,
        "schema": [{"name": f.name, "type": f.dataType.simpleString()} for f in out_df.schema.fields],
        "files": files,
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    if final.exists():  # an earlier attempt renamed into place but died before its marker
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    work.rename(final)
    (final / MARKER).write_text(f"{rows}\n", encoding="utf-8")
    return manifest


def verify(folder: str | Path) -> dict:
    """What a consumer does: wait for the marker, read the manifest, check every file's size and
    checksum. Returns the manifest; ValueError naming the first problem."""
    folder = Path(folder)
    if not (folder / MARKER).exists():
        raise ValueError(f"{folder}: no {MARKER} marker: the list is not complete")
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    for f in manifest["files"]:
        path = folder / f["path"]
        if not path.exists() or path.stat().st_size != f["bytes"] or _sha256(path) != f["sha256"]:
            raise ValueError(f"{path}: does not match the manifest")
    return manifest
