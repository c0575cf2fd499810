"""Export variants of Maccor, Arbin and PEC files met in public data sets, each written here as
a small file with known values (no external file is copied into the repository):

- Maccor raw exports titled ``Test (Min)`` / ``Test (Sec)`` (Argonne, TRI): the unit in the
  title is used, also when a pause makes the wall clock run ahead of the test time;
- Maccor MIMS Client exports whose test times have one-digit seconds and long fractions
  (``0d 00:00:5.05000019073486``, cellpy's ``maccor_001.txt``);
- Maccor exports in mA/mAh/mWh (``mAmps``, ``mAmp-hr``, cellpy's ``maccor_three.txt``);
- Maccor comma-separated exports without a state column (PyProBE's ``sample_data_maccor.csv``);
- Arbin database pulls with empty ``Cycle_Index``/``Step_Index`` (TRI's
  ``2017-05-09_test-TC-contact_CH33.csv``) and capitalised ``_Metadata.csv`` titles;
- Arbin MITS Pro 8 ``_GlobalInfo.CSV`` companions;
- older PEC exports (``Total Time (Seconds)``, mV/mA, energies titled ``Charge Capacity (mWh)``;
  cellpy's ``pec.csv``).
"""

from __future__ import annotations

import numpy as np
import pytest

from progral_dagster.readers import ReaderError, read
from progral_dagster.readers import arbin as arbin_reader

RAW_HEADER = (
    "Today's Date 04/04/2016  Date of Test:\t03/31/2016\t Filename:\tC:\\Data\\x.001 "
    "Procedure: form.000\tComment/Barcode: cell 1"
)


def col(m, name):
    return m.tables["cycling"].column(name).to_numpy(zero_copy_only=False)


def per_cycle_last(m, name):
    c, v = col(m, "cycle"), col(m, name)
    return {int(k): float(v[c == k][-1]) for k in np.unique(c)}


def _raw_rows(titles, rows, newline="\r\n"):
    return newline.join([RAW_HEADER, "\t".join(titles), *("\t".join(r) for r in rows)]) + newline


# --- Maccor -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("title", "factor"), [("Test (Min)", 60.0), ("Test (Hr)", 3600.0)])
def test_maccor_test_time_unit_from_title(tmp_path, title, factor):
    titles = ["Rec#", "Cyc#", "Step", title, "Step (Min)", "Amp-hr", "Watt-hr", "Amps", "Volts",
              "State", "ES", "DPt Time"]  # fmt: skip
    t = [0.0, 0.1667, 0.3333, 0.5]
    rows = [
        [str(i + 1), "0", "1", f"{x:.4f}", f"{x:.4f}", "0.0000000000", "0.0000000000",
         "0.0000000000", "3.30678264", "R", "1", f"03/31/2016 16:05:{31 + 10 * i:02d}"]
        for i, x in enumerate(t)
    ]  # fmt: skip
    p = tmp_path / "argonne.001"
    p.write_text(_raw_rows(titles, rows), encoding="latin-1")
    m = read(p)
    assert m.format == "maccor-text"
    assert col(m, "time_s").tolist() == pytest.approx([x * factor for x in t])
    assert m.metadata["time_unit_source"] == f"column title {title!r}"
    assert m.metadata["start_time"] == "2016-03-31T16:05:31"


def test_maccor_titled_seconds_are_not_rescaled_by_a_pause(tmp_path):
    """``Test (Sec)`` over a 2-hour pause: the wall clock spans 7201 s while the test time moves
    0.5 s. The title says seconds; before, the reader compared the spans and took hours."""
    titles = ["Rec#", "Cyc#", "Step", "Test (Sec)", "Step (Sec)", "Amp-hr", "Watt-hr", "Amps",
              "Volts", "State", "ES", "DPt Time", "WF Chg Cap"]  # fmt: skip
    data = [
        (769267.24, 0.0191579754, -4.84, "10/21/2019 10:59:59"),
        (769267.25, 0.0191714199, -4.84, "10/21/2019 10:59:59"),
        (769267.69, 0.0197629651, -4.84, "10/21/2019 13:00:00"),
        (769267.74, 0.0198301874, -4.84, "10/21/2019 13:00:00"),
    ]
    rows = [
        [str(249791 + i), "37", "44", f"{t:.4f}", "14.2500", f"{q:.10f}", "0.0700000000",
         f"{a:.10f}", "3.86823835", "D", "1", clock, "N/A"]
        for i, (t, q, a, clock) in enumerate(data)
    ]  # fmt: skip
    p = tmp_path / "paused.052"
    p.write_text(_raw_rows(titles, rows), encoding="latin-1")
    m = read(p)
    assert col(m, "time_s").tolist() == pytest.approx([d[0] for d in data])
    assert m.metadata["time_unit"] == "s"
    assert col(m, "current_a").tolist() == pytest.approx([-4.84] * 4)  # D: discharge, negative
    assert col(m, "cycle").tolist() == [37] * 4  # a continued test keeps its cycle numbers
    # the counter starts mid-discharge: counted from zero at the first record of the file
    assert col(m, "discharge_capacity_ah")[-1] == pytest.approx(0.0198301874)


