"""``progral sql``, ``progral tables`` and ``progral status``: looking into the lake."""

from __future__ import annotations

import json

import duckdb

from .. import settings as settings_mod
from ..warehouse.views import connect, public_views
from . import output


def _con(args):
    s = settings_mod.load(args.home)
    return connect(s.lake)


def run_sql(args) -> int:
    con = _con(args)
    try:
        rel = con.execute(args.query)
    except duckdb.Error as exc:
        raise SystemExit(f"progral sql: {str(exc).strip()}") from None
    if rel.description is None:
        return 0
    cols = [d[0] for d in rel.description]
    rows = rel.fetchall()
    fmt = args.format
    if fmt == "json":
        output.to_json(output.records(cols, rows))
    elif fmt == "csv":
        output.write_csv(cols, rows)
    else:
        output.table(cols, rows)
        if len(rows) != 1:
            print(f"({len(rows)} rows)")
    return 0


def run_tables(args) -> int:
    con = _con(args)
    out = []
    for v in public_views(con):
        n = con.execute(f'SELECT count(*) FROM "{v}"').fetchone()[0]
        cols = con.execute(f'DESCRIBE "{v}"').fetchall()
        out.append({"view": v, "rows": n, "columns": [f"{c[0]} {c[1]}" for c in cols]})
    if args.json:
        output.to_json(out)
        return 0
    for t in out:
        print(f"{t['view']}  ({t['rows']} rows)")
        print("    " + ", ".join(t["columns"]))
    return 0


def status_data(con) -> dict:
    def q(sql):
        r = con.execute(sql)
        cols = [d[0] for d in r.description]
        return output.records(cols, r.fetchall())

    return {
        "by_technique": q("""SELECT technique, format, count(*) AS measurements,
                                    count(*) FILTER (WHERE is_current) AS current,
                                    max(ingested_at) AS latest
                             FROM measurements GROUP BY 1, 2 ORDER BY 1, 2"""),
        "latest": q("""SELECT ingested_at, technique, format, source_path FROM measurements
                       ORDER BY ingested_at DESC LIMIT 10"""),
        "rejected": q("SELECT source_path, reason, rejected_at FROM rejected_files ORDER BY source_path"),
        "sheets": q("""SELECT sheet_path, count(*) AS rows, count(problems) AS rows_with_problems
                       FROM samples GROUP BY 1 ORDER BY 1"""),
        "sheet_problems": q("SELECT sheet_path, row, file, problems FROM sample_sheet_problems ORDER BY 1, 2"),
        "files": q("""SELECT count(*) AS paths, count(DISTINCT measurement_id) AS measurements
                      FROM measurement_files""")[0],
    }


def run_status(args) -> int:
    s = settings_mod.load(args.home)
    con = connect(s.lake)
    d = status_data(con)
    d["home"] = str(s.home)
    d["share"] = str(s.share)
    if args.json:
        output.to_json(d)
        return 0
    print(f"home {s.home}\nshare {s.share}")
    f = d["files"]
    print(f"{f['measurements']} measurements from {f['paths']} paths, {len(d['rejected'])} rejected files\n")
    if d["by_technique"]:
        output.table(["technique", "format", "measurements", "current", "latest ingestion"],
                     [list(r.values()) for r in d["by_technique"]])
    if d["latest"]:
        print("\nlatest ingestions:")
        output.table(["ingested", "technique", "format", "path"], [list(r.values()) for r in d["latest"]], max_width=80)
    if d["rejected"]:
        print("\nrejected files:")
        for r in d["rejected"]:
            print(f"  {r['source_path']}: {r['reason']}")
    if d["sheets"]:
        print("\nsample sheets:")
        output.table(["sheet", "rows", "rows with problems"], [list(r.values()) for r in d["sheets"]])
    for p in d["sheet_problems"]:
        print(f"  {p['sheet_path']} row {p['row']} ({p['file']}): {p['problems']}")
    return 0


__all__ = ["run_sql", "run_tables", "run_status", "json"]
