"""Arbin MITS Pro exports (formats ``arbin-csv``, ``arbin-xlsx``, ``arbin-res``).

- CSV export: one title line, then comma-separated rows. Titles are Arbin's channel columns,
  with units (``Data_Point,Date_Time,Test_Time(s),Step_Time(s),Cycle_Index,Step_Index,
  Current(A),Voltage(V),Charge_Capacity(Ah),...``) or, in data pulled from Arbin's SQL
  database (TRI fast-charge files, ``FastCharge_000025_CH8.csv``), without units and with
  ``DateTime`` as Unix seconds. Titles without units are taken in Arbin's SI units (s, A, V,
  Ah, Wh), noted in ``metadata.original_units``.
- Test metadata CSV (``<name>_Metadata.csv``: test_id, device_id, iv_ch_id,
  first_start_datetime, schedule_file_name, ...) holds no data points. Alone it is rejected
  with that reason; read together with its data file (``read([data_csv, metadata_csv])``)
  its fields become the measurement's metadata.
- MITS Pro 8 CSV export: titles with spaces (``Data Point,Date Time,Test Time (s),...,
  Cycle Index,Step Index,Current (A),...,Aux_Temperature_1 (C)``), dates quoted with a leading
  tab; its ``<test>_Channel_<n>_GlobalInfo.CSV`` (``TEST REPORT`` banner, channel, start time,
  schedule, software version) is, like ``_Metadata.csv``, rejected alone with that reason and
  read into ``metadata.global_info`` with its data file.
- Database pulls may leave ``Cycle_Index``/``Step_Index`` empty in every record (TRI's
  ``2017-05-09_test-TC-contact_CH33.csv``): they are then treated as absent (cycle 1, step 1,
  direction decided record by record; ``metadata.empty_index_columns``); empty in only some
  records, the file is refused naming the first. ``_Metadata.csv`` titles are lower case or
  capitalised (``Test_ID``, ``First_Start_DateTime``); both are read.
- Excel export (``.xlsx``; the sample labelled Lanhe, ``bs542_..._Channel_11.xlsx``, is one):
  a ``Global_Info`` sheet (channel, start time, schedule, software version) and the data in
  ``Channel_<ch>_<k>`` sheets, continued over several sheets for long tests.
- ``.res``: the MITS Pro Microsoft Access (Jet 4) database, table ``Channel_Normal_Table``.
  Read only with the optional package ``access-parser`` (Apache-2.0, pure Python; not a
  default dependency); without it the file is rejected saying so.

Mapping: ``Cycle_Index`` numbered from 1 (TRI files count from 0), ``Step_Index`` as the
step, Arbin's sign (positive current charges) kept, capacity/energy counters re-based per cycle
(Arbin runs them over the cycle or the test depending on settings; restarts are detected),
step type from the current of each step (Arbin records no step kind in these exports).

Why not a library: cellpy and beep read these files but bring large dependency trees; the CSV
body is parsed by pyarrow's CSV parser, the workbook by openpyxl.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import _cycler_xlsx as xl
from ._cycler_text import Columns, header_lines, last_line_complete, map_file, read_body
from .base import Measurement, ReaderError, as_paths, guarded
from .cycling_common import (
    counter_per_cycle,
    cycles_from_one,
    cycling_table,
    segments,
    step_types_from_current,
    unit_factor,
)

FORMATS = ("arbin-csv", "arbin-xlsx", "arbin-res")
READER_VERSION = "2"  # 2: empty index columns, GlobalInfo, case-insensitive metadata titles
_JET = b"Standard Jet DB"
_META_KEYS = {"test_id", "iv_ch_id", "schedule_file_name"}
_DEFAULT_UNITS = {"time": "s", "current": "A", "voltage": "V", "capacity": "Ah", "energy": "Wh"}
# canonical column -> accepted normalised titles
_NAMES = {
    "record": ("data_point",),
    "time": ("test_time",),
    "clock": ("date_time", "datetime"),
    "step": ("step_index",),
    "cycle": ("cycle_index",),
    "current": ("current",),
    "voltage": ("voltage",),
    "charge_capacity": ("charge_capacity",),
    "discharge_capacity": ("discharge_capacity",),
    "charge_energy": ("charge_energy",),
    "discharge_energy": ("discharge_energy",),
}
_UNIT_KIND = {
    "time": "time",
    "current": "current",
    "voltage": "voltage",
    "charge_capacity": "capacity",
    "discharge_capacity": "capacity",
    "charge_energy": "energy",
    "discharge_energy": "energy",
}


def split_title(title: str) -> tuple[str, str | None]:
    """(normalised name, unit) of an Arbin column title, e.g. ``Current(A)`` -> ``current, A``."""
    m = re.match(r"^\s*(.*?)\s*(?:\(([^()]*)\))?\s*(_\d+)?\s*$", title)
    name, unit, suffix = (m.group(1), m.group(2), m.group(3)) if m else (title, None, None)
    name = re.sub(r"[\s]+", "_", name.strip().lower()) + (suffix or "")
    return name, (unit.strip() if unit else None)


def _titles_map(titles: list[str]) -> tuple[dict[str, str], dict[str, str | None], str | None]:
    """canonical -> original title, canonical -> unit, and the temperature column (if any)."""
    norm = {t: split_title(t) for t in titles}
    found: dict[str, str] = {}
    units: dict[str, str | None] = {}
    for canon, accepted in _NAMES.items():
        for t, (name, unit) in norm.items():
            if name in accepted:
                found[canon] = t
                units[canon] = unit
                break
    temp = next((t for t, (name, _) in norm.items() if "temperature" in name), None)
    return found, units, temp


def _is_metadata_titles(line: str) -> bool:
    cells = {c.strip().lower() for c in line.split(",")}
    return _META_KEYS <= cells


def _is_global_info(text: str) -> bool:
    """MITS Pro 8's ``<test>_Channel_<n>_GlobalInfo.CSV``: a ``TEST REPORT`` banner, then the
    titles ``Channel,Start DateTime,Schedule File Name,...`` and one row of values."""
    lines = text.split("\n")[:12]
    return (
        bool(lines)
        and "TEST REPORT" in lines[0]
        and any(ln.startswith("Channel,Start DateTime,") for ln in lines)
    )


def _global_info_csv(path: Path) -> dict:
    text = path.read_bytes()[: 1 << 16].decode("latin-1")
    rows = list(csv.reader(io.StringIO(text)))
    meta: dict = {}
    for k, row in enumerate(rows):
        cells = [c.strip() for c in row]
        if cells and cells[0] == "Channel" and k + 1 < len(rows):
            meta.update({t: v.strip() for t, v in zip(cells, rows[k + 1], strict=False) if t})
            break
        for j, c in enumerate(cells[:-1]):  # ",, Test Name, <name>, ..." / ",,Export Time,<time>"
            if c in ("Test Name", "Export Time") and cells[j + 1]:
                meta[c] = cells[j + 1]
    if "Channel" not in meta:
        raise ReaderError(path, "Arbin global-info CSV without its Channel/Start DateTime row")
    return meta


def sniff(path: Path, head: bytes) -> str | None:
    if head[4:19] == _JET and path.suffix.lower() == ".res":
        return "arbin-res"
    if xl.is_xlsx(head):
        names = xl.sheet_names(path)
        if names and "Global_Info" in names and any(n.startswith("Channel_") for n in names):
            return "arbin-xlsx"
        return None
    first = head.split(b"\n", 1)[0].decode("latin-1").strip()
    if "," not in first:
        return None
    if _is_metadata_titles(first) or _is_global_info(head[:4096].decode("latin-1")):
        return "arbin-csv"
    names = {split_title(c)[0] for c in first.split(",")}
    if {"data_point", "cycle_index", "step_index"} <= names and (
        "current" in names or "voltage" in names
    ):
        return "arbin-csv"
    return None


def _factor(canon: str, unit: str | None, path: Path) -> float:
    kind = _UNIT_KIND[canon]
    u = unit or _DEFAULT_UNITS[kind]
    try:
        return unit_factor(u)
    except ValueError:
        raise ReaderError(
            path, f"unknown unit {u!r} in the {canon.replace('_', ' ')} column title"
        ) from None


def to_cycling(
    cols: dict[str, np.ndarray], units: dict[str, str | None], path: Path
) -> tuple[pa.Table, dict]:
    """The cycling table from Arbin columns (canonical names, file units)."""
    for need in ("time", "current", "voltage"):
        if need not in cols:
            raise ReaderError(
                path,
                f"no {need} column (expected Arbin titles such as Test_Time(s), Current(A), Voltage(V))",
            )
    n = len(cols["time"])
    if n == 0:
        raise ReaderError(path, "no data rows")
    for need in ("time", "current", "voltage"):
        if not np.all(np.isfinite(cols[need])):
            bad = int(np.flatnonzero(~np.isfinite(cols[need]))[0])
            raise ReaderError(path, f"missing or non-numeric {need} in data row {bad + 1}")

    def scaled(canon: str, unit_kind: str) -> np.ndarray:
        f = _factor(unit_kind, units.get(unit_kind), path)
        return cols[canon] if f == 1.0 else cols[canon] * f

    time_s = scaled("time", "time")
    current = scaled("current", "current")
    voltage = scaled("voltage", "voltage")
    # Cycle_Index / Step_Index columns present but empty in every record (seen in data pulled
    # from Arbin's database, e.g. TRI's 2017-05-09_test-TC-contact_CH33.csv) are treated as
    # absent; a column empty only in some records is refused (no value can be assumed there).
    empty_indices = []
    for key, title in (("cycle", "Cycle_Index"), ("step", "Step_Index")):
        if key in cols:
            missing = ~np.isfinite(np.asarray(cols[key], dtype=np.float64))
            if missing.all():
                del cols[key]
                empty_indices.append(title)
            elif missing.any():
                bad = int(np.flatnonzero(missing)[0]) + 1
                raise ReaderError(path, f"empty or non-numeric {title} in data row {bad}")
    cycle = cycles_from_one(cols["cycle"]) if "cycle" in cols else np.ones(n, dtype=np.int32)
    step = np.rint(cols["step"]).astype(np.int64) if "step" in cols else np.ones(n, dtype=np.int64)
    # without step numbers the direction is decided record by record, not over the whole file
    kinds_by = segments(step, cycle) if "step" in cols else None

    def counter(canon: str) -> np.ndarray:
        if canon not in cols:
            return np.zeros(n)
        raw = cols[canon]
        if np.isnan(raw).any():  # empty cells count nothing
            raw = np.nan_to_num(raw)
        f = _factor(canon, units.get(canon), path)
        return counter_per_cycle(raw if f == 1.0 else raw * f, cycle)

    table = cycling_table(
        record=cols.get("record"),
        time_s=time_s,
        voltage_v=voltage,
        current_a=current,
        cycle=cycle,
        step=step,
        step_type=step_types_from_current(current, kinds_by),
        charge_capacity_ah=counter("charge_capacity"),
        discharge_capacity_ah=counter("discharge_capacity"),
        charge_energy_wh=counter("charge_energy"),
        discharge_energy_wh=counter("discharge_energy"),
        temperature_c=cols.get("temperature"),
        path=path,
    )
    meta = {
        "n_records": n,
        "n_cycles": int(np.unique(cycle).size),
        "empty_index_columns": empty_indices,
        "original_units": {
            k: (units.get(k) or f"{_DEFAULT_UNITS[_UNIT_KIND[k]]} (assumed: title has no unit)")
            for k in _UNIT_KIND
            if k in cols
        },
    }
    return table, meta


def _metadata_csv(path: Path) -> dict:
    text = path.read_bytes()[: 1 << 20].decode("latin-1")
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2 or not _is_metadata_titles(",".join(rows[0])):
        raise ReaderError(
            path, "not an Arbin test-metadata CSV (titles test_id, iv_ch_id, schedule_file_name)"
        )
    meta = {k.strip(): v.strip() for k, v in zip(rows[0], rows[1], strict=False) if k.strip()}
    # titles are lower case in some exports (test_id, first_start_datetime), capitalised in
    # others (Test_ID, First_Start_DateTime): the Unix times are found either way
    lower = {k.lower(): k for k in meta}
    for key in ("first_start_datetime", "last_resume_datetime", "last_end_datetime"):
        title = lower.get(key)
        v = meta.get(title) if title else None
        if v and v.isdigit() and int(v) > 0:
            meta[title + "_iso"] = datetime.fromtimestamp(int(v), UTC).isoformat()
    return meta


def _start_from_clock(raw, kind: str) -> str | None:
    if raw is None or len(raw) == 0:
        return None
    v = raw[0]
    if kind == "unix" and np.isfinite(v) and v > 1e8:
        return datetime.fromtimestamp(float(v), UTC).isoformat()
    if kind == "ole" and np.isfinite(v) and 1 < v < 2958465:
        return (datetime(1899, 12, 30) + timedelta(days=float(v))).isoformat(timespec="seconds")
    if kind == "epoch-naive" and np.isfinite(v):
        return (datetime(1970, 1, 1) + timedelta(seconds=float(v))).isoformat(
            timespec="milliseconds"
        )
    if kind == "text" and isinstance(v, str):
        for fmt in (
            "%m/%d/%Y %H:%M:%S.%f",
            "%m/%d/%Y %H:%M:%S",
            "%Y-%m-%d %H:%M:%S.%f",
            "%Y-%m-%d %H:%M:%S",
        ):
            try:
                return datetime.strptime(v.strip(), fmt).isoformat()
            except ValueError:
                continue
    return None


def _read_csv(path: Path) -> tuple[pa.Table, dict]:
    buf = map_file(path)
    lines, start = header_lines(buf, 1, path)
    title_line = lines[0].lstrip("\ufeff").lstrip("ï»¿")
    if _is_metadata_titles(title_line):
        raise ReaderError(
            path,
            "Arbin test-metadata file (test_id, channel, schedule, start time), not data: it is read "
            "together with its data file, e.g. read([FastCharge_000025_CH8.csv, "
            "FastCharge_000025_CH8_Metadata.csv])",
        )
    if _is_global_info(buf[: min(len(buf), 4096)].to_pybytes().decode("latin-1")):
        raise ReaderError(
            path,
            "Arbin global-info file (channel, start time, schedule, software version), not data: "
            "it is read together with its data export, e.g. read([<test>_Channel_2_Wb_1.CSV, "
            "<test>_Channel_2_GlobalInfo.CSV])",
        )
    titles = next(csv.reader([title_line]))
    found, units, temp = _titles_map(titles)
    names = [t if t else f"_col{i}" for i, t in enumerate(titles)]
    if len(set(names)) != len(names):
        raise ReaderError(path, "duplicate column titles", "line 1")
    wanted = {c: found[c] for c in found if c != "clock"}
    if temp:
        wanted["temperature"] = temp
    # cycle and step numbers are small integers: float32 holds them exactly in half the memory
    types = {
        t: (pa.float32() if c in ("cycle", "step") else pa.float64()) for c, t in wanted.items()
    }
    clock_kind = None
    start_value = None
    if "clock" in found:  # only the first record's date is needed (the start time)
        probe = (
            buf[start : min(len(buf), start + 4096)]
            .to_pybytes()
            .split(b"\n", 1)[0]
            .decode("latin-1")
        )
        cell = next(csv.reader([probe]), [""])
        idx = titles.index(found["clock"])
        v = cell[idx] if idx < len(cell) else ""
        try:
            start_value = np.array([float(v)])
            clock_kind = "unix"
        except ValueError:
            start_value = [v]
            clock_kind = "text"
    end = last_line_complete(buf, start, b",", len(titles))
    table = read_body(
        path,
        buf,
        start,
        end,
        names,
        delimiter=",",
        types=types,
        include=list(types),
        first_line=2,
        quote_char='"',
    )
    data = Columns(table)
    del table
    cols = {
        c: data.get(t, np.float32 if c in ("cycle", "step") else np.float64)
        for c, t in wanted.items()
    }
    del data
    out, meta = to_cycling(cols, units, path)
    meta["start_time"] = _start_from_clock(start_value, clock_kind or "")
    meta["columns"] = titles
    meta["temperature_column"] = temp
    meta["dropped_incomplete_last_row"] = end < len(buf) and bool(buf[end:].to_pybytes().strip())
    return out, meta


def _read_xlsx(path: Path) -> tuple[pa.Table, dict]:
    names = xl.sheet_names(path) or []
    wb = xl.open_workbook(path)
    try:
        meta: dict = {}
        if "Global_Info" in names:
            rows = xl.sheet_rows(wb, "Global_Info", max_rows=50)
            for k, row in enumerate(rows):
                if row and row[0] == "Channel" and k + 1 < len(rows):
                    meta.update(
                        {
                            str(t): (v.isoformat() if isinstance(v, datetime) else v)
                            for t, v in zip(row, rows[k + 1], strict=False)
                            if t
                        }
                    )
                    break
        data_sheets = sorted(
            (n for n in names if re.fullmatch(r"Channel_\d+_\d+", n)),
            key=lambda n: int(n.rsplit("_", 1)[1]),
        )
        if not data_sheets:
            raise ReaderError(path, "Arbin workbook without Channel_<ch>_<k> data sheets")
        titles: list[str] | None = None
        parts: list[dict[str, np.ndarray]] = []
        for sheet in data_sheets:
            rows = xl.sheet_rows(wb, sheet)
            if not rows:
                continue
            sheet_titles = [str(t) if t is not None else "" for t in rows[0]]
            if titles is None:
                titles = sheet_titles
            elif sheet_titles != titles:
                raise ReaderError(
                    path, f"sheet {sheet!r} has other columns than {data_sheets[0]!r}"
                )
            parts.append(xl.columns_from_rows(titles, rows[1:], path, sheet, 2))
    finally:
        wb.close()
    if not titles or not parts:
        raise ReaderError(path, "no data rows in the Channel sheets")
    found, units, temp = _titles_map(titles)
    wanted = {c: found[c] for c in found}
    if temp:
        wanted["temperature"] = temp
    cols: dict[str, np.ndarray] = {}
    for c, t in wanted.items():
        arr = np.concatenate([p[t] for p in parts])
        if c != "clock":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise ReaderError(path, f"non-numeric values in column {t!r}") from None
        cols[c] = arr
    out, m2 = to_cycling(cols, units, path)
    meta.update(m2)
    meta["data_sheets"] = data_sheets
    meta["columns"] = titles
    meta["temperature_column"] = temp
    if "Start DateTime" in meta:
        meta["start_time"] = meta["Start DateTime"]
    elif "clock" in cols:
        meta["start_time"] = _start_from_clock(cols["clock"].astype(float), "epoch-naive")
    return out, meta


def _read_res(path: Path) -> tuple[pa.Table, dict]:
    try:
        from access_parser import AccessParser
    except ImportError:
        raise ReaderError(
            path,
            "Arbin .res needs the optional package access-parser (Apache-2.0): install it "
            "(pip install access-parser) or export the test to CSV in MITS Pro",
        ) from None
    db = AccessParser(str(path))
    if "Channel_Normal_Table" not in db.catalog:
        raise ReaderError(
            path, "Access database without Channel_Normal_Table: not an Arbin .res file"
        )
    t = db.parse_table("Channel_Normal_Table")
    n = len(t.get("Data_Point", []))
    if n == 0:
        raise ReaderError(path, "Arbin .res without data points")
    order = np.lexsort(
        (
            np.asarray(t["Data_Point"], dtype=np.int64),
            np.asarray(t.get("Test_ID", [0] * n), dtype=np.int64),
        )
    )
    mapping = {
        "record": "Data_Point",
        "time": "Test_Time",
        "clock": "DateTime",
        "step": "Step_Index",
        "cycle": "Cycle_Index",
        "current": "Current",
        "voltage": "Voltage",
        "charge_capacity": "Charge_Capacity",
        "discharge_capacity": "Discharge_Capacity",
        "charge_energy": "Charge_Energy",
        "discharge_energy": "Discharge_Energy",
    }
    cols = {
        c: np.asarray(t[src], dtype=np.float64)[order] for c, src in mapping.items() if src in t
    }
    out, meta = to_cycling(cols, {}, path)
    meta["start_time"] = _start_from_clock(cols.get("clock"), "ole")
    meta["test_ids"] = sorted({int(x) for x in t.get("Test_ID", [])})
    if "Global_Table" in db.catalog:
        g = db.parse_table("Global_Table")
        meta["global"] = {
            k: (v[0] if isinstance(v[0], (str, int, float, bool)) or v[0] is None else str(v[0]))
            for k, v in g.items()
            if v
        }
    return out, meta


@guarded
def read(paths) -> Measurement:
    ps = as_paths(paths)
    if not ps:
        raise ReaderError(None, "no file given")
    data_path = ps[0]
    extra_meta: dict = {}
    if len(ps) > 1:
        # a data file and its _Metadata.csv or _GlobalInfo.CSV, in any order
        heads = {p: p.read_bytes()[:4096].decode("latin-1") for p in ps}
        metas = [p for p in ps if _is_metadata_titles(heads[p].split("\n", 1)[0])]
        infos = [p for p in ps if p not in metas and _is_global_info(heads[p])]
        datas = [p for p in ps if p not in metas and p not in infos]
        if len(datas) != 1 or len(metas) > 1 or len(infos) > 1:
            raise ReaderError(
                ps[0],
                "an Arbin group is one data file and at most one _Metadata.csv and one "
                "_GlobalInfo.CSV",
            )
        data_path = datas[0]
        if metas:
            extra_meta["test_metadata"] = _metadata_csv(metas[0])
        if infos:
            extra_meta["global_info"] = _global_info_csv(infos[0])
    with open(data_path, "rb") as fh:
        head = fh.read(65536)
    fmt = sniff(data_path, head)
    if fmt is None:
        raise ReaderError(
            data_path, "not an Arbin export (no Data_Point/Cycle_Index/Step_Index titles)"
        )
    if fmt == "arbin-res":
        table, meta = _read_res(data_path)
    elif fmt == "arbin-xlsx":
        table, meta = _read_xlsx(data_path)
    else:
        table, meta = _read_csv(data_path)
    meta.update(extra_meta)
    if not meta.get("start_time") and meta.get("global_info", {}).get("Start DateTime"):
        meta["start_time"] = _start_from_clock([meta["global_info"]["Start DateTime"]], "text")
    meta["source_columns"] = {
        "record": "Data_Point",
        "time_s": "Test_Time",
        "cycle": "Cycle_Index",
        "step": "Step_Index",
        "step_type": "sign of the current per step",
        "capacities": "Charge_/Discharge_Capacity re-based per cycle",
        "energies": "Charge_/Discharge_Energy re-based per cycle",
    }
    return Measurement(
        technique="cycling",
        format=fmt,
        reader="arbin",
        reader_version=READER_VERSION,
        instrument="Arbin"
        + (
            f" {meta.get('Software Version') or meta['global_info']['Software Version']}"
            if meta.get("Software Version") or meta.get("global_info", {}).get("Software Version")
            else ""
        ),
        metadata=meta,
        tables={"cycling": table},
        paths=[str(p) for p in ps],
    )
