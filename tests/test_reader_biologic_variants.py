"""EC-Lab .mpt variants found in public exports (EC-Lab 11.12 to 11.61, BT-Lab 1.79) that the
sample set does not have. Each test writes a small file in the layout the variant has (header
written here from the format's description, a few rows) and checks the values read.
"""

from __future__ import annotations

import numpy as np
import pytest

from progral_dagster.readers import ReaderError, biologic_mpt


def write_mpt(tmp_path, technique, titles, rows, *, name="x.mpt", settings=(), comma=False):
    """An EC-Lab ASCII export: magic line, ``Nb header lines``, technique title, ``key : value``
    lines, the fixed-width settings block, the tab-separated title line, then the rows."""
    head = [
        "",
        technique,
        "",
        "Run on channel : 1 (SN 12345)",
        "User : ",
        "Acquisition started on : 03/07/2025 11:21:39.339",
        "Device : VMP3 (SN 0858)",
        "EC-Lab for windows v11.61 (software)",
        "Cycle Definition : Charge/Discharge alternance",
        *[f"{k:<20}{v:<20}" for k, v in settings],
        "",
    ]
    nb = 2 + len(head) + 1
    lines = ["EC-Lab ASCII FILE", f"Nb header lines : {nb:<26d}", *head, "\t".join(titles)]

    def cell(v):
        s = f"{v:.7E}" if isinstance(v, float) else str(v)
        return s.replace(".", ",") if comma else s

    lines += ["\t".join(cell(v) for v in r) for r in rows]
    p = tmp_path / name
    p.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return p


def col(t, name):
    return t.column(name).to_numpy(zero_copy_only=False)


def test_bt_lab_cell_voltage_column(tmp_path):
    # BT-Lab on BCS cyclers names the voltage Ecell/V (no Ewe/V column at all)
    titles = ["mode", "ox/red", "error", "time/s", "Ecell/V", "I/mA", "dq/mA.h", "half cycle",
              "cycle number"]  # fmt: skip
    rows = [
        [3, 0, 0, 0.0, 3.60, 0.0, 0.0, 0, 0.0],
        [1, 0, 0, 10.0, 3.55, -500.0, -500.0 * 10 / 3600, 0, 0.0],
        [1, 0, 0, 20.0, 3.50, -500.0, -500.0 * 10 / 3600, 0, 0.0],
    ]
    m = biologic_mpt.read(write_mpt(tmp_path, "Battery Capacity Determination", titles, rows))
    t = m.tables["cycling"]
    np.testing.assert_array_equal(col(t, "voltage_v"), [3.60, 3.55, 3.50])
    np.testing.assert_allclose(col(t, "current_a"), [0.0, -0.5, -0.5])
    assert list(col(t, "step_type")) == ["rest", "discharge", "discharge"]
    assert col(t, "discharge_capacity_ah")[-1] == pytest.approx(2 * 0.5 * 10 / 3600, rel=1e-6)
    assert m.metadata["source_columns"]["voltage_v"] == "Ecell/V"


def test_averaged_potential_written_inside_the_brackets(tmp_path):
    # EC-Lab 11.50 "Constant Current" exports write the averaged potential as <Ewe/V>
    titles = ["mode", "ox/red", "error", "time/s", "control/mA", "<Ewe/V>", "I/mA", "dq/mA.h",
              "cycle number"]  # fmt: skip
    rows = [
        [3, 1, 0, 70.05, 0.0, 2.7996334e-3, 0.0, 0.0, 0.0],
        [1, 1, 0, 85.05, 0.01, 6.0750589e-2, 1.1742689e-2, 1.633e-5, 0.0],
    ]
    t = biologic_mpt.read(write_mpt(tmp_path, "Constant Current", titles, rows)).tables["cycling"]
    np.testing.assert_array_equal(col(t, "voltage_v"), [2.7996334e-3, 6.0750589e-2])
    np.testing.assert_allclose(col(t, "current_a"), [0.0, 1.1742689e-5])
    np.testing.assert_array_equal(col(t, "cycle"), [1, 1])