def test_maccor_mims_client_loose_durations_and_cycles(tmp_path):
    """MIMS Client writes ``0d 00:00:5.05000019073486`` (one-digit seconds, 14 fraction
    digits), a three-line header and a trailing tab; two cycles, counter restarting per step."""
    header = [
        "Today's Date:\t14 December 2020\tDate of Test:\t11 December 2020, 12:22:12 PM",
        "Filename:\tM50_Validation_0deg_01\tTester Channel:\t1",
        "Procedure:\tM50_Validation.000\tDescription:\t",
        "Rec#\tCyc#\tStep\tTestTime\tStepTime\tAmp-hr\tWatt-hr\tAmps\tVolts\tState\tES\tDPt Time\t"
        "Aux #1\t Units\t",
    ]
    recs = [  # (cycle, step, test time text, seconds, Amp-hr, Amps, state)
        (0, 1, "0d 00:00:0", 0.0, 0.0, 0.0, "R"),
        (0, 2, "0d 00:00:5.05000019073486", 5.05000019073486, 0.0, 0.50401, "D"),
        (0, 2, "0d 00:00:9.3100004196167", 9.3100004196167, 0.0006, 0.50011, "D"),
        (0, 2, "0d 00:01:0.879999995231628", 60.879999995231628, 0.00776, 0.49996, "D"),
        (1, 3, "0d 00:01:30.5", 90.5, 0.001, 0.5, "C"),
        (1, 3, "0d 01:02:3.25", 3723.25, 0.0042, 0.5, "C"),
        (1, 4, "1d 00:00:0", 86400.0, 0.003, 0.5, "D"),
    ]
    lines = [
        f"{i + 1}\t{c}\t{s}\t  {tt}\t  0d 00:00:0\t{q:.5f}\t0.00000\t{a:.5f}\t3.40000\t{st}\t0\t"
        f"12/11/2020 12:22:{12 + i:02d}\t-2501.71411\t C  \t"
        for i, (c, s, tt, _, q, a, st) in enumerate(recs)
    ]
    p = tmp_path / "M50_Validation_0deg_01.txt"
    p.write_text("\r\n".join(header + lines) + "\r\n", encoding="latin-1")
    m = read(p)
    assert col(m, "time_s").tolist() == pytest.approx([r[3] for r in recs], abs=1e-9)
    assert col(m, "cycle").tolist() == [1, 1, 1, 1, 2, 2, 2]
    sign = {"C": 1, "D": -1, "R": 1}
    assert col(m, "current_a").tolist() == pytest.approx([sign[r[6]] * r[5] for r in recs])
    assert per_cycle_last(m, "discharge_capacity_ah") == pytest.approx({1: 0.00776, 2: 0.003})
    assert per_cycle_last(m, "charge_capacity_ah") == pytest.approx({1: 0.0, 2: 0.0042})
    assert m.metadata["Filename"] == "M50_Validation_0deg_01"
    assert m.metadata["start_time"] == "2020-12-11T12:22:12"
    # a time that is not a duration at all is still refused with its row
    bad = p.read_text(encoding="latin-1").replace("0d 01:02:3.25", "0d 01:02:x3")
    p.write_text(bad, encoding="latin-1")
    with pytest.raises(ReaderError, match="row 6"):
        read(p)


