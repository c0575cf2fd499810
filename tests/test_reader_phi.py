"""PHI .spe / .pro reader.

Independent truth: the ASCII header read with regexes in the test (region definitions, cycle
count), and a physical property of the decoded numbers that a wrong offset or sample type
would destroy: intensity (counts/s) x dwell time (s, from the header) is a whole number of
counts at every point. For the depth profile, the file's own stored peak areas per cycle are
compared with areas integrated from the decoded spectra."""

from __future__ import annotations

import re

import numpy as np
import pytest

from progral_dagster.readers import ReaderError, read
from progral_dagster.readers.phi import sniff
from progral_dagster.warehouse.schemas import conform
from tests.conftest import SAMPLES

DIR = SAMPLES / "xps-phi"
FILES = ["SnO2_10nm.spe", "SnO2_10nm_1.pro", "test0.spe"]


def header_regions(path):
    head = path.read_bytes().split(b"EOFH")[0].decode("latin-1")
    regs = []
    for line in re.findall(r"^SpectralRegDef: (.*)$", head, re.M):
        f = line.split()
        regs.append(
            dict(
                name=f[2],
                n=int(f[4]),
                step=float(f[5]),
                start=float(f[6]),
                end=float(f[7]),
                dwell=float(f[10]),
            )
        )
    cyc = re.search(r"^NoDPDataCyc: (\d+)", head, re.M)
    model = re.search(r"^InstrumentModel: (.*)$", head, re.M).group(1).strip()
    return regs, int(cyc.group(1)) if cyc else 1, model


@pytest.mark.parametrize("name", FILES)
def test_axes_sizes_and_whole_counts(name):
    path = DIR / name
    regs, ncyc, model = header_regions(path)
    m = read(path)
    t = m.tables["xps_spectra"]
    conform("xps_spectra", t)
    assert m.format == ("phi-pro" if name.endswith(".pro") else "phi-spe")
    assert m.instrument == model
    assert t.num_rows == sum(r["n"] for r in regs) * ncyc
    df = t.to_pandas()
    for bi, r in enumerate(regs):
        sub = df[df.region == r["name"]]
        assert (sub.block == bi).all() and len(sub) == r["n"] * ncyc
        be = sub.binding_energy_ev.to_numpy()
        assert be[0] == pytest.approx(r["start"]) and be[r["n"] - 1] == pytest.approx(r["end"])
        np.testing.assert_allclose(np.diff(be[: r["n"]]), r["step"], atol=1e-9)
        counts = sub.intensity.to_numpy() * r["dwell"]
        assert np.abs(counts - np.round(counts)).max() < 0.01, r["name"]
        assert (counts > -0.01).all()
    # KE = hv - BE (Fermi-referenced, as in the VAMAS reader); the work function is metadata
    head = path.read_bytes().split(b"EOFH")[0].decode("latin-1")
    hv = float(re.search(r"XraySource: \w+ ([0-9.]+)", head).group(1))
    wf = float(re.search(r"AnalyserWorkFcn: ([0-9.]+)", head).group(1))
    np.testing.assert_allclose(df.kinetic_energy_ev, hv - df.binding_energy_ev)
    assert m.metadata["work_function_ev"] == pytest.approx(wf)


def test_float32_and_float64_variants():
    assert read(DIR / "SnO2_10nm.spe").metadata["dtype"] == "<f4"  # VersaProbe
    assert read(DIR / "test0.spe").metadata["dtype"] == "<f8"  # Quantum 2000


def test_sn3d_peak_where_sno2_has_it():
    # SnO2 Sn 3d5/2 lies at 486.6 eV (typical literature value); allow a few eV of charging
    t = read(DIR / "SnO2_10nm.spe").tables["xps_spectra"].to_pandas()
    assert 484.0 < t.binding_energy_ev[t.intensity.idxmax()] < 489.0


def test_depth_profile_cycles_times_and_stored_areas():
    m = read(DIR / "SnO2_10nm_1.pro")
    regs, ncyc, _ = header_regions(DIR / "SnO2_10nm_1.pro")
    df = m.tables["xps_spectra"].to_pandas()
    assert sorted(df.cycle.unique()) == list(range(1, ncyc + 1))
    times = m.metadata["sputter_times_s"]
    assert len(times) == ncyc and times[0] == 0.0 and np.all(np.diff(times) > 0)
    per_cycle = df.groupby("cycle").sputter_time_s.agg(["min", "max"])
    assert (per_cycle["min"] == per_cycle["max"]).all() and list(per_cycle["min"]) == times
    # areas the instrument stored vs trapezoid areas above a straight background line
    for r in regs[1:]:  # the narrow regions
        stored = np.array(m.metadata["profile_areas"][r["name"]])
        ours = []
        for c in range(1, ncyc + 1):
            y = df[(df.region == r["name"]) & (df.cycle == c)].intensity.to_numpy()
            ours.append(np.trapezoid(y - np.linspace(y[0], y[-1], len(y))) * abs(r["step"]))
        ours = np.array(ours)
        big = stored > (0.5 if r["name"] == "C1s" else 0.2) * stored.max()
        # C 1s is weak after the first cycle (noisy); Si 2p (0.984) and Sn 3d track closely
        assert np.corrcoef(stored, ours)[0, 1] > (0.9 if r["name"] == "C1s" else 0.97), r["name"]
        np.testing.assert_allclose(ours[big], stored[big], rtol=0.25)
    sn = np.array(m.metadata["profile_areas"]["Sn3d5"])
    si = np.array(m.metadata["profile_areas"]["Si2p"])
    assert sn[-1] < sn.max() and si[-1] > si[0]  # 10 nm SnO2 on Si: Sn falls, Si rises


def test_truncated_and_corrupt_files_are_reader_errors(tmp_path):
    data = (DIR / "SnO2_10nm_1.pro").read_bytes()
    p = tmp_path / "cut.pro"
    p.write_bytes(data[:-1000])
    with pytest.raises(ReaderError, match="truncated"):
        read(p)
    i = data.find(b"EOFH")
    j = data.find(b"\n", i) + 1
    bad = bytearray(data)
    bad[j + 16 + 19 * 4 : j + 16 + 20 * 4] = (10**9).to_bytes(4, "little")  # size of block 1
    p.write_bytes(bytes(bad))
    with pytest.raises(ReaderError, match="do not make"):
        read(p)
    p.write_bytes(data[: i + 2])
    with pytest.raises(ReaderError, match="EOFH"):
        read(p)


def test_sniff():
    assert (
        sniff(DIR / "SnO2_10nm_1.pro", (DIR / "SnO2_10nm_1.pro").read_bytes()[:4096]) == "phi-pro"
    )
    assert sniff(DIR / "test0.spe", (DIR / "test0.spe").read_bytes()[:4096]) == "phi-spe"
    v = SAMPLES / "xps-vamas" / "regular.vms"
    assert sniff(v, v.read_bytes()[:4096]) is None
