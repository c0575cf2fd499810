"""Monoisotopic masses of secondary ions from their formulas, and the characteristic-ion table.

Masses are the sum of isotope masses (Atomic Mass Evaluation values, in u) minus one electron
mass per positive charge, plus one per negative charge, as SCIENCE.md prescribes (e.g. 7Li+
7.01545 u, Li2OH+ 31.03420 u, CO3- 59.98529 u). A formula without an isotope mark uses each
element's most abundant isotope.

Two spellings are understood:

- plain formulas as the lab writes them: ``Li2CO3-``, ``6Li+``, ``[6Li]Li+``, ``C2H4+``;
- IONTOF SurfaceLab markup as exported in peak lists: ``Li_2CO_3-``, ``^6Li+``, ``^13CC_7H-``,
  ``LiCu^18O-`` (``_n`` subscripts, ``^A`` isotope marks before the element).

The characteristic-ion table (:data:`CHARACTERISTIC_IONS`) is the processing side's own list of the
secondary ions that identify the lithium compounds of workflow 1 (SCIENCE.md, "Typical
characteristic ions", Zhao et al., ACS AMI 15 (2023) 50469) plus the nominal-mass interferences the
spectra must resolve (CH3+ beside Li2H+, Si+/CO+/N2+/C2H4+ beside Li2N+). It is a parameter table:
the default mass interval list of :mod:`progral_dagster.processing.peaks` is generated from it.

Why no library: the packages that compute formula masses (``molmass``, ``pyteomics``,
``periodictable``) do not read SurfaceLab's ``^A`` / ``_n`` markup, and the arithmetic is a dozen
lines over a small isotope table; one fewer dependency for the pipeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ELECTRON_MASS_U = 0.000548579909

# (element, mass number) -> atomic mass in u (AME 2016 / 2020 values).
ISOTOPE_MASSES: dict[tuple[str, int], float] = {
    ("H", 1): 1.00782503207,
    ("H", 2): 2.0141017778,
    ("Li", 6): 6.0151228874,
    ("Li", 7): 7.0160034366,
    ("B", 10): 10.0129369,
    ("B", 11): 11.0093054,
    ("C", 12): 12.0,
    ("C", 13): 13.0033548378,
    ("N", 14): 14.0030740048,
    ("N", 15): 15.0001088982,
    ("O", 16): 15.99491461956,
    ("O", 17): 16.9991317,
    ("O", 18): 17.999161,
    ("F", 19): 18.99840322,
    ("Na", 23): 22.9897692809,
    ("Mg", 24): 23.985041700,
    ("Al", 27): 26.98153863,
    ("Si", 28): 27.9769265325,
    ("Si", 29): 28.976494700,
    ("Si", 30): 29.97377017,
    ("P", 31): 30.97376163,
    ("S", 32): 31.97207100,
    ("S", 33): 32.97145876,
    ("S", 34): 33.96786690,
    ("Cl", 35): 34.96885268,
    ("Cl", 37): 36.96590259,
    ("K", 39): 38.96370668,
    ("Ca", 40): 39.96259098,
    ("Ti", 48): 47.9479463,
    ("Mn", 55): 54.9380451,
    ("Fe", 56): 55.9349375,
    ("Co", 59): 58.9331950,
    ("Ni", 58): 57.9353429,
    ("Ni", 60): 59.9307864,
    ("Cu", 63): 62.9295975,
    ("Cu", 65): 64.9277895,
    ("Zn", 64): 63.9291422,
    ("Ru", 102): 101.9043493,
    ("Sn", 118): 117.9016066,
    ("Sn", 120): 119.9021947,
    ("I", 127): 126.904473,
    ("Cs", 133): 132.905451933,
    ("Pb", 208): 207.9766521,
    ("Bi", 209): 208.9803987,
}

# Most abundant isotope per element (used when a formula has no isotope mark).
MAIN_ISOTOPE: dict[str, int] = {
    "H": 1,
    "Li": 7,
    "B": 11,
    "C": 12,
    "N": 14,
    "O": 16,
    "F": 19,
    "Na": 23,
    "Mg": 24,
    "Al": 27,
    "Si": 28,
    "P": 31,
    "S": 32,
    "Cl": 35,
    "K": 39,
    "Ca": 40,
    "Ti": 48,
    "Mn": 55,
    "Fe": 56,
    "Co": 59,
    "Ni": 58,
    "Cu": 63,
    "Zn": 64,
    "Ru": 102,
    "Sn": 120,
    "I": 127,
    "Cs": 133,
    "Pb": 208,
    "Bi": 209,
}

_TOKEN = re.compile(r"(?:\^(\d+)|\[(\d+))?([A-Z][a-z]?)\]?_?(\d*)")
_CHARGE = re.compile(r"([+-]+)$")  # "Li2+" is Li2 singly charged; "++" is 2+


@dataclass(frozen=True)
class Ion:
    """A parsed secondary ion: isotope counts and signed charge (0 for a neutral formula)."""

    formula: str
    atoms: tuple[tuple[str, int, int], ...]  # (element, mass number, count)
    charge: int

    @property
    def mass(self) -> float:
        """Monoisotopic ion mass in u (electron mass removed/added per charge)."""
        m = sum(ISOTOPE_MASSES[(el, a)] * n for el, a, n in self.atoms)
        return m - self.charge * ELECTRON_MASS_U

    @property
    def nominal_mass(self) -> int:
        """Sum of mass numbers."""
        return sum(a * n for _el, a, n in self.atoms)


def parse_ion(formula: str) -> Ion:
    """Parse a plain or SurfaceLab-markup ion formula (see module docstring).

    Raises
    ------
    ValueError
        Unknown element or isotope, or text that is not a formula.
    """
    text = formula.strip()
    charge = 0
    m = _CHARGE.search(text)
    if m:
        signs = m.group(1)
        if len(set(signs)) > 1:
            raise ValueError(f"ion {formula!r}: mixed charge signs")
        charge = len(signs) if signs[0] == "+" else -len(signs)
        text = text[: m.start()]
    # A leading bare mass number marks the first element's isotope: "6Li+", "13CO-".
    lead = re.match(r"^(\d+)(?=[A-Z])", text)
    if lead:
        text = f"^{lead.group(1)}{text[lead.end() :]}"
    atoms: list[tuple[str, int, int]] = []
    pos = 0
    while pos < len(text):
        t = _TOKEN.match(text, pos)
        if not t or t.end() == pos:
            raise ValueError(f"ion {formula!r}: cannot read {text[pos:]!r}")
        iso = t.group(1) or t.group(2)
        el = t.group(3)
        if el not in MAIN_ISOTOPE:
            raise ValueError(f"ion {formula!r}: unknown element {el!r}")
        a = int(iso) if iso else MAIN_ISOTOPE[el]
        if (el, a) not in ISOTOPE_MASSES:
            raise ValueError(f"ion {formula!r}: no mass for isotope {a}{el}")
        n = int(t.group(4)) if t.group(4) else 1
        atoms.append((el, a, n))
        pos = t.end()
    if not atoms:
        raise ValueError(f"ion {formula!r}: empty formula")
    return Ion(formula=formula, atoms=tuple(atoms), charge=charge)


def ion_mass(formula: str) -> float:
    """Monoisotopic mass in u of an ion formula, e.g. ``ion_mass("Li2OH+") -> 31.03420``."""
    return parse_ion(formula).mass


def ion_polarity(formula: str) -> str | None:
    """``"positive"`` / ``"negative"`` from the charge sign, None for a neutral formula."""
    q = parse_ion(formula).charge
    return "positive" if q > 0 else "negative" if q < 0 else None


# Characteristic ions of workflow 1: ion -> compounds it characterises ("*" = every compound,
# "contaminant" = adventitious carbon / salts, listed so that windows are cut against these
# nominal-mass neighbours; not features by default). SCIENCE.md parameter table, extended by the
# cluster families static SIMS of ionic lithium salts shows (Li_n X_m ions of one more or one
# fewer Li than neutral stoichiometry: Li3+, LiO+, Li- ..., and (LiOH)OH-, (Li2O)LiO- type
# adducts).
CHARACTERISTIC_IONS: dict[str, tuple[str, ...]] = {
    # positive
    "6Li+": ("*",),
    "Li+": ("*",),
    "Li2+": ("*",),
    "Li2H+": ("LiH",),
    "CH3+": ("contaminant",),
    "Li3+": ("*",),
    "Na+": ("contaminant",),
    "LiO+": ("Li2O",),
    "C2H3+": ("contaminant",),
    "Si+": ("contaminant",),
    "CO+": ("contaminant",),
    "N2+": ("contaminant",),
    "C2H4+": ("contaminant",),
    "Li2N+": ("Li3N",),
    "Li2O+": ("Li2O",),
    "Li2OH+": ("LiOH",),
    "Li3N+": ("Li3N",),
    "Li3O+": ("Li2O",),
    "C3H5+": ("contaminant",),
    "Li4N+": ("Li3N",),
    "Li3CO3+": ("Li2CO3",),
    # negative
    "H-": ("LiH",),
    "Li-": ("*",),
    "LiH2-": ("LiH",),
    "C-": ("contaminant",),
    "O-": ("Li2O",),
    "NH2-": ("Li3N",),
    "OH-": ("LiOH",),
    "F-": ("contaminant",),
    "LiN-": ("Li3N",),
    "LiO-": ("Li2O",),
    "C2-": ("contaminant",),
    "LiOH-": ("LiOH",),
    "C2H-": ("contaminant",),
    "CN-": ("Li3N",),
    "Li2N-": ("Li3N",),
    "O2-": ("*",),
    "Cl-": ("contaminant",),
    "LiO2-": ("*",),
    "LiO2H2-": ("LiOH",),
    "CNO-": ("Li3N",),
    "Li3O2-": ("Li2O",),
    "CO3-": ("Li2CO3",),
    "HCO3-": ("Li2CO3",),
    "LiCO3-": ("Li2CO3",),
}

CONTAMINANT = "contaminant"


def characteristic_ions(
    polarity: str | None = None, *, contaminants: bool = True
) -> list[tuple[str, float, tuple[str, ...]]]:
    """``(ion, mass_u, compounds)`` for the characteristic-ion table, sorted by mass.

    Parameters
    ----------
    polarity : ``"positive"``, ``"negative"`` or None for both.
    contaminants : include the contamination ions.
    """
    rows = []
    for ion, comps in CHARACTERISTIC_IONS.items():
        if not contaminants and comps == (CONTAMINANT,):
            continue
        pol = ion_polarity(ion)
        if polarity is None or pol == polarity:
            rows.append((ion, ion_mass(ion), comps))
    return sorted(rows, key=lambda r: r[1])