def test_maccor_milli_unit_titles(tmp_path):
    """``mAmp-hr``, ``mWatt-hr``, ``mAmps`` (cellpy's ``maccor_three.txt``) are mAh, mWh, mA."""
    lines = [
        "Today''s Date\t03/28/2022 12:50:27 PM",
        "",
        "Date of Test:\t08/23/2021 6:04:18 PM",
        "",
        "Rec#\tCyc#\tStep\tTestTime\tStepTime\tmAmp-hr\tmWatt-hr\tmAmps\tVolts\tState\tES\t"
        "DPt Time\tUnnamed: 12",
        "1\t0\t1\t  0d 00:00:00.00\t  0d 00:00:00.00\t0.0\t0.0\t0.0\t3.85\tR\t0\t"
        "08/23/2021 6:04:18 PM\t",
        "2\t0\t2\t  0d 00:01:00.00\t  0d 00:00:00.00\t1.5\t6.0\t90.0\t3.90\tC\t0\t"
        "08/23/2021 6:05:18 PM\t",
        "3\t0\t2\t  0d 00:02:00.00\t  0d 00:01:00.00\t3.0\t12.0\t90.0\t3.95\tC\t0\t"
        "08/23/2021 6:06:18 PM\t",
    ]
    p = tmp_path / "maccor_three.txt"
    p.write_text("\n".join(lines) + "\n", encoding="latin-1")
    m = read(p)
    assert col(m, "current_a").tolist() == pytest.approx([0.0, 0.09, 0.09])
    assert col(m, "charge_capacity_ah").tolist() == pytest.approx([0.0, 0.0015, 0.003])
    assert col(m, "charge_energy_wh").tolist() == pytest.approx([0.0, 0.006, 0.012])
    assert m.metadata["original_units"]["current_a"] == "mA"
    assert m.metadata["start_time"] == "2021-08-23T18:04:18"


def test_maccor_comma_separated_export_without_state(tmp_path):
    """PyProBE's Maccor CSV layout: comma-separated, signed ``Current``, no state column, one
    ``Capacity`` counter restarting at each step; two cycles (charge, rest, discharge)."""
    lines = [
        "Today's Date ,28-Nov-23",
        "Date of Test:,23-Nov-23 3:56:08 PM",
        "Rec,Cycle C,Step,Test Time (sec),Step Time (sec),Capacity,Energy,Current,Voltage,"
        "DPT Time,Temp 1",
    ]
    recs = [  # cycle, step, current, capacity counter
        (1, 1, 0.0, 0.0), (1, 2, 28.8, 0.008), (1, 2, 28.8, 0.016), (1, 3, 0.0, 0.0),
        (1, 4, -14.4, 0.004), (1, 4, -14.4, 0.012),
        (2, 1, 0.0, 0.0), (2, 2, 28.8, 0.008), (2, 4, -14.4, 0.004), (2, 4, -14.4, 0.006),
    ]  # fmt: skip
    for i, (c, s, a, q) in enumerate(recs):
        lines.append(
            f"{i + 1},{c},{s},{i:.4f},0.0000,{q:.3f},{3.7 * q:.3f},{a:.3f},3.700,"
            f"23-Nov-23 3:56:{11 + i:02d} PM,22.2591"
        )
    p = tmp_path / "sample_data_maccor.csv"
    p.write_text("\n".join(lines), encoding="latin-1")  # no newline after the last record
    m = read(p)
    assert m.format == "maccor-text" and m.metadata["export_variant"] == "CSV (comma-separated)"
    assert col(m, "current_a").tolist() == pytest.approx([r[2] for r in recs])
    assert col(m, "time_s").tolist() == pytest.approx(list(range(len(recs))))
    assert col(m, "step_type").tolist() == [
        "rest", "charge", "charge", "rest", "discharge", "discharge",
        "rest", "charge", "discharge", "discharge",
    ]  # fmt: skip
    assert per_cycle_last(m, "charge_capacity_ah") == pytest.approx({1: 0.016, 2: 0.008})
    assert per_cycle_last(m, "discharge_capacity_ah") == pytest.approx({1: 0.012, 2: 0.006})
    assert col(m, "temperature_c")[0] == pytest.approx(22.2591)
    assert m.metadata["start_time"] == "2023-11-23T15:56:11"


# --- Arbin --------------------------------------------------------------------------------------

SQL_TITLES = (
    "Data_Point,Test_Time,DateTime,Step_Time,Step_Index,Cycle_Index,Current,Voltage,"
    "Charge_Capacity,Discharge_Capacity,Charge_Energy,Discharge_Energy,dV/dt,"
    "Internal_Resistance,Temperature"
)


