"""DuckDB views over the lake's Parquet files. The view definitions live here, in code.

Every process opens its own in-memory DuckDB with these views (:func:`connect`), so nobody
waits on a DuckDB lock; the ``warehouse.duckdb`` file for outside tools is rebuilt under a
temporary name and renamed (:func:`build_warehouse_file`). A view over a table with no file
yet is an empty, typed view.

Interface views (names and columns are what users and scripts rely on):

- ``measurements``: one row per measurement (unique content): measurement_id, source_path,
  sha256, technique, format, reader, reader_version, instrument, n_files, size_bytes,
  ingested_at, superseded_by, is_current, twin_of, metadata (JSON), tables, row_counts.
- ``measurement_files``: every path a measurement was seen under (relative to the share root,
  absolute for files ingested from elsewhere), with sha256 and whether it is that path's current
  version.
- ``rejected_files``: files that could not be parsed, with the reason (until a newer version of
  the path parses).
- one view per data table of ``schemas.DATA_TABLES`` holding the current versions only, and
  ``<table>_all_versions`` including superseded ones.
- ``samples`` (sheet rows, newest version of each sheet), ``measurement_samples``
  (measurement_id -> sample_id, sheet path and version), ``sample_sheet_problems``.
- one view per derived table in ``lake/features/<name>/``.

For a lake in an object store (``s3://bucket/prefix``, see ``storage.py``) the same views read
``s3://`` globs through DuckDB's httpfs extension, after the statements of
``storage.duckdb_preamble`` (``LOAD httpfs`` and a temporary S3 secret).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import duckdb
import pyarrow as pa

from . import schemas
from .atomic import atomic_path
from .layout import LakeLayout, is_remote

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.float64(): "DOUBLE",
    pa.float32(): "FLOAT",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.int16(): "SMALLINT",
    pa.int8(): "TINYINT",
    pa.bool_(): "BOOLEAN",
}


def _duck_type(t: pa.DataType) -> str:
    if t in _DUCK_TYPES:
        return _DUCK_TYPES[t]
    if pa.types.is_timestamp(t):
        return "TIMESTAMP WITH TIME ZONE" if t.tz else "TIMESTAMP"
    if pa.types.is_list(t):
        return _duck_type(t.value_type) + "[]"
    if pa.types.is_dictionary(t):
        return _duck_type(t.value_type)
    raise TypeError(f"no DuckDB type for {t}")


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _has_files(folder: Path) -> bool:
    if not folder.exists():
        return False
    for _root, _dirs, files in os.walk(folder):
        if any(f.endswith(".parquet") and not f.startswith(".") for f in files):
            return True
    return False


def _source(layout: LakeLayout, table: str, schema: pa.Schema, extra: tuple[str, ...] = (),
            has_files=_has_files, store: bool = False) -> str:
    """SELECT over a table's Parquet files (``store``: its rows moved to ``superseded/``), or an
    empty typed relation when there are none."""
    cols = [f.name for f in schema] + list(extra)
    folder = layout.superseded_dir(table) if store else layout.table_dir(table)
    glob = layout.superseded_glob(table) if store else layout.table_glob(table)
    if has_files(folder):
        collist = ", ".join(f'"{c}"' for c in cols)
        return (
            f"SELECT {collist} FROM read_parquet({_q(glob)}, "
            "union_by_name=true, hive_partitioning=false)"
        )
    typed = [f'CAST(NULL AS {_duck_type(f.type)}) AS "{f.name}"' for f in schema]
    typed += [f'CAST(NULL AS VARCHAR) AS "{c}"' for c in extra]
    return f"SELECT {', '.join(typed)} WHERE false"


def _lister(lake_root):
    """(layout, has_files(folder), feature table names) of a local or object-store lake."""
    if is_remote(lake_root):
        from .lake import Lake

        lake = Lake(lake_root)
        names = lake.store.subdirs(str(lake.layout.features))
        return lake.layout, (lambda d: bool(lake.parquet_files(d))), names
    L = LakeLayout(Path(lake_root))
    names = (sorted(p.name for p in L.features.iterdir() if p.is_dir() and not p.name.startswith("."))
             if L.features.exists() else [])
    return L, _has_files, names


def preamble(lake_root) -> list[str]:
    """Statements a connection needs before the views: none for a local lake; for an object-store
    lake, loading httpfs and its S3 secret (``storage.duckdb_preamble``)."""
    if not is_remote(lake_root):
        return []
    from .lake import Lake

    return Lake(lake_root).duckdb_preamble()


CATALOG_TABLE_VIEWS = {
    "_cat_measurements": "catalog_measurements",
    "_cat_files": "catalog_files",
    "_cat_rejected": "catalog_rejected",
    "_cat_sheet_rows": "catalog_sheet_rows",
    "_cat_moved": "catalog_moved",
}


def catalog_statements() -> list[str]:
    """Views derived from the catalog alone (``_cat_*`` relations, see CATALOG_TABLE_VIEWS):
    which catalog row of a measurement wins, which versions are current or superseded, and
    which (measurement, batch) data rows the current-data views leave out. Compaction runs them
    on catalog tables read with pyarrow, so it needs no DuckDB access to the lake's files."""
    return [
        # newest catalog row per measurement (a re-parse with a newer reader, or a race, wins)
        """CREATE OR REPLACE VIEW _m_latest AS
           SELECT * EXCLUDE (_rn) FROM (
             SELECT *, row_number() OVER (PARTITION BY measurement_id ORDER BY ingested_at DESC, batch DESC) AS _rn
             FROM _cat_measurements) WHERE _rn = 1""",
        """CREATE OR REPLACE VIEW _m_first AS
           SELECT measurement_id, min(ingested_at) AS first_ingested_at FROM _cat_measurements GROUP BY 1""",
        # each (path, measurement) seen, for parsed measurements only
        """CREATE OR REPLACE VIEW _path_versions AS
           SELECT f.source_path, f.measurement_id, any_value(f.sha256) AS sha256,
                  max(f.mtime) AS mtime, min(f.seen_at) AS first_seen, max(f.seen_at) AS last_seen
           FROM _cat_files f SEMI JOIN _m_latest m ON f.measurement_id = m.measurement_id
           GROUP BY f.source_path, f.measurement_id""",
        """CREATE OR REPLACE VIEW _path_current AS
           SELECT * EXCLUDE (_rn) FROM (
             SELECT *, row_number() OVER (PARTITION BY source_path ORDER BY mtime DESC, last_seen DESC) AS _rn
             FROM _path_versions) WHERE _rn = 1""",
        "CREATE OR REPLACE VIEW _current_ids AS SELECT DISTINCT measurement_id FROM _path_current",
        """CREATE OR REPLACE VIEW _superseded AS
           SELECT v.measurement_id, arg_max(c.measurement_id, v.last_seen) AS superseded_by
           FROM _path_versions v JOIN _path_current c ON v.source_path = c.source_path
           WHERE v.measurement_id NOT IN (SELECT measurement_id FROM _current_ids)
           GROUP BY v.measurement_id""",
        """CREATE OR REPLACE VIEW _twins AS
           SELECT a.measurement_id, string_agg(b.measurement_id, ',' ORDER BY b.measurement_id) AS twin_of
           FROM _m_latest a JOIN _m_latest b ON a.twin_key = b.twin_key AND a.measurement_id <> b.measurement_id
           WHERE a.twin_key IS NOT NULL GROUP BY a.measurement_id""",
        """CREATE OR REPLACE VIEW _winners AS
           SELECT m.measurement_id, m.batch FROM _m_latest m
           SEMI JOIN _current_ids c ON m.measurement_id = c.measurement_id""",
        # data rows the views leave out: older or duplicate parses of a measurement, and the
        # rows of superseded measurements (compaction moves both to superseded/)
        """CREATE OR REPLACE VIEW _dup_losers AS
           SELECT measurement_id, batch FROM _cat_measurements
           EXCEPT SELECT measurement_id, batch FROM _m_latest""",
        """CREATE OR REPLACE VIEW _superseded_pairs AS
           SELECT m.measurement_id, m.batch FROM _m_latest m
           ANTI JOIN _current_ids c ON m.measurement_id = c.measurement_id""",
    ]


