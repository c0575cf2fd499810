"""The lake on S3-compatible storage (``PROGRAL_LAKE=s3://bucket/prefix``) against a local S3
endpoint (moto's server on 127.0.0.1).

`progral ingest` of real IONTOF exports (plus a copy under another name and a broken file) into
an S3 lake; what is in the bucket is then read back by independent means (boto3 for objects,
pyarrow's own S3 filesystem for the Parquet files) and compared with the files themselves
(sha256, bytes, data rows counted from the text). The DuckDB views for an S3 lake cannot run
here (httpfs cannot be downloaded): their SQL is checked to be the local lake's SQL with the
location swapped, and that SQL is run on a download of the bucket.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from progral_dagster import settings as settings_mod
from progral_dagster.cli import main
from progral_dagster.warehouse.layout import LakeLayout

from .helpers import make_settings, write

BUCKET = "progral-lake"
PREFIX = "lab/lake"
URL = f"s3://{BUCKET}/{PREFIX}"
REAL = ["sims-iontof/P_Ru_Bi1_1.txt", "sims-iontof/N_HEA19_Bi1_1.txt"]
CREDS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _data_rows(path: Path) -> int:
    """Rows of an IONTOF text export: lines that start with a digit (the header lines do not)."""
    return sum(1 for ln in path.read_bytes().split(b"\n") if ln.strip() and ln[:1].isdigit())


@pytest.fixture(scope="module")
def endpoint():
    server_mod = pytest.importorskip(
        "moto.server", reason="moto[server] (dev extra) is not installed"
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    saved = {k: os.environ.get(k) for k in CREDS}
    os.environ.update(CREDS)
    srv = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    url = f"http://{host}:{port}"
    import boto3

    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    try:
        yield url
    finally:
        srv.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3(endpoint, monkeypatch):
    """A boto3 client on the endpoint, an empty bucket, and the S3 lake settings in the env."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for o in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=o["Key"])
    monkeypatch.setenv("PROGRAL_LAKE", URL)
    monkeypatch.setenv("PROGRAL_S3_ENDPOINT", endpoint)
    monkeypatch.delenv("PROGRAL_STATE_DIR", raising=False)
    return client


def _keys(client) -> list[str]:
    out = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        out += [o["Key"] for o in page.get("Contents", [])]
    return sorted(out)


def _table(endpoint: str, client, folder: str) -> pa.Table:
    """Every Parquet object under ``folder`` of the lake, read with a separate pyarrow filesystem."""
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(
        endpoint_override=endpoint.split("://", 1)[1],
        scheme="http",
        access_key=CREDS["AWS_ACCESS_KEY_ID"],
        secret_key=CREDS["AWS_SECRET_ACCESS_KEY"],
        region="us-east-1",
    )
    keys = [
        k for k in _keys(client) if k.startswith(f"{PREFIX}/{folder}/") and k.endswith(".parquet")
    ]
    assert keys, f"no Parquet object under {folder}"
    return pa.concat_tables(
        [pq.read_table(f"{BUCKET}/{k}", filesystem=fs) for k in keys], promote_options="permissive"
    )


def test_settings_s3_lake_keeps_state_local(tmp_path, s3, monkeypatch):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    assert s.lake_is_remote and s.lake == URL and s.state_dir == s.home / "state"
    # the share sensor builds its layout from the settings' lake: the index stays on local disk
    assert LakeLayout(s.lake).share_index == s.home / "state" / "share_index.sqlite"
    from progral_dagster.warehouse.lake import Lake

    lake = Lake(s.lake)
    assert (
        type(lake).__name__ == "ObjectStoreLake"
        and lake.layout.share_index == LakeLayout(s.lake).share_index
    )
    # a home given explicitly keeps the S3 lake (it lies outside any home) and its own state
    other = settings_mod.load(tmp_path / "other")
    assert other.lake == URL and other.state_dir == tmp_path / "other" / "state"
    monkeypatch.setenv("PROGRAL_STATE_DIR", str(tmp_path / "st"))
    assert settings_mod.load().state_dir == tmp_path / "st"
    # a local lake: unchanged
    monkeypatch.delenv("PROGRAL_LAKE")
    local = settings_mod.load(tmp_path / "h")
    assert local.lake == tmp_path / "h" / "lake" and not local.lake_is_remote
    assert (
        LakeLayout(local.lake).share_index
        == tmp_path / "h" / "lake" / "_state" / "share_index.sqlite"
    )