def test_arbin_empty_cycle_and_step_index(tmp_path):
    """TRI's database pulls can leave Cycle_Index and Step_Index empty in every record."""
    recs = [(0.0, 6.6, 0.0051), (0.69, 6.6, 0.0051), (1.43, 6.6, 0.0078), (190.33, 0.00015, 0.354),
            (191.87, 1.1, 0.3543)]  # fmt: skip
    lines = [SQL_TITLES] + [
        f"{i},{t},{1494377253.17 + t},,,,{a},3.3,{q},0.0,{3.3 * q},0.0,0.0,0.0,25.17"
        for i, (t, a, q) in enumerate(recs)
    ]
    p = tmp_path / "2017-05-09_test-TC-contact_CH33.csv"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    m = read(p)
    assert col(m, "cycle").tolist() == [1] * 5
    assert col(m, "step").tolist() == [1] * 5
    # direction decided record by record (no steps to group by): the 0.15 mA record is a rest
    assert col(m, "step_type").tolist() == ["charge", "charge", "charge", "rest", "charge"]
    assert col(m, "charge_capacity_ah").tolist() == pytest.approx([r[2] for r in recs])
    assert m.metadata["empty_index_columns"] == ["Cycle_Index", "Step_Index"]
    # empty in some records only: refused, naming the first such record
    lines[3] = lines[3].replace(",,,,", ",,1,1,", 1)
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ReaderError, match="Cycle_Index in data row 1"):
        read(p)


def test_arbin_capitalised_metadata_titles(tmp_path):
    data = tmp_path / "x_CH33.csv"
    data.write_text(
        SQL_TITLES + "\n0,0.0,1494377253.17,0.0,1,0,1.0,3.3,0.0,0.0,0.0,0.0,0.0,0.0,25.0\n"
        "1,1.0,1494377254.17,1.0,1,0,1.0,3.31,0.0003,0.0,0.001,0.0,0.0,0.0,25.0\n",
        encoding="utf-8",
    )
    meta = tmp_path / "x_CH33_Metadata.csv"
    meta.write_text(
        ",Test_ID,Device_ID,IV_Ch_ID,First_Start_DateTime,Resumed_Times,Last_Resume_DateTime,"
        "Last_End_DateTime,Schedule_File_Name,Databases\n"
        '0,144,60369369,32,1494377253,0,0,1494378294,20170509-6C_1C_36CV.sdu,"ArbinResult_6,"\n',
        encoding="utf-8",
    )
    m = read([data, meta])
    tm = m.metadata["test_metadata"]
    assert tm["Test_ID"] == "144" and tm["Databases"] == "ArbinResult_6,"
    assert tm["First_Start_DateTime_iso"] == "2017-05-10T00:47:33+00:00"
    assert tm["Last_End_DateTime_iso"] == "2017-05-10T01:04:54+00:00"
    assert "Last_Resume_DateTime_iso" not in tm  # 0: never resumed


def test_arbin_global_info_companion(tmp_path):
    info = tmp_path / "cell_Channel_2_GlobalInfo.CSV"
    info.write_text(
        ",,,TEST REPORT,,,,,\n"
        ",, Test Name, cell_08162022, Serial Number,, C:\\Arbin_Data\\cell,,\n"
        ",,Export Time,09/02/2022 10:59:23,222223,,,,\n"
        "Channel,Start DateTime,Schedule File Name,Creator,Comments,Software Version,"
        "Schedule Version,MASS(g),Capacity(Ah)\n"
        "2,08/16/2022 16:44:28,cell.sdx,admin,,Mits8 PV Build: 202110,Schedule Version 8.00.11,"
        "2,0.5\n",
        encoding="utf-8",
    )
    with pytest.raises(ReaderError, match="global-info file"):
        read(info)
    data = tmp_path / "cell_Channel_2_Wb_1.CSV"
    data.write_text(
        "Data Point,Date Time,Test Time (s),Step Time (s),Cycle Index,Step Index,Current (A),"
        "Voltage (V),Charge Capacity (Ah),Discharge Capacity (Ah),Charge Energy (Wh),"
        "Discharge Energy (Wh),Aux_Temperature_1 (C)\n"
        '1,"\t08/16/2022 16:44:58.558",30.0005,30.0005,1,1,0,3.53,0,0,0,0,24.66\n'
        '2,"\t08/16/2022 16:44:59.256",30.6979,0.0012,1,2,2.6476,3.59,2.01404E-05,0,7.13E-05,0,24.7\n',
        encoding="utf-8",
    )
    for group in ([data, info], [info, data]):
        m = read(group)
        gi = m.metadata["global_info"]
        assert gi["Channel"] == "2" and gi["Start DateTime"] == "08/16/2022 16:44:28"
        assert gi["Test Name"] == "cell_08162022"
        assert m.instrument == "Arbin Mits8 PV Build: 202110"
        assert col(m, "charge_capacity_ah").tolist() == pytest.approx([0.0, 2.01404e-05])
        assert m.metadata["start_time"] == "2022-08-16T16:44:58.558000"
    assert arbin_reader.sniff(info, info.read_bytes()) == "arbin-csv"


