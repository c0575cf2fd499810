"""LAND (Lanhe) .xlsx reader. No real LANDdt export is among the samples (the workbook filed
as Lanhe is an Arbin export, checked here), so workbooks following LANDdt's record layout are
written in the tests from a simulated test with known capacities."""

from __future__ import annotations

import numpy as np
import pytest

from progral_dagster.readers import arbin, lanhe
from progral_dagster.readers.base import ReaderError
from tests.conftest import SAMPLES

I_MA = 0.5  # mA
DT = 10.0  # s between records


def simulate():
    """Two cycles of discharge 60 s, rest 20 s, charge 60 s at 0.5 mA: rows and the truth."""
    rows, truth = [], []
    t = 0.0
    k = 0
    for cycle in (1, 2):
        qc = qd = 0.0
        for step, (state, sign, dur) in enumerate(
            (("D", -1, 60), ("R", 0, 20), ("C", 1, 60)), start=1
        ):
            cap = 0.0  # LAND restarts the counter at each step
            for n in range(int(dur / DT)):
                k += 1
                t += DT
                dq = I_MA * DT / 3600 if sign else 0.0  # mAh
                cap += dq
                qc += dq if sign > 0 else 0.0
                qd += dq if sign < 0 else 0.0
                v = 3.0 + 0.01 * sign * (n + 1)
                rows.append(
                    (
                        k,
                        t,
                        (n + 1) * DT,
                        cycle,
                        3 * (cycle - 1) + step,
                        v,
                        sign * I_MA,
                        cap,
                        cap * 3.0,
                        state,
                    )
                )
                truth.append((qc / 1000, qd / 1000))
    return rows, np.array(truth)


def write(path, sheet="Record", hms=False, state=True):
    import openpyxl

    rows, truth = simulate()
    wb = openpyxl.Workbook()
    wb.active.title = "Info"
    ws = wb.create_sheet(sheet)
    titles = [
        "Index",
        "TestTime/Sec",
        "StepTime/Sec",
        "Cycle-Index",
        "Step-Index",
        "Voltage/V",
        "Current/mA",
        "Capacity/mAh",
        "Energy/mWh",
        "State",
    ]
    if not state:
        titles = titles[:-1]
    ws.append(titles)
    for r in rows:
        r = list(r[: len(titles)])
        if hms:
            s = r[1]
            r[1] = f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{s % 60:06.3f}"
        ws.append(r)
    wb.create_sheet("Cycle").append(["Cycle", "ChgCap/mAh"])
    wb.save(path)
    return rows, truth


def col(m, name):
    return m.tables["cycling"].column(name).to_numpy(zero_copy_only=False)


@pytest.mark.parametrize("variant", ["state", "no-state", "hms-time", "chinese-sheet"])
def test_simulated_export(tmp_path, variant):
    p = tmp_path / "land.xlsx"
    rows, truth = write(
        p,
        sheet="记录层" if variant == "chinese-sheet" else "Record",
        hms=variant == "hms-time",
        state=variant != "no-state",
    )
    assert lanhe.sniff(p, p.read_bytes()[:65536]) == "lanhe-xlsx"
    m = lanhe.read(p)
    assert m.format == "lanhe-xlsx" and m.tables["cycling"].num_rows == len(rows)
    np.testing.assert_allclose(col(m, "time_s"), [r[1] for r in rows], atol=1e-3)
    np.testing.assert_allclose(col(m, "current_a"), [r[6] / 1000 for r in rows])  # mA -> A
    np.testing.assert_allclose(col(m, "charge_capacity_ah"), truth[:, 0], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(col(m, "discharge_capacity_ah"), truth[:, 1], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(col(m, "charge_energy_wh"), truth[:, 0] * 3.0, rtol=1e-9, atol=1e-15)
    st = col(m, "step_type")
    assert st.tolist() == [{"D": "discharge", "R": "rest", "C": "charge"}[r[9]] for r in rows]
    assert col(m, "cycle").tolist() == [r[3] for r in rows]
    assert m.metadata["original_units"]["current"] == "mA"


def test_workbook_without_record_sheet(tmp_path):
    import openpyxl

    p = tmp_path / "other.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["a", "b"])
    wb.save(p)
    assert lanhe.sniff(p, p.read_bytes()[:65536]) is None
    with pytest.raises(ReaderError, match="record sheet"):
        lanhe.read(p)


def test_sample_filed_as_lanhe_is_arbin():
    p = SAMPLES / "cycler-other" / "bs542_004_gr_li_50ua_50mv_1v_191020_Channel_11.xlsx"
    head = p.read_bytes()[:65536]
    assert lanhe.sniff(p, head) is None
    assert arbin.sniff(p, head) == "arbin-xlsx"


def test_truncated_workbook(tmp_path):
    p = tmp_path / "land.xlsx"
    write(p)
    q = tmp_path / "cut.xlsx"
    q.write_bytes(p.read_bytes()[:3000])
    with pytest.raises(ReaderError):
        lanhe.read(q)
