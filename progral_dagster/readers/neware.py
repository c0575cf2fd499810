"""Neware BTS binary files ``.nda`` and ``.ndax`` (formats ``neware-nda``, ``neware-ndax``).

``.nda`` is a binary record file starting with ``NEWARE``; ``.ndax`` (BTS 8 and later) is a zip
archive of XML descriptions (``Step.xml``, ``TestInfo.xml``, ``VersionInfo.xml``) and binary
record files (``data.ndc``, auxiliary ``data_AUX_*.ndc``, ...).

Why a library: NewareNDA (BSD-3-Clause, maintained by SES AI, on PyPI) decodes every record
variant Neware has shipped (nda 29 and 130, BTS 9/9.1, ndc 2 to 17); a reimplementation would
only lag behind it. It is the preferred reader here; this module normalises its output:

- ``Time`` is the step time in NewareNDA; ``time_s`` is the test time: each step's time is
  offset by the end of the previous step, or by the step's start timestamp where the cycler
  paused between steps (whichever is later, so time never runs backwards);
- the cycler's own cycle number is kept (numbered from 1); only files that record none
  (BTS 9 nda) get NewareNDA's regenerated numbering (a new cycle at each charge that follows a
  discharge), noted in ``metadata.cycle_source``;
- capacity and energy counters restart at every step on Neware; they are summed over the steps
  of a cycle (``cycling_common.counter_per_cycle``); mA, mAh, mWh become A, Ah, Wh;
- ``Status`` gives the step type (CC/CP/CR charge or discharge, CV, rest, pause, OCV ...);
- the first auxiliary temperature channel (``T1``...) becomes ``temperature_c``.

Neware's current is already positive while charging.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np

from .base import Measurement, ReaderError, guarded
from .cycling_common import counter_per_cycle, cycles_from_one, cycling_table, step_codes

FORMATS = ("neware-nda", "neware-ndax")
READER_VERSION = "1"
_NDAX_MEMBERS = (b"data.ndc", b"Step.xml", b"TestInfo.xml", b"VersionInfo.xml", b"EditStep.xml")

# NewareNDA Status -> step_type (statuses not listed, e.g. SIM or Pulse, are "other")
STATUS_TYPES: dict[str, str] = {
    "CC_Chg": "charge",
    "CCCV_Chg": "charge",
    "CP_Chg": "charge",
    "CPCV_Chg": "charge",
    "CC_DChg": "discharge",
    "CCCV_DChg": "discharge",
    "CP_DChg": "discharge",
    "CR_DChg": "discharge",
    "CPCV_DChg": "discharge",
    "CV_Chg": "cv",
    "CV_DChg": "cv",
    "Rest": "rest",
    "Pause": "rest",
    "OCV": "ocv",
}


def sniff(path: Path, head: bytes) -> str | None:
    if head.startswith(b"NEWARE"):
        return "neware-nda"
    if head.startswith(b"PK\x03\x04") and any(m in head for m in _NDAX_MEMBERS):
        return "neware-ndax"
    return None


def _library():
    try:
        from NewareNDA import NewareNDA as nda
        from NewareNDA import NewareNDAx as ndax
    except ImportError:  # pragma: no cover - a declared dependency
        raise ReaderError(None, "Neware files need the package NewareNDA (BSD-3-Clause)") from None
    return nda, ndax


def _nda29_start_found(data: bytes) -> bool:
    """Whether NewareNDA's search for the first record of an nda v29 file will end.

    NewareNDA looks for a record marker followed by a valid record and, when none is valid,
    searches again from the start forever; damaged files must be rejected before that.
    """
    ident = b"\x00\x00\x00\x00\x55\x00"
    size = len(data)
    p = data.find(ident)
    while p != -1:
        if p + 90 >= size or (data[p + 90] == 85 and data[p + 16] != 0):
            return True
        p = data.find(ident, p + 4)
    return False


def _read_frame(path: Path, fmt: str, software_cycles: bool):
    nda, ndax = _library()
    if fmt == "neware-nda":
        data = path.read_bytes()
        if len(data) < 15:
            raise ReaderError(path, "file too short for a Neware .nda header (truncated)")
        if data[14] == 29 and not _nda29_start_found(data):
            raise ReaderError(path, "no valid data record found (damaged or truncated .nda)")
        del data
    try:
        if fmt == "neware-nda":
            return nda.read_nda(str(path), software_cycles, "chg")
        return ndax.read_ndax(str(path), software_cycles, "chg")
    except NotImplementedError as exc:
        raise ReaderError(path, f"Neware variant not supported by NewareNDA: {exc}") from None
    except (EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ReaderError(
            path, f"damaged or truncated Neware file: {type(exc).__name__}: {exc}"
        ) from None


def ndax_metadata(path: Path) -> dict:
    """Test and version information from the XML members of an .ndax."""
    meta: dict = {}
    try:
        zf = zipfile.ZipFile(path)
        names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReaderError(path, f"not a readable zip archive: {exc}") from None
    meta["members"] = sorted(names)

    def root(name: str):
        if name not in names or zf.getinfo(name).file_size > 1 << 22:
            return None
        raw = zf.read(name)
        text = raw.decode("gb2312", "replace")
        text = re.sub(r"^<\?xml[^>]*\?>", "", text.lstrip("\ufeff"))
        try:
            return ET.fromstring(text)
        except ET.ParseError:
            return None

    r = root("TestInfo.xml")
    info = r.find("config/TestInfo") if r is not None else None
    if info is not None:
        a = info.attrib
        for key in (
            "StartTime",
            "EndTime",
            "StepName",
            "Barcode",
            "DevType",
            "DevID",
            "UnitID",
            "ChlID",
            "TestID",
        ):
            if key in a:
                meta[key] = a[key]
    r = root("VersionInfo.xml")
    ver = r.find("config/ZwjVersion") if r is not None else None
    if ver is not None:
        for key in ("SvrVer", "CurrClientVer", "ZwjVersion", "MainXwjVer"):
            if key in ver.attrib:
                meta[key] = ver.attrib[key]
    r = root("Step.xml")
    steps = r.find("config/Step_Info") if r is not None else None
    if steps is not None:
        meta["program_steps"] = [
            {
                "step": int(s.attrib.get("Step_ID", 0)),
                "type_code": int(s.attrib.get("Step_Type", -1)),
            }
            for s in steps
            if s.attrib.get("Step_ID", "").isdigit()
        ]
    return meta


def _test_time(step_time: np.ndarray, run: np.ndarray, stamp_s: np.ndarray | None) -> np.ndarray:
    """Test time from per-step times: each step starts where the previous one ended, or later
    if the record timestamps say the cycler paused in between (never earlier)."""
    n = step_time.size
    if n == 0:
        return step_time.copy()
    new = np.r_[True, run[1:] != run[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:] - 1, n - 1]
    offsets = np.zeros(starts.size)
    for k in range(1, starts.size):
        by_steps = offsets[k - 1] + step_time[ends[k - 1]]
        if stamp_s is not None:
            by_clock = stamp_s[starts[k]] + step_time[0] - step_time[starts[k]]
            by_steps = max(by_steps, by_clock)
        offsets[k] = by_steps
    return step_time + offsets[np.cumsum(new) - 1]


@guarded
def read(paths) -> Measurement:
    path = Path(paths if not isinstance(paths, (list, tuple)) else paths[0])
    with open(path, "rb") as fh:
        head = fh.read(65536)
    fmt = sniff(path, head)
    if fmt is None:
        raise ReaderError(
            path, "not a Neware .nda (no 'NEWARE' header) or .ndax (no Neware zip members)"
        )
    meta: dict = {}
    if fmt == "neware-ndax":
        meta.update(ndax_metadata(path))
    else:
        nda, _ = _library()
        try:
            meta.update(
                {
                    k: v
                    for k, v in nda.read_nda_metadata(path).items()
                    if isinstance(v, (str, int, float))
                }
            )
        except (ValueError, EOFError, IndexError, UnicodeDecodeError):
            pass
    df = _read_frame(path, fmt, software_cycles=False)
    cycle_source = "cycler"
    if len(df) and int(df["Cycle"].max()) == 0:
        df = _read_frame(path, fmt, software_cycles=True)
        cycle_source = "NewareNDA regenerated (new cycle at a charge after a discharge)"
    n = len(df)
    if n == 0:
        raise ReaderError(path, "no data records in the file")

    run = df["Step"].to_numpy(np.int64)  # NewareNDA: running count of executed steps
    cycle = cycles_from_one(df["Cycle"].to_numpy(np.int64))
    step_time = df["Time"].to_numpy(np.float64)
    ts = df["Timestamp"]
    try:
        stamp_s = (ts - ts.iloc[0]).dt.total_seconds().to_numpy(np.float64)
        if not np.all(np.isfinite(stamp_s)):
            stamp_s = None
    except (TypeError, AttributeError, ValueError):
        stamp_s = None
    time_s = _test_time(step_time, run, stamp_s)

    status = df["Status"].astype(str).to_numpy()
    uniq, inv = np.unique(status, return_inverse=True)
    step_type = step_codes([STATUS_TYPES.get(s, "other") for s in uniq])[inv.reshape(-1)]

    def counter(col: str) -> np.ndarray:
        return counter_per_cycle(df[col].to_numpy(np.float64) * 1e-3, cycle, resets=run)

    tcols = sorted(
        (c for c in df.columns if re.fullmatch(r"T\d+", str(c))), key=lambda c: int(c[1:])
    )
    temperature = df[tcols[0]].to_numpy(np.float64) if tcols else None
    table = cycling_table(
        record=df["Index"].to_numpy(np.int64),
        time_s=time_s,
        voltage_v=df["Voltage"].to_numpy(np.float64),
        current_a=df["Current(mA)"].to_numpy(np.float64) * 1e-3,
        cycle=cycle,
        step=df["Step_Index"].to_numpy(np.int64),
        step_type=step_type,
        charge_capacity_ah=counter("Charge_Capacity(mAh)"),
        discharge_capacity_ah=counter("Discharge_Capacity(mAh)"),
        charge_energy_wh=counter("Charge_Energy(mWh)"),
        discharge_energy_wh=counter("Discharge_Energy(mWh)"),
        temperature_c=temperature,
        path=path,
    )
    try:
        from importlib.metadata import version

        lib_version = version("NewareNDA")
    except Exception:  # noqa: BLE001 - version is informational
        lib_version = None
    first_ts = ts.iloc[0]
    metadata = {
        **meta,
        "library": f"NewareNDA {lib_version}" if lib_version else "NewareNDA",
        "start_time": first_ts.isoformat() if hasattr(first_ts, "isoformat") else str(first_ts),
        "n_records": n,
        "n_cycles": int(np.unique(cycle).size),
        "cycle_source": cycle_source,
        "statuses": sorted(set(status.tolist())),
        "temperature_channels": tcols,
        "source_columns": {
            "record": "Index",
            "time_s": "Time (step time) + step offsets",
            "voltage_v": "Voltage",
            "current_a": "Current(mA)",
            "cycle": "Cycle",
            "step": "Step_Index",
            "step_type": "Status",
            "capacities": "Charge_/Discharge_Capacity(mAh), per step, summed per cycle",
            "energies": "Charge_/Discharge_Energy(mWh), per step, summed per cycle",
            "temperature_c": tcols[0] if tcols else None,
        },
        "original_units": {
            "current_a": "mA",
            "capacities": "mAh",
            "energies": "mWh",
            "time_s": "s",
            "voltage_v": "V",
        },
    }
    instrument = "Neware BTS"
    if meta.get("SvrVer") or meta.get("server_version"):
        instrument = f"Neware {meta.get('SvrVer') or meta.get('server_version')}"
    return Measurement(
        technique="cycling",
        format=fmt,
        reader="neware",
        reader_version=READER_VERSION,
        instrument=instrument,
        metadata=metadata,
        tables={"cycling": table},
        paths=[str(path)],
    )