# --- PEC ----------------------------------------------------------------------------------------


def test_pec_older_export_seconds_millivolts_and_energy_titles(tmp_path):
    """cellpy's ``pec.csv`` layout: no Instruction Name, ``Total Time (Seconds)``, mV and mA,
    energies titled ``Charge/Discharge Capacity (mWh)``, a ``#RESULTS CHECK`` block, cell and
    ambient temperatures."""
    head = [
        "Request Year:,2019",
        "Test:,187",
        "TestRegime Name:,SAFT VL43EFe dQdV C/25",
        "Start Time:,02/22/2019 16:21:35",
        "#RESULTS CHECK",
        "ReqYear,Test,CellNr,Type,Value,Reason,",
        "2019,187,1,1,3272,3,",
        "#END RESULTS CHECK",
        "Test,Cell,Rack,Shelf,Position,Cell ID,Step,Cycle,Total Time (Seconds),"
        "Load On Time (Seconds),Step Time (Seconds),Cycle Charge Time (Seconds),"
        "Cycle Discharge Time (Seconds),Real Time,Position Start Time,Voltage (mV),Current (mA),"
        "Charge Capacity (mAh),Discharge Capacity (mAh),Charge Capacity (mWh),"
        "Discharge Capacity (mWh),ReasonCode,Ambient temperature (°C),"
        "Cell surface temperature (°C),Station Temperature (°C),",
    ]
    recs = [  # step, cycle, total s, mV, mA, chg mAh, dis mAh, chg mWh, dis mWh, cell T
        (0, 0, 1, 3272.632, 0, 0, 0, 0, 0, "24.9"),
        (1, 0, 31.183, 3268.6792, -1640.1, 0, 0.455, 0, 1.487, "25"),
        (1, 0, 51.183, 3264.974, -1639.8, 0, 9.565, 0, 31.247, ""),
        (2, 1, 61.5, 3300.0, 1640.0, 4.0, 0, 13.2, 0, "25.1"),
        (2, 1, 81.5, 3310.0, 1640.0, 13.1, 0, 43.3, 0, "25.2"),
    ]
    rows = [
        f"187,1,SBT0550,001,1,,{s},{c},{t},0,0,0,0,02/22/2019 16:23:27,02/22/2019 16:23:26,"
        f"{mv},{ma},{qc},{qd},{ec},{ed},30,25.83,{temp},,"
        for s, c, t, mv, ma, qc, qd, ec, ed, temp in recs
    ]
    p = tmp_path / "pec.csv"
    p.write_text("\n".join(head + rows) + "\n", encoding="utf-8")
    m = read(p)
    assert m.format == "pec-csv"
    assert col(m, "time_s").tolist() == pytest.approx([r[2] for r in recs])
    assert col(m, "voltage_v").tolist() == pytest.approx([r[3] / 1000 for r in recs])
    assert col(m, "current_a").tolist() == pytest.approx([r[4] / 1000 for r in recs])
    assert col(m, "step_type").tolist() == ["rest", "discharge", "discharge", "charge", "charge"]
    assert col(m, "cycle").tolist() == [1, 1, 1, 2, 2]
    assert per_cycle_last(m, "discharge_capacity_ah") == pytest.approx({1: 0.009565, 2: 0.0})
    assert per_cycle_last(m, "discharge_energy_wh") == pytest.approx({1: 0.031247, 2: 0.0})
    assert per_cycle_last(m, "charge_energy_wh") == pytest.approx({1: 0.0, 2: 0.0433})
    temp = m.tables["cycling"].column("temperature_c").to_pylist()
    assert temp == [24.9, 25.0, None, 25.1, 25.2]  # the cell, not the ambient or the station
    assert m.metadata["source_columns"]["charge_energy"] == "Charge Capacity (mWh)"
    assert m.metadata["start_time"] == "2019-02-22T16:21:35"