def test_blank_title_and_titles_after_the_last_filled_column(tmp_path):
    # EC-Lab 11.61 PEIS with Ece recorded: "...Rwe-ce/Ohm<TAB><TAB>Ewe-Ece/V" in the title line,
    # while the rows stop after Rwe-ce/Ohm
    titles = ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm", "time/s", "<Ewe>/V", "<I>/mA",
              "cycle number", "Rwe-ce/Ohm", "", "Ewe-Ece/V"]  # fmt: skip
    rows = [
        [1.9999814e5, 1.229242, 0.11167378, 3.0205, -3.106e-2, 0.317, 1.0, 2908.1],
        [1.3659813e5, 1.2911862, 0.16987574, 4.4975, -3.115e-2, 0.2855, 1.0, 3268.4],
    ]
    p = write_mpt(tmp_path, "Potentio Electrochemical Impedance Spectroscopy", titles, rows)
    m = biologic_mpt.read(p)
    assert m.technique == "impedance" and list(m.tables) == ["impedance"]
    t = m.tables["impedance"]
    np.testing.assert_array_equal(col(t, "frequency_hz"), [1.9999814e5, 1.3659813e5])
    np.testing.assert_array_equal(col(t, "z_real_ohm"), [1.229242, 1.2911862])
    np.testing.assert_array_equal(col(t, "z_imag_ohm"), [-0.11167378, -0.16987574])
    assert m.metadata["columns_without_data"] == ["", "Ewe-Ece/V"]
    assert m.metadata["columns"] == titles


def test_titles_without_values_that_the_mapping_needs_are_refused(tmp_path):
    titles = ["freq/Hz", "Re(Z)/Ohm", "time/s", "-Im(Z)/Ohm"]
    rows = [[1000.0, 1.0, 0.5]]
    p = write_mpt(tmp_path, "Potentio Electrochemical Impedance Spectroscopy", titles, rows)
    with pytest.raises(ReaderError, match=r"no values for \['-Im\(Z\)/Ohm'\]"):
        biologic_mpt.read(p)


def test_two_blank_titles_with_values_are_distinct_columns(tmp_path):
    titles = ["mode", "time/s", "", "Ewe/V", "", "I/mA"]
    rows = [[3, 0.0, 7.0, 3.1, 8.0, 0.0], [3, 1.0, 7.0, 3.2, 8.0, 0.0]]
    t = biologic_mpt.read(write_mpt(tmp_path, "Open Circuit Voltage", titles, rows)).tables[
        "cycling"
    ]
    np.testing.assert_array_equal(col(t, "voltage_v"), [3.1, 3.2])


MB_TITLES = ["mode", "ox/red", "error", "Ns", "time/s", "Ewe/V", "I/mA", "dq/mA.h", "freq/Hz",
             "Re(Z)/Ohm", "-Im(Z)/Ohm", "half cycle", "cycle number"]  # fmt: skip
MB_ROWS = [  # Ns 0 rest, Ns 1 PEIS (freq > 0), Ns 2 CC charge; EC-Lab counts cycles from 0
    [3, 0, 0, 0, 0.0, 3.70, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0],
    [3, 0, 0, 0, 5.0, 3.71, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0],
    [3, 0, 0, 1, 10.5, 3.71, 1.0e-3, 0.0, 1.0000186e6, 135.4276, 418.91501, 0, 0.0],
    [3, 0, 0, 1, 11.3, 3.71, -2.0e-3, 0.0, 7.9167906e5, 222.9427, 415.46429, 0, 0.0],
    [1, 1, 0, 2, 20.0, 3.80, 100.0, 100.0 * 8.7 / 3600, 0.0, 0.0, 0.0, 0, 0.0],
    [1, 1, 0, 2, 30.0, 3.85, 100.0, 100.0 * 10 / 3600, 0.0, 0.0, 0.0, 0, 0.0],
]