def test_ingest_into_s3_lake_and_read_back(tmp_path, s3, endpoint, samples, monkeypatch, capsys):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    folder = tmp_path / "exports"
    for rel in REAL:
        write(folder / Path(rel).name, (samples / rel).read_bytes())
    write(folder / "same bytes other name.txt", (samples / REAL[0]).read_bytes())
    write(folder / "garbage.txt", bytes(range(256)) * 4)
    files = sorted(folder.iterdir())
    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    assert main(["ingest", str(folder), "--home", str(s.home), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["summary"]["counts"] == {"ingested": 2, "present": 1, "rejected": 1}

    keys = _keys(s3)
    # every file's bytes under its content address, nothing temporary left, nothing on local disk
    for p in files:
        key = f"{PREFIX}/raw/{sha[p.name][:2]}/{sha[p.name]}/"
        mine = [k for k in keys if k.startswith(key)]
        assert len(mine) == 1, (p.name, mine)
        assert s3.get_object(Bucket=BUCKET, Key=mine[0])["Body"].read() == p.read_bytes()
    # (pyarrow keeps an emptied "folder" as a marker object ending in "/": not a file)
    assert not [
        k
        for k in keys
        if not k.endswith("/") and ("/_incoming/" in k or k.rsplit("/", 1)[-1].startswith("."))
    ]
    assert not (s.home / "lake").exists()

    m = _table(endpoint, s3, "catalog/catalog_measurements")
    assert sorted(m.column("sha256").to_pylist()) == sorted({sha[Path(r).name] for r in REAL})
    f = _table(endpoint, s3, "catalog/catalog_files")
    # a path record per file copied, the broken one included (its rejection is recorded apart)
    assert sorted(Path(p).name for p in f.column("source_path").to_pylist()) == [
        p.name for p in files
    ]
    assert {r["source_path"].rsplit("/", 1)[-1]: r["member_sha256"] for r in f.to_pylist()} == sha
    rej = _table(endpoint, s3, "catalog/catalog_rejected").to_pylist()
    assert [Path(r["source_path"]).name for r in rej] == ["garbage.txt"] and rej[0]["reason"]
    spectra = _table(endpoint, s3, "tables/tof_sims_spectra")
    per_mid = dict(
        zip(
            *pa.TableGroupBy(spectra, "measurement_id")
            .aggregate([("measurement_id", "count")])
            .to_pydict()
            .values(),
            strict=True,
        )
    )
    expected = {sha[Path(r).name][:20]: _data_rows(samples / r) for r in REAL}
    assert per_mid == expected

    # the catalog through the project's own reader (pyarrow dataset on the lake's filesystem)
    from progral_dagster.warehouse import catalog
    from progral_dagster.warehouse.lake import Lake

    known = catalog.known_measurements(Lake(s.lake))
    assert set(known) == set(expected)

    # the same folder again: nothing new in the bucket
    assert main(["ingest", str(folder), "--home", str(s.home), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["summary"]["counts"].get("ingested", 0) == 0
    data_keys = [k for k in _keys(s3) if "/tables/" in k or "/raw/" in k]
    assert data_keys == [k for k in keys if "/tables/" in k or "/raw/" in k]


def test_views_sql_for_s3_lake_is_the_local_sql_on_s3_globs(
    tmp_path, s3, endpoint, samples, monkeypatch
):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    folder = tmp_path / "exports"
    for rel in REAL:
        write(folder / Path(rel).name, (samples / rel).read_bytes())
    assert main(["ingest", str(folder), "--home", str(s.home)]) == 0
    from progral_dagster.warehouse.lake import Lake
    from progral_dagster.warehouse.views import connect, preamble, view_statements

    Lake(s.lake).write_feature_table(
        "demo_features", pa.table({"measurement_id": ["a", "b"], "x": [1.0, 2.0]})
    )
    remote = view_statements(URL)
    text = "\n".join(remote)
    assert f"read_parquet('{URL}/catalog/catalog_measurements/**/*.parquet'" in text
    assert f"read_parquet('{URL}/tables/tof_sims_spectra/**/*.parquet'" in text
    assert f"read_parquet('{URL}/features/demo_features/**/*.parquet'" in text
    # a table with no object yet is an empty typed view, as on disk
    assert (
        "CAST(NULL AS"
        in text.split("CREATE OR REPLACE VIEW xps_spectra_all_versions")[1].split("CREATE")[0]
    )
    pre = preamble(URL)
    host = endpoint.split("://", 1)[1]
    assert pre[0] == "LOAD httpfs" and not any("INSTALL" in p for p in pre)
    for part in (
        "TYPE s3",
        f"ENDPOINT '{host}'",
        "URL_STYLE 'path'",
        "USE_SSL false",
        f"KEY_ID '{CREDS['AWS_ACCESS_KEY_ID']}'",
        f"SCOPE 's3://{BUCKET}'",
    ):
        assert part in pre[1]
    # the bucket downloaded by boto3 into a folder: the same SQL with the location swapped, and it runs
    mirror = tmp_path / "mirror"
    for k in _keys(s3):
        if k.endswith("/"):
            continue  # an empty "directory marker" object the S3 client may leave
        out = mirror / k[len(PREFIX) + 1 :]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())
    assert [st.replace(URL, str(mirror)) for st in remote] == view_statements(mirror)
    con = connect(mirror)
    assert con.execute("select count(*) from measurements").fetchone()[0] == 2
    assert con.execute("select count(*) from tof_sims_spectra").fetchone()[0] == sum(
        _data_rows(samples / r) for r in REAL
    )
    assert con.execute("select sum(x) from demo_features").fetchone()[0] == 3.0
    # connecting to the S3 lake itself needs httpfs: it fails at once, with DuckDB's own message
    with pytest.raises(Exception, match="httpfs"):
        connect(URL)


def test_features_arrays_streams_and_cleanup_on_s3(tmp_path, s3, endpoint, monkeypatch):
    import numpy as np

    from progral_dagster.warehouse import schemas
    from progral_dagster.warehouse.lake import Lake

    make_settings(tmp_path, monkeypatch=monkeypatch)
    lake = Lake(URL)
    a = pa.table({"k": [1, 2]})
    b = pa.table({"k": [3]})
    lake.append_feature_part("f", a)
    lake.append_feature_part("f", b)
    assert len(lake.feature_files("f")) == 2
    assert sorted(lake.read_feature("f").column("k").to_pylist()) == [1, 2, 3]
    lake.replace_feature("f", pa.table({"k": [9]}))
    (only,) = lake.feature_files("f")
    assert lake.read_feature("f").column("k").to_pylist() == [9]
    assert s3.head_object(Bucket=BUCKET, Key=only.path.split("/", 1)[1])["ContentLength"] > 0
    only.unlink()
    assert lake.read_feature("f") is None

    arr = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    lake.write_array("m1", "labels", arr)
    assert np.array_equal(lake.read_array("m1", "labels"), arr)

    # a table streamed as record batches (exports larger than memory) lands as one object
    schema = schemas.reader_schema("tof_sims_spectra")
    cols = {
        f.name: pa.array([1, 2, 3], pa.int64()).cast(f.type)
        if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
        else pa.nulls(3, f.type)
        for f in schema
    }
    rb = pa.RecordBatch.from_pydict(cols, schema=schema)
    batch = lake.batch("test")
    assert batch.add_table("tof_sims_spectra", "mid-stream", iter([rb, rb])) == 6
    # data becomes visible with its measurement row (the commit point), never without one
    batch.add_row("catalog_measurements", {"measurement_id": "mid-stream", "batch": batch.batch_id,
                                           "technique": "tof-sims", "format": "iontof-spectrum"})
    batch.commit()
    (streamed,) = [k for k in _keys(s3) if "/tables/tof_sims_spectra/" in k and k.endswith(".parquet")]
    got = pq.read_table(pa.BufferReader(s3.get_object(Bucket=BUCKET, Key=streamed)["Body"].read()))
    assert got.num_rows == 6 and set(got.column("measurement_id").to_pylist()) == {"mid-stream"}
    assert not list((lake.layout.state / "tmp").glob("*"))

    # upload leftovers of a dead writer are removed
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/raw/_incoming/.dead.1.x.tmp", Body=b"x")
    assert lake.cleanup(max_age_s=-1) >= 1
    assert not [k for k in _keys(s3) if "_incoming" in k and not k.endswith("/")]
    shutil.rmtree(lake.layout.state, ignore_errors=True)


def _view_counts(lake, dest: Path) -> tuple:
    """Counts of the views, run on a download of the bucket (httpfs cannot be loaded here)."""
    from progral_dagster.warehouse.storage import copy_tree_to_local
    from progral_dagster.warehouse.views import connect

    shutil.rmtree(dest, ignore_errors=True)
    copy_tree_to_local(lake, dest)
    con = connect(dest)
    return tuple(
        con.execute(q).fetchone()
        for q in (
            "select count(*), sum(intensity) from tof_sims_spectra",
            "select count(*), sum(intensity) from tof_sims_spectra_all_versions",
            "select count(*), count(superseded_by) from measurements",
            "select count(*) from measurement_files",
        )
    )


def test_compaction_of_an_s3_lake_keeps_every_view_and_moves_superseded_rows(tmp_path, s3, monkeypatch):
    from progral_dagster.warehouse.compaction import compact
    from progral_dagster.warehouse.lake import Lake

    from .helpers import ingest_files, spectrum_text

    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    for i in range(6):  # six batches: six small objects per table
        ingest_files(s, [write(s.share / f"f{i}.txt", spectrum_text(20, seed=i))])
    # a new version of f0: the old one is superseded, its rows stay in *_all_versions
    newer = write(s.share / "f0.txt", spectrum_text(25, seed=99))
    os.utime(newer, (newer.stat().st_atime, newer.stat().st_mtime + 10))
    ingest_files(s, [newer])
    lake = Lake(s.lake)
    before = _view_counts(lake, tmp_path / "before")
    assert before[0][0] == 5 * 20 + 25 and before[1][0] == 6 * 20 + 25 and before[2] == (7, 1)

    rep = compact(lake, min_files=4)
    assert rep.rows_moved == 20 and rep.files_before >= 7
    data = [k for k in _keys(s3) if k.endswith(".parquet")]
    active = [k for k in data if "/tables/tof_sims_spectra/" in k]
    moved = [k for k in data if "/superseded/tof_sims_spectra/" in k]
    assert len(active) == 1 and len(moved) == 1, (active, moved)
    assert active[0].rsplit("/", 1)[-1].startswith("compact-")
    # nothing pending or temporary left in the bucket, no journal left in the local state
    assert not [k for k in _keys(s3) if k.rsplit("/", 1)[-1].startswith(".")]
    assert not list((lake.layout.state / "compaction").glob("*.json"))
    # every view shows what it showed before, now from the compacted objects
    assert _view_counts(lake, tmp_path / "after") == before
    # the superseded rows are the old f0's 20 rows, recorded as moved
    got = pq.read_table(pa.BufferReader(s3.get_object(Bucket=BUCKET, Key=moved[0])["Body"].read()))
    assert got.num_rows == 20 and len(set(got.column("measurement_id").to_pylist())) == 1
    # a second compaction finds nothing to do
    again = compact(lake, min_files=4)
    assert again.rows_moved == 0 and again.files_before == 0
    shutil.rmtree(lake.layout.state, ignore_errors=True)