def view_statements(lake_root: Path | str) -> list[str]:
    """The CREATE VIEW statements for a lake (a folder, or ``s3://...``), in dependency order."""
    L, has, feature_names = _lister(lake_root)
    S = schemas.CATALOG_TABLES

    def src(table: str, schema: pa.Schema, extra: tuple[str, ...] = ()) -> str:
        return _source(L, table, schema, extra, has_files=has)

    st = [
        *(f"CREATE OR REPLACE VIEW {view} AS {src(table, S[table])}"
          for view, table in CATALOG_TABLE_VIEWS.items()),
        *catalog_statements(),
        """CREATE OR REPLACE VIEW measurements AS
           SELECT m.measurement_id,
                  p.source_path,
                  m.sha256, m.technique, m.format, m.reader, m.reader_version, m.instrument,
                  m.n_files, m.size_bytes,
                  fi.first_ingested_at AS ingested_at,
                  s.superseded_by,
                  (s.superseded_by IS NULL) AS is_current,
                  t.twin_of,
                  m.metadata, m.tables, m.row_counts, m.partition_key
           FROM _m_latest m
           LEFT JOIN (SELECT measurement_id, arg_max(source_path, last_seen) AS source_path
                      FROM _path_versions GROUP BY 1) p USING (measurement_id)
           LEFT JOIN _m_first fi USING (measurement_id)
           LEFT JOIN _superseded s USING (measurement_id)
           LEFT JOIN _twins t USING (measurement_id)""",
        """CREATE OR REPLACE VIEW measurement_files AS
           SELECT f.source_path, f.measurement_id, any_value(f.sha256) AS sha256, f.member_sha256,
                  any_value(f.size_bytes) AS size_bytes, max(f.mtime) AS mtime,
                  min(f.seen_at) AS first_seen, max(f.seen_at) AS last_seen, any_value(f.raw_path) AS raw_path,
                  bool_or(c.measurement_id IS NOT NULL) AS is_current
           FROM _cat_files f
           SEMI JOIN _m_latest m ON f.measurement_id = m.measurement_id
           LEFT JOIN _path_current c ON c.source_path = f.source_path AND c.measurement_id = f.measurement_id
           GROUP BY f.source_path, f.measurement_id, f.member_sha256""",
        """CREATE OR REPLACE VIEW rejected_files AS
           SELECT r.source_path, r.sha256, r.reason, r.error_type, r.size_bytes, r.mtime, r.rejected_at
           FROM (SELECT * EXCLUDE (_rn) FROM (
                   SELECT *, row_number() OVER (PARTITION BY source_path, sha256 ORDER BY rejected_at DESC) AS _rn
                   FROM _cat_rejected) WHERE _rn = 1) r
           WHERE r.sha256 NOT IN (SELECT sha256 FROM _m_latest)
             AND NOT EXISTS (SELECT 1 FROM _cat_files f WHERE f.source_path = r.source_path AND f.mtime > r.mtime)
             AND NOT EXISTS (SELECT 1 FROM _cat_rejected r2 WHERE r2.source_path = r.source_path AND r2.mtime > r.mtime)""",
        # sample sheets: newest version of each sheet path
        """CREATE OR REPLACE VIEW _sheet_current AS
           SELECT r.* FROM _cat_sheet_rows r
           JOIN (SELECT sheet_path, arg_max(sheet_sha256, (sheet_mtime, ingested_at)) AS sheet_sha256
                 FROM _cat_sheet_rows GROUP BY 1) v
             ON r.sheet_path = v.sheet_path AND r.sheet_sha256 = v.sheet_sha256
           QUALIFY row_number() OVER (PARTITION BY r.sheet_path, r.row ORDER BY r.ingested_at DESC) = 1""",
        """CREATE OR REPLACE VIEW samples AS
           SELECT sample_id, project, material, label, composition, polarity, spot, field_of_view_um,
                  labels_for, storage_atmosphere, dew_point_c, storage_time_h, cell_id, file, pattern,
                  extra, sheet_path, sheet_sha256 AS sheet_version, sheet_mtime, row, problems
           FROM _sheet_current""",
        """CREATE OR REPLACE VIEW sample_sheet_problems AS
           SELECT sheet_path, row, file, problems FROM _sheet_current WHERE problems IS NOT NULL""",
        """CREATE OR REPLACE VIEW measurement_samples AS
           WITH links AS (
             SELECT f.measurement_id, s.* FROM measurement_files f
             JOIN _sheet_current s ON f.source_path = s.pattern
             WHERE NOT regexp_matches(s.pattern, '[*?\\[]')
             UNION ALL
             SELECT f.measurement_id, s.* FROM measurement_files f
             JOIN (SELECT * FROM _sheet_current WHERE regexp_matches(pattern, '[*?\\[]')) s
               ON f.source_path GLOB s.pattern)
           SELECT DISTINCT ON (measurement_id, sheet_path, row)
                  measurement_id, sample_id, project, material, label, composition, polarity, spot,
                  field_of_view_um, labels_for, storage_atmosphere, dew_point_c, storage_time_h, cell_id,
                  extra, sheet_path, sheet_sha256 AS sheet_version, sheet_mtime, row
           FROM links WHERE problems IS NULL OR sample_id IS NOT NULL""",
    ]
    for name, schema in schemas.DATA_TABLES.items():
        cols = ", ".join(f'd."{f.name}"' for f in schema)
        sel = src(name, schema, extra=("_batch",))
        moved = f"SELECT measurement_id, batch FROM _cat_moved WHERE table_name = {_q(name)}"
        on = "ON d.measurement_id = h.measurement_id AND d._batch = h.batch"
        # active files: every row but the hidden ones not yet moved (usually none: a plain scan)
        current = (f"SELECT {cols} FROM ({sel}) d ANTI JOIN ("
                   f"(SELECT * FROM _dup_losers UNION SELECT * FROM _superseded_pairs) EXCEPT {moved}) h {on}")
        everything = f"SELECT {cols} FROM ({sel}) d ANTI JOIN (SELECT * FROM _dup_losers EXCEPT {moved}) h {on}"
        if has(L.superseded_dir(name)):
            stored = _source(L, name, schema, ("_batch",), has_files=has, store=True)
            # moved rows of a measurement that became current again (a file reverted)
            current += (f" UNION ALL SELECT {cols} FROM ({stored}) d SEMI JOIN "
                        f"(SELECT * FROM _winners INTERSECT {moved}) h {on}")
            everything += f" UNION ALL SELECT {cols} FROM ({stored}) d ANTI JOIN _dup_losers h {on}"
        st.append(f"CREATE OR REPLACE VIEW {name}_all_versions AS {everything}")
        st.append(f"CREATE OR REPLACE VIEW {name} AS {current}")
    for name in feature_names:
        if name.isidentifier() and has(L.feature_dir(name)):
            st.append(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet("
                f"{_q(L.feature_glob(name))}, union_by_name=true, hive_partitioning=false)"
            )
    return st


PUBLIC_VIEWS_HIDDEN_PREFIX = "_"


def connect(lake_root: str | os.PathLike | None = None, *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every view of the lake.

    New data written to existing tables is visible on the next query; tables that appear for
    the first time (a new technique, a new feature table) need a new connection.
    """
    if lake_root is None:
        from ..settings import load

        lake_root = load().lake
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if not is_remote(lake_root):
        lake_root = Path(lake_root)
    for s in preamble(lake_root) + view_statements(lake_root):
        con.execute(s)
    return con


def public_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows if not r[0].startswith(PUBLIC_VIEWS_HIDDEN_PREFIX)]


def build_warehouse_file(lake_root: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Rebuild the ``warehouse.duckdb`` file of views for outside tools, atomically."""
    target = Path(target)
    with atomic_path(target) as tmp:
        con = duckdb.connect(str(tmp))
        try:
            root = lake_root if is_remote(lake_root) else Path(lake_root)
            for s in preamble(root) + view_statements(root):
                con.execute(s)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        with contextlib.suppress(FileNotFoundError):
            Path(str(tmp) + ".wal").unlink()
    return target
