"""VAMAS variants seen in real public files that the sample files do not cover.

Each test writes a small synthetic ISO 14976 file (item order of the standard, values chosen by
the test) that reproduces the variant:

- blank lines before the format identifier, as Kratos ESCApe writes them (seen in a Kratos
  AXIS Supra export, LG4X ``Example/0-150W.vms``): the file was not detected as VAMAS;
- CasaXPS regions and components on a binding-energy block (SurfaceSpectra / Scienta ESCA300
  polymer database files fitted in CasaXPS, cheminfo xps-analysis test data): CasaXPS keeps
  their energies in kinetic energy, the reader took them for binding energies.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from progral_dagster.readers import detect, read
from progral_dagster.readers.vamas import MAGIC, sniff

HV = 1486.6


def block(ident, *, abscissa, start, step, y, comment=(), hv=HV, wf="1E37", species="C"):
    """One NORM/REGULAR XPS block (no experimental variables), ISO 14976 item order."""
    L = [ident, "sample", "2024", "5", "17", "13", "45", "12", "0", str(len(comment)), *comment]
    L += ["XPS", "Al", str(hv), "300", "1E37", "1E37", "54.7", "0", "FAT", "20", "1E37", wf]
    L += ["1E37", "1E37", "1E37", "1E37", "1E37", species, "1s", "-1"]
    L += [abscissa, "eV", repr(start), repr(step), "1", "Intensity", "c/s"]
    L += ["pulse counting", "0.1", "1", "1E37", "1E37", "1E37", "1E37", "0"]
    L += [str(len(y)), repr(float(min(y))), repr(float(max(y)))]
    L += [repr(float(v)) for v in y]
    return L


def vamas_text(blocks, *, lead="", eol="\r\n"):
    L = [MAGIC, "inst", "Kratos AXIS", "op", "exp", "0", "NORM", "REGULAR", str(len(blocks))]
    L += ["0", "0", "0", "0", "0", str(len(blocks))]
    for b in blocks:
        L += b
    L.append("end of experiment")
    return lead + eol.join(L) + eol


Y = np.array([120.0, 180.0, 400.0, 950.0, 400.0, 170.0, 130.0])


@pytest.mark.parametrize("lead", ["\r\n\r\n", "\n", "  \r\n\t\r\n"])
def test_blank_lines_before_the_identifier(tmp_path, lead):
    """Kratos ESCApe exports start with empty lines; the file is still VAMAS."""
    blocks = [block("wide", abscissa="Kinetic energy", start=286.69, step=1.0, y=Y)]
    p = tmp_path / "kratos.vms"
    p.write_bytes(vamas_text(blocks, lead=lead).encode("latin-1"))
    ref = tmp_path / "plain.vms"
    ref.write_bytes(vamas_text(blocks).encode("latin-1"))

    assert sniff(p, p.read_bytes()) == "vamas"
    assert detect(p)[0] == "vamas"
    m = read(p)
    t = m.tables["xps_spectra"]
    np.testing.assert_array_equal(t["intensity"].to_numpy(), Y)
    np.testing.assert_allclose(t["kinetic_energy_ev"].to_numpy(), 286.69 + np.arange(len(Y)))
    assert m.metadata["n_blocks"] == 1
    assert t.equals(read(ref).tables["xps_spectra"])


def test_blank_lines_then_something_else_is_not_vamas(tmp_path):
    p = tmp_path / "other.vms"
    p.write_bytes(b"\r\n\r\nnot a VAMAS file\r\n" + MAGIC.encode() + b"\r\n")
    assert sniff(p, p.read_bytes()) is None
    assert sniff(p, b"\r\n \r\n") is None


CASA_REGION = (
    "CASA region (*C 1s*) (*Shirley*) 1193.6 1202.6 0.278 2 0 0 40.4 -450 0 0 "
    "(*C 1s*) 12.011 0 0.278"
)
CASA_COMPS = [
    "CASA comp (*C-O*) (*GL(30)*) Area 4830.5 1e-020 126904.8 -1 1 MFWHM 1.1 0.25 6.25 -1 1 "
    "Position 1199.8 1199.7 1199.87 -1 1 RSF 0.278 MASS 12.011 INDEX -1 (*C 1s*) CONST (**) "
    "UNCORRECTEDRSF 0.278",
    "CASA comp (*C-C*) (*GL(30)*) Area 100.25 1e-020 126904.8 -1 1 MFWHM 0.75 0.25 6.25 -1 1 "
    "Position 1201.6 1201.4 1201.8 -1 1 RSF 0.278 MASS 12.011 INDEX -1 (*C 1s*) CONST (**) "
    "UNCORRECTEDRSF 0.278",
]
CASA_COMMENT = ["Casa Info Follows", "0", "0", "1", CASA_REGION, "2", *CASA_COMPS]


def _casa(m):
    rows = m.tables["xps_casa_components"].to_pylist()
    return rows, [json.loads(r["parameters"]) for r in rows]


def test_casa_energies_on_a_binding_energy_block_are_kinetic(tmp_path):
    """A binding-energy block (294 .. 293.4 eV BE): CasaXPS still stores the region limits and
    component positions in kinetic energy (1193.6 eV KE = 293.0 eV BE with hv 1486.6 eV)."""
    blocks = [
        block(
            "C 1s",
            abscissa="Binding energy",
            start=294.0,
            step=-0.1,
            y=Y,
            comment=CASA_COMMENT,
        )
    ]
    p = tmp_path / "be.vms"
    p.write_bytes(vamas_text(blocks).encode("latin-1"))
    m = read(p)
    t = m.tables["xps_spectra"]
    np.testing.assert_allclose(t["binding_energy_ev"].to_numpy(), 294.0 - 0.1 * np.arange(len(Y)))
    rows, params = _casa(m)
    region, comps = rows[0], rows[1:]
    # the stored numbers, unchanged
    assert (region["kind"], region["start_ev"], region["end_ev"]) == ("region", 1193.6, 1202.6)
    assert [c["position_ev"] for c in comps] == [1199.8, 1201.6]
    assert [c["area"] for c in comps] == [4830.5, 100.25]
    assert [c["fwhm_ev"] for c in comps] == [1.1, 0.75]
    # their scale and binding-energy equivalents: hv - KE (work function unknown)
    assert all(p_["energy_scale"] == "kinetic energy" for p_ in params)
    np.testing.assert_allclose(params[0]["binding_ev"], [HV - 1193.6, HV - 1202.6])
    np.testing.assert_allclose(
        [p_["position_binding_ev"] for p_ in params[1:]], [HV - 1199.8, HV - 1201.6]
    )
    # inside the block's binding-energy window (293.0 .. 284.0 for the region)
    assert 284.0 - 1e-9 <= params[1]["position_binding_ev"] <= 294.0


def test_casa_binding_equivalents_match_the_spectrum_on_a_kinetic_block(tmp_path):
    """On a kinetic-energy block, the component's binding energy is the spectrum's binding
    energy at the same kinetic energy (one conversion for both tables)."""
    ke0 = 1196.8
    blocks = [
        block(
            "C 1s",
            abscissa="Kinetic energy",
            start=ke0,
            step=1.0,
            y=Y,
            comment=CASA_COMMENT,
            wf="4.5",
        )
    ]
    p = tmp_path / "ke.vms"
    p.write_bytes(vamas_text(blocks, eol="\n").encode("latin-1"))
    m = read(p)
    t = m.tables["xps_spectra"]
    ke = t["kinetic_energy_ev"].to_numpy()
    be = t["binding_energy_ev"].to_numpy()
    rows, params = _casa(m)
    k = int(np.argmin(abs(ke - 1199.8)))
    assert ke[k] == pytest.approx(1199.8)
    assert params[1]["position_binding_ev"] == pytest.approx(be[k])
    assert params[0]["binding_ev"][0] == pytest.approx(be[0] - (1193.6 - ke0))


def test_casa_without_source_energy_has_no_binding_equivalents(tmp_path):
    """Unknown source energy (1E37): kinetic energies only, no [None, None] pairs."""
    blocks = [
        block(
            "C 1s",
            abscissa="Kinetic energy",
            start=1196.8,
            step=1.0,
            y=Y,
            comment=CASA_COMMENT,
            hv="1E37",
        )
    ]
    p = tmp_path / "nohv.vms"
    p.write_bytes(vamas_text(blocks).encode("latin-1"))
    rows, params = _casa(read(p))
    assert len(rows) == 3
    assert all(p_["energy_scale"] == "kinetic energy" for p_ in params)
    assert "binding_ev" not in params[0]
    assert all("position_binding_ev" not in p_ for p_ in params[1:])
