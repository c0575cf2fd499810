"""VAMAS (ISO 14976) reader.

Independent truth: the ``vamas`` package on the REGULAR sample files, the IRREGULAR file's
values read by plain line slicing in the test, CasaXPS numbers read with a regex, and synthetic
files written by the test from the ISO 14976 item order (values chosen by the test)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from progral_dagster.readers import ReaderError, UnsupportedFormat, read
from progral_dagster.readers.vamas import MAGIC, sniff
from progral_dagster.warehouse.schemas import conform
from tests.conftest import SAMPLES

DIR = SAMPLES / "xps-vamas"
REGULAR = ["Pt4f.vms", "aes_staib.vms", "regular.vms"]


@pytest.mark.parametrize("name", REGULAR)
def test_regular_files_agree_with_the_vamas_package(name):
    vamas = pytest.importorskip("vamas")
    ref = vamas.Vamas(str(DIR / name))
    m = read(DIR / name)
    t = m.tables["xps_spectra"]
    conform("xps_spectra", t)
    assert m.metadata["n_blocks"] == len(ref.blocks)
    for bi, rb in enumerate(ref.blocks):
        sub = t.filter(t["block"].to_numpy() == bi)
        y = np.asarray(rb.corresponding_variables[0].y_values)
        x = rb.x_start + rb.x_step * np.arange(len(y))
        np.testing.assert_array_equal(sub["intensity"].to_numpy(), y)
        np.testing.assert_allclose(sub["kinetic_energy_ev"].to_numpy(), x, rtol=0, atol=1e-9)
        assert set(sub["region"].to_pylist()) == {rb.block_identifier}
        mb = m.metadata["blocks"][bi]
        assert mb["technique"] == rb.technique
        assert mb["source_energy_ev"] == (
            None
            if rb.analysis_source_characteristic_energy >= 1e37
            else rb.analysis_source_characteristic_energy
        )
        hv = rb.analysis_source_characteristic_energy
        wf = rb.analyzer_work_function_or_acceptance_energy
        assert mb["work_function_ev"] == (None if wf >= 1e37 else wf)  # kept, not subtracted
        be = sub["binding_energy_ev"].to_numpy(zero_copy_only=False)
        if rb.technique == "XPS":
            np.testing.assert_allclose(be, hv - x, atol=1e-9)
        else:  # AES: electron excited, no binding energy
            assert sub["binding_energy_ev"].null_count == sub.num_rows


def test_techniques_of_the_samples():
    assert read(DIR / "aes_staib.vms").technique == "aes"
    assert read(DIR / "Pt4f.vms").technique == "xps"
    aes = read(DIR / "aes_staib.vms").metadata["blocks"][0]
    # the file: six 0.000000 source lines, FAT, then nine "1e+037" (pass energy, differential
    # width, magnification, work function, bias, widths, take-off angles) = unknown -> None
    assert aes["source_strength"] == 0.0 and aes["analyser_mode"] == "FAT"
    assert aes["pass_energy"] is None and aes["differential_width"] is None
    assert aes["work_function_ev"] is None and aes["take_off"] == [None, None]
    assert aes["species"] == "species"


def test_irregular_casa_file_values_and_binding_energy():
    lines = (DIR / "FeO_analyzed.vms").read_bytes().decode("latin-1").split("\r\n")
    end = lines.index("end of experiment")
    # 3 corresponding variables (KE, intensity, transmission): 3363 values before the end line
    n_values = 3363
    assert lines[end - n_values - 7] == str(n_values)
    vals = np.array([float(s) for s in lines[end - n_values : end]]).reshape(-1, 3)
    m = read(DIR / "FeO_analyzed.vms")
    t = m.tables["xps_spectra"]
    assert t.num_rows == len(vals) == 1121
    np.testing.assert_array_equal(t["kinetic_energy_ev"].to_numpy(), vals[:, 0])
    np.testing.assert_array_equal(t["intensity"].to_numpy(), vals[:, 1])
    # Al Ka 1486.61 eV in the block, work function "1e+037" (unknown, so 0)
    np.testing.assert_allclose(t["binding_energy_ev"].to_numpy(), 1486.61 - vals[:, 0], atol=1e-9)
    assert m.metadata["header"]["scan_mode"] == "IRREGULAR"
    assert any("Casa Info Follows" in s for s in m.metadata["blocks"][0]["comment"])


def test_casa_regions_and_components():
    text = (DIR / "FeO_analyzed.vms").read_text(encoding="latin-1")
    areas = [float(a) for a in re.findall(r"^CASA comp .*? Area (\S+)", text, re.M)]
    positions = [float(a) for a in re.findall(r"^CASA comp .*? Position (\S+)", text, re.M)]
    lineshapes = re.findall(r"^CASA comp \(\*.*?\*\) \(\*(.*?)\*\)", text, re.M)
    m = read(DIR / "FeO_analyzed.vms")
    c = m.tables["xps_casa_components"]
    conform("xps_casa_components", c)
    comps = [r for r in c.to_pylist() if r["kind"] == "component"]
    regions = [r for r in c.to_pylist() if r["kind"] == "region"]
    assert len(regions) == 1 and len(comps) == len(areas) == 4
    assert regions[0]["name"] == "Fe 2p" and regions[0]["background"] == "U 3 Tougaard"
    assert (regions[0]["start_ev"], regions[0]["end_ev"], regions[0]["rsf"]) == (
        737.52081,
        786.7632,
        16.42,
    )
    assert [r["area"] for r in comps] == areas
    assert [r["position_ev"] for r in comps] == positions
    assert [r["lineshape"] for r in comps] == lineshapes
    assert all(r["region"] == "Fe 2p" for r in comps)
    # Pt4f has an empty CasaXPS section: no components table
    assert "xps_casa_components" not in read(DIR / "Pt4f.vms").tables


def test_lf_and_crlf_read_alike(tmp_path):
    src = DIR / "regular.vms"
    p = tmp_path / "lf.vms"
    p.write_bytes(src.read_bytes().replace(b"\r\n", b"\n"))
    assert read(p).tables["xps_spectra"].equals(read(src).tables["xps_spectra"])


# --------------------------------------------------------------------- synthetic ISO files
def block_lines(
    *,
    ident,
    tech,
    x,
    y,
    exp_mode,
    scan,
    exp_values,
    include=None,
    extra_corr=None,
    hv=1486.6,
    wf=4.5,
    unknown="1E37",
    abscissa="Kinetic Energy",
):
    """One block in ISO 14976 item order; ``include`` = parameter numbers (1..40) written."""
    inc = (lambda k: True) if include is None else (lambda k: k in include)
    L = [ident, "sample A"]
    for k, v in enumerate([2024, 5, 17, 13, 45, 12], start=1):
        if inc(k):
            L.append(str(v))
    if inc(7):
        L.append("2")
    if inc(8):
        L += ["2", "comment one", "comment two"]
    if inc(9):
        L.append(tech)
    if inc(11):
        L += [str(v) for v in exp_values]
    if inc(12):
        L.append("Al" if tech == "XPS" else "Cs")
    if inc(13) and (exp_mode in ("SDP", "SDPSV", "MAPDP", "MAPSVDP") or tech.startswith("SIMS")):
        L += ["55", "1", "1"]
    if inc(14):
        L.append(str(hv))
    if inc(15):
        L.append(unknown)
    if inc(16):
        L += ["100", "100"]
    if inc(19):
        L.append("54.7")
    if inc(20):
        L.append("0")
    if inc(21):
        L.append("FAT")
    if inc(22):
        L.append("20")
    if inc(23) and tech == "AES diff":
        L.append("2")
    if inc(24):
        L.append("1")
    if inc(25):
        L.append(str(wf))
    if inc(26):
        L.append("0")
    if inc(27):
        L += ["400", "400"]
    if inc(28):
        L += ["0", "0"]
    if inc(29):
        L.append("C")
    if inc(30):
        L += ["1s", "-1"]
    corr = [("Intensity", "c/s")] + (extra_corr or [])
    if scan == "REGULAR" and inc(31):
        L += [
            abscissa,
            "eV" if "nergy" in abscissa else "u",
            repr(float(x[0])),
            repr(float(x[1] - x[0])),
        ]
    if scan == "IRREGULAR":
        corr = [(abscissa, "eV")] + corr
    if inc(32):
        L.append(str(len(corr)))
        for lab, unit in corr:
            L += [lab, unit]
    if inc(33):
        L.append("pulse counting")
    if inc(34):
        L.append("0.1")
    if inc(35):
        L.append("3")
    if inc(36):
        L.append(unknown)
    if inc(37) and tech in ("XPS", "AES diff") and exp_mode in ("SDP", "SDPSV", "MAPDP", "MAPSVDP"):
        L += ["500", "1e-6", "2000", "2000", "45", "0", "continuous"]
    if inc(38):
        L += ["0", "0"]
    if inc(39):
        L.append("0")
    if inc(40):
        L += ["1", "ESCAPE DEPTH TYPE", "d", "1"]
    cols = [y] + [np.full_like(y, 7.5)] * len(extra_corr or [])
    if scan == "IRREGULAR":
        cols = [x] + cols
    data = np.column_stack(cols)
    L.append(str(data.size))
    for col in data.T:
        L += [repr(float(col.min())), repr(float(col.max()))]
    L += [repr(float(v)) for v in data.reshape(-1)]
    return L


def vamas_file(blocks, *, exp_mode="NORM", scan="REGULAR", exp_vars=(), include=None):
    L = [MAGIC, "inst", "model", "op", "exp", "1", "header comment", exp_mode, scan]
    if exp_mode in ("MAP", "MAPDP", "NORM", "SDP"):
        L.append(str(len(blocks)))
    L.append(str(len(exp_vars)))
    for lab, unit in exp_vars:
        L += [lab, unit]
    if include is None:
        L.append("0")
    else:
        L.append(str(len(include)))
        L += [str(k) for k in sorted(include)]
    L += ["0", "0", "0", str(len(blocks))]
    for b in blocks:
        L += b
    L.append("end of experiment")
    return "\r\n".join(L) + "\r\n"


def test_synthetic_depth_profile_with_inclusion_list(tmp_path):
    """SDP mode: sputter source lines, sputtering ion lines, a time experimental variable, and
    an inclusion list that leaves most parameters out of blocks 2.. (they repeat block 1's)."""
    rng = np.random.default_rng(3)
    x = 280.0 + 0.1 * np.arange(50)
    ys = [rng.poisson(100, 50).astype(float) for _ in range(3)]
    times = [0.0, 30.0, 60.0]
    # blocks after the first carry only: exp variable values (11) and abscissa (31),
    # corresponding variables (32); everything else comes from block 1
    include = {11, 31, 32}
    blocks = [
        block_lines(
            ident="C 1s",
            tech="XPS",
            x=x,
            y=ys[0],
            exp_mode="SDP",
            scan="REGULAR",
            exp_values=[times[0]],
        )
    ]
    for i in (1, 2):
        blocks.append(
            block_lines(
                ident=f"C 1s /{i}",
                tech="XPS",
                x=x,
                y=ys[i],
                exp_mode="SDP",
                scan="REGULAR",
                exp_values=[times[i]],
                include=include,
            )
        )
    p = tmp_path / "sdp.vms"
    p.write_text(vamas_file(blocks, exp_mode="SDP", exp_vars=[("Etch Time", "s")], include=include))
    m = read(p)
    t = m.tables["xps_spectra"]
    assert t.num_rows == 150
    np.testing.assert_array_equal(t["intensity"].to_numpy(), np.concatenate(ys))
    assert sorted(set(t["sputter_time_s"].to_pylist())) == times
    assert sorted(set(t["cycle"].to_pylist())) == [1, 2, 3]
    np.testing.assert_allclose(t["binding_energy_ev"].to_numpy()[:50], 1486.6 - x)  # the work function (4.5) is kept, not subtracted
    b2 = m.metadata["blocks"][2]
    assert b2["technique"] == "XPS" and b2["source_energy_ev"] == 1486.6  # inherited
    assert b2["sputter_source"]["mode"] == "continuous"
    assert m.metadata["header"]["excluded_block_parameters"] == sorted(set(range(1, 41)) - include)


def test_synthetic_irregular_multi_block_binding_axis(tmp_path):
    x1 = np.array([700.0, 700.5, 701.7, 703.0])
    x2 = np.array([530.0, 531.0, 532.5])
    blocks = [
        block_lines(
            ident="Fe",
            tech="XPS",
            x=x1,
            y=np.arange(4.0),
            exp_mode="NORM",
            scan="IRREGULAR",
            exp_values=[],
            abscissa="Binding Energy",
            extra_corr=[("Transmission", "d")],
        ),
        block_lines(
            ident="O",
            tech="XPS",
            x=x2,
            y=np.arange(3.0) + 10,
            exp_mode="NORM",
            scan="IRREGULAR",
            exp_values=[],
            abscissa="Binding Energy",
            unknown="1e+037",
        ),
    ]
    p = tmp_path / "irr.vms"
    p.write_bytes(vamas_file(blocks, scan="IRREGULAR").replace("\r\n", "\n").encode())
    t = read(p).tables["xps_spectra"]
    np.testing.assert_array_equal(t["binding_energy_ev"].to_numpy(), np.concatenate([x1, x2]))
    np.testing.assert_allclose(
        t["kinetic_energy_ev"].to_numpy(), 1486.6 - np.concatenate([x1, x2])
    )
    assert t["region"].to_pylist() == ["Fe"] * 4 + ["O"] * 3
    assert t["point"].to_pylist() == [0, 1, 2, 3, 0, 1, 2]


def test_synthetic_sims_block_goes_to_the_sims_table(tmp_path):
    x = 1.0 + 0.5 * np.arange(20)
    y = np.arange(20.0)
    blocks = [
        block_lines(
            ident="pos",
            tech="SIMS",
            x=x,
            y=y,
            exp_mode="NORM",
            scan="REGULAR",
            exp_values=[],
            abscissa="mass",
            hv=1e37,
        )
    ]
    p = tmp_path / "sims.vms"
    p.write_text(vamas_file(blocks))
    m = read(p)
    assert m.technique == "tof-sims" and "xps_spectra" not in m.tables
    t = m.tables["tof_sims_spectra"]
    np.testing.assert_allclose(t["mz"].to_numpy(), x)
    np.testing.assert_array_equal(t["intensity"].to_numpy(), y)
    assert m.metadata["blocks"][0]["sputtering_ion"]["atomic_number"] == 55


def test_unsupported_variants_are_named(tmp_path):
    x = np.arange(5.0)
    blocks = [
        block_lines(ident="b", tech="XRF", x=x, y=x, exp_mode="NORM", scan="REGULAR", exp_values=[])
    ]
    p = tmp_path / "xrf.vms"
    p.write_text(vamas_file(blocks))
    with pytest.raises(UnsupportedFormat, match="XRF"):
        read(p)
    p.write_text(vamas_file(blocks, scan="MAPPING"))
    with pytest.raises(UnsupportedFormat, match="MAPPING"):
        read(p)


def test_truncation_and_huge_counts_are_reader_errors(tmp_path):
    src = (DIR / "Pt4f.vms").read_text()
    p = tmp_path / "t.vms"
    p.write_text(src[: len(src) // 2])
    with pytest.raises(ReaderError) as ei:
        read(p)
    assert ei.value.position.startswith("line")
    lines = src.split("\n")
    i = lines.index("562")  # number of ordinate values of the Pt 4f block
    lines[i] = "1000000000000"
    p.write_text("\n".join(lines))
    with pytest.raises(ReaderError, match="out of range"):
        read(p)


def test_sniff():
    for f in DIR.glob("*.vms"):
        assert sniff(f, f.read_bytes()[:200]) == "vamas"
    other = SAMPLES / "xps-phi" / "test0.spe"
    assert sniff(other, other.read_bytes()[:200]) is None
