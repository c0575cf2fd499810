"""The lake: layout, Parquet schemas, atomic writes, compaction and DuckDB views.

``connect()`` gives a notebook or script an in-memory DuckDB with every view of the lake::

    from progral_dagster.warehouse import connect
    con = connect()            # lake of $PROGRAL_HOME (default ./var)
    con.sql("select technique, count(*) from measurements group by 1").show()
"""

from __future__ import annotations

import os


def connect(home_or_lake: str | os.PathLike | None = None, **kwargs):
    """In-memory DuckDB connection with the lake's views (see ``views.connect``).

    ``home_or_lake`` may be a PROGRAL_HOME (containing ``lake/``) or a lake folder.
    """
    from pathlib import Path

    from .layout import is_remote
    from .views import connect as _connect

    if is_remote(home_or_lake):  # s3://bucket/prefix
        return _connect(home_or_lake, **kwargs)
    if home_or_lake is not None:
        p = Path(home_or_lake)
        if (p / "lake").is_dir() or not (p / "catalog").exists() and not (p / "raw").exists():
            from ..settings import load

            p = load(p).lake
        return _connect(p, **kwargs)
    return _connect(None, **kwargs)


__all__ = ["connect"]
