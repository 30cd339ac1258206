"""Bytes a row of a Delta table takes on disk, column by column, from its Parquet files' footers
(compressed column chunks; no row is read).

    python scripts/bench/column_bytes.py ROOT/silver/usage [--files N]

``--files N`` reads the footers of the first N data files (all by default); the table's current
files are listed with delta-rs (``features.delta_files``).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features import delta_files  # noqa: E402


def column_bytes(table: str, files: int | None = None) -> tuple[int, dict[str, int]]:
    """(rows, compressed bytes by column) over the table's first ``files`` data files."""
    uris = delta_files(Path(table))
    rows, sizes = 0, collections.Counter()
    for path in sorted(uris)[:files]:
        meta = pq.ParquetFile(path).metadata
        rows += meta.num_rows
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                sizes[group.column(c).path_in_schema] += group.column(c).total_compressed_size
    return rows, dict(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("table", help="a Delta table's folder")
    parser.add_argument("--files", type=int, help="read the first N data files only")
    args = parser.parse_args()
    rows, sizes = column_bytes(args.table, args.files)
    total = sum(sizes.values())
    print(f"{args.table}: {rows:,} rows, {total / max(rows, 1):.1f} bytes a row")
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"  {name:24s} {size / max(rows, 1):7.1f} bytes a row  {100 * size / max(total, 1):5.1f} %")


if __name__ == "__main__":
    main()
    os._exit(0)  # delta-rs can abort at interpreter exit after reading tables