@pytest.mark.parametrize("comma", [False, True], ids=["point", "comma"])
def test_modulo_bat_with_peis_sequences_gives_both_tables(tmp_path, comma):
    p = write_mpt(tmp_path, "Modulo Bat", MB_TITLES, MB_ROWS, comma=comma)
    m = biologic_mpt.read(p)
    assert m.technique == "cycling" and list(m.tables) == ["cycling", "impedance"]
    assert m.metadata["decimal_separator"] == ("," if comma else ".")
    c = m.tables["cycling"]
    assert c.num_rows == 6  # every row, the impedance ones included
    np.testing.assert_array_equal(col(c, "time_s"), [r[4] for r in MB_ROWS])
    np.testing.assert_array_equal(col(c, "voltage_v"), [r[5] for r in MB_ROWS])
    np.testing.assert_allclose(col(c, "current_a"), [r[6] / 1000 for r in MB_ROWS])
    assert list(col(c, "step_type")) == ["rest", "rest", "impedance", "impedance", "charge",
                                         "charge"]  # fmt: skip
    np.testing.assert_array_equal(col(c, "step"), [1, 1, 2, 2, 3, 3])
    assert col(c, "charge_capacity_ah")[-1] == pytest.approx(0.1 * 18.7 / 3600, rel=1e-6)
    z = m.tables["impedance"]
    np.testing.assert_array_equal(col(z, "record"), [3, 4])  # row numbers in the file
    np.testing.assert_array_equal(col(z, "frequency_hz"), [1.0000186e6, 7.9167906e5])
    np.testing.assert_array_equal(col(z, "z_real_ohm"), [135.4276, 222.9427])
    np.testing.assert_array_equal(col(z, "z_imag_ohm"), [-418.91501, -415.46429])
    np.testing.assert_array_equal(col(z, "time_s"), [10.5, 11.3])
    np.testing.assert_array_equal(col(z, "cycle"), [1, 1])
    assert "2 of 6 rows" in m.metadata["impedance_rows"]


def test_galvano_eis_with_recorded_hold(tmp_path):
    # GEIS with "record" during tIs: rows with freq/Hz 0 (the current hold) before the sweep
    titles = ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm", "time/s", "<Ewe>/V", "<I>/mA",
              "cycle number", "(Q-Qo)/mA.h"]  # fmt: skip
    rows = [
        [0.0, 0.0, 0.0, 45322.92, 5.278e-2, 0.3806, 1.0, 9.15e-5],
        [0.0, 0.0, 0.0, 45323.92, 5.387e-2, 0.3806, 1.0, 1.836e-4],
        [1.0e6, 12.5, -3.25, 45325.0, 5.40e-2, 0.3806, 1.0, 2.0e-4],
        [5.0e5, 13.0, -1.5, 45325.5, 5.41e-2, 0.3806, 1.0, 2.1e-4],
    ]
    m = biologic_mpt.read(
        write_mpt(tmp_path, "Galvano Electrochemical Impedance Spectroscopy", titles, rows)
    )
    assert m.technique == "impedance" and list(m.tables) == ["impedance", "cycling"]
    z = m.tables["impedance"]
    np.testing.assert_array_equal(col(z, "frequency_hz"), [1.0e6, 5.0e5])
    np.testing.assert_array_equal(col(z, "z_imag_ohm"), [3.25, 1.5])
    c = m.tables["cycling"]
    assert c.num_rows == 4
    np.testing.assert_array_equal(col(c, "voltage_v"), [r[4] for r in rows])
    assert list(col(c, "step_type"))[2:] == ["impedance", "impedance"]


def test_impedance_file_with_all_rows_at_a_frequency_stays_impedance_only(tmp_path):
    titles = ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm", "time/s", "<Ewe>/V", "<I>/mA", "cycle number"]
    rows = [[1.0e4, 1.0e5, 9.4e4, 43202.99, 2.26, -1.6e-8, 1.0]]
    m = biologic_mpt.read(write_mpt(tmp_path, "IR compensation (PEIS)", titles, rows))
    assert m.technique == "impedance" and list(m.tables) == ["impedance"]
    np.testing.assert_array_equal(col(m.tables["impedance"], "record"), [1])


def test_cyclic_voltammetry_advanced_is_a_sweep(tmp_path):
    titles = ["mode", "ox/red", "error", "time/s", "control/V", "Ewe/V", "<I>/mA",
              "cycle number", "(Q-Qo)/C", "Ns"]  # fmt: skip
    rows = [
        [2, 1, 0, 3.3484, 2.8652937, 2.8663592, 2.2045e-4, 1.0, 0.0, 0],
        [2, 0, 0, 3.3508, 2.7452929, 2.7466555, -1.1895e-6, 1.0, 5.77e-11, 0],
    ]
    m = biologic_mpt.read(write_mpt(tmp_path, "Cyclic Voltammetry Advanced", titles, rows))
    assert m.metadata["technique"] == "CVA"
    assert list(col(m.tables["cycling"], "step_type")) == ["other", "other"]  # not a CV step
