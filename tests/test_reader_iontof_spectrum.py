"""IONTOF spectrum export reader against the real exports (facts computed independently here)."""

from __future__ import annotations

import math

import pytest

from progral_dagster.readers import ReaderError, iontof_spectrum, read

from .conftest import SAMPLES

FILES = ["sims-iontof/P_Ru_Bi1_1.txt", "sims-iontof/N_HEA19_Bi1_1.txt"]


def _independent(path):
    """Parse the export with plain string operations (no pyarrow)."""
    text = path.read_bytes().decode("latin-1")
    lines = [ln for ln in text.split("\r\n") if ln]
    assert lines[0].startswith("# Binning:") and lines[2].split("\t") == ["Channel", "m/z", "Intensity"]
    rows = [tuple(float(x) for x in ln.split("\t")) for ln in lines[3:]]
    return int(lines[0].split(":")[1].split()[0]), rows


@pytest.mark.parametrize("rel", FILES)
def test_real_export(samples, rel):
    path = samples / rel
    binning, rows = _independent(path)
    m = read(path)
    t = m.tables["tof_sims_spectra"]
    assert (m.technique, m.format) == ("tof-sims", "iontof-spectrum")
    assert t.num_rows == len(rows)
    assert math.isclose(sum(t.column("intensity").to_pylist()), sum(r[2] for r in rows), rel_tol=1e-12)
    mz = t.column("mz").to_pylist()
    assert (min(mz), max(mz)) == (min(r[1] for r in rows), max(r[1] for r in rows))
    assert t.column("channel").to_pylist()[:3] == [r[0] for r in rows[:3]]
    assert m.metadata["binning_channels"] == binning == 200
    assert m.metadata["deadtime_correction"] is True


def test_polarity_from_name(samples):
    assert read(samples / FILES[0]).metadata["polarity"] == "positive"
    assert read(samples / FILES[1]).metadata["polarity"] == "negative"
    assert iontof_spectrum.polarity_from_name("Li2CO3_s1_pos_2.txt") == "positive"
    assert iontof_spectrum.polarity_from_name("sample-neg.txt") == "negative"
    assert iontof_spectrum.polarity_from_name("sample.txt") is None


def test_mass_axis_is_time_of_flight(samples):
    """The real exports follow channel = a*sqrt(m) + t0 (SCIENCE.md: a ~ 32,985, t0 ~ -365)."""
    import numpy as np

    t = read(samples / FILES[0]).tables["tof_sims_spectra"]
    ch = np.array(t.column("channel"))
    mz = np.array(t.column("mz"))
    sel = mz > 1
    a, t0 = np.polyfit(np.sqrt(mz[sel]), ch[sel], 1)
    assert a == pytest.approx(32985, rel=0.01)
    assert t0 == pytest.approx(-365, abs=50)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"# Binning: 200 channels\r\n# Deadtime Correction: on\r\n", "column-title"),
        (b"# Binning: 200 channels\r\nChannel\tm/z\tIntensity\r\n", "no data rows"),
        (b"# Binning: 200 channels\r\nChannel\tm/z\tIntensity\r\n100\t0.1\r\n", "malformed"),
        (b"# Binning: 200 channels\r\nChannel\tm/z\tIntensity\r\n100\tx\t3\r\n", "malformed"),
    ],
)
def test_broken_exports(tmp_path, content, reason):
    p = tmp_path / "s.txt"
    p.write_bytes(content)
    with pytest.raises(ReaderError) as e:
        iontof_spectrum.read(p)
    assert reason in str(e.value) and str(p) in str(e.value)


def test_decimal_comma_export_reads_like_the_original(tmp_path):
    """SurfaceLab on a German-locale Windows writes 0,000197: same table, separator recorded."""
    src = SAMPLES / "sims-iontof" / "P_Ru_Bi1_1.txt"
    lines = src.read_bytes().split(b"\r\n")
    comma = tmp_path / "P_Ru_comma.txt"
    comma.write_bytes(b"\r\n".join(lines[:3] + [ln.replace(b".", b",") for ln in lines[3:]]))
    plain, m = read(src), read(comma)
    assert plain.metadata["decimal_separator"] == "." and m.metadata["decimal_separator"] == ","
    assert m.tables["tof_sims_spectra"].equals(plain.tables["tof_sims_spectra"])
