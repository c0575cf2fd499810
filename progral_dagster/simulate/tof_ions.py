"""Ion formulas -> monoisotopic m/z and isotope patterns, with the element/isotope table.

Masses are atomic masses of the nuclides (AME2020 / NIST "Atomic Weights and Isotopic
Compositions"), abundances the IUPAC representative isotopic compositions. An ion's mass is the
neutral mass minus (cations) or plus (anions) one electron mass per charge, so ``"Li2OH+"``
gives 31.03420 u and ``"CO3-"`` 59.98529 u, the values listed in SCIENCE.md.

Formulas accepted (plain or IONTOF SurfaceLab markup)::

    Li2OH+      LiCO3-      Li(OH)2-     C2H3O+      6Li+       ^6Li+     C_2H-
    ^13CC_7H-   Li2++       Li^2+        H2O  (no sign: neutral mass)

A number directly at the start (``6Li+``) or after ``^`` is an isotope's mass number; element
counts follow the symbol (``_`` optional); parentheses group. The isotope pattern is the
product of the element distributions, fine structure kept but peaks closer than
``merge_tol`` merged (far below any ToF resolution).

Why not a library: pyteomics/molmass/IsoSpecPy compute the same things, but each would be a
dependency for some forty lines; the table below is facts, the convolution is textbook.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

ELECTRON_MASS = 0.000548579909065

# element -> ((mass number, atomic mass u, abundance), ...)
ISOTOPES: dict[str, tuple[tuple[int, float, float], ...]] = {
    "H": ((1, 1.00782503223, 0.999885), (2, 2.01410177812, 0.000115)),
    "D": ((2, 2.01410177812, 1.0),),
    "Li": ((6, 6.0151228874, 0.0759), (7, 7.0160034366, 0.9241)),
    "Be": ((9, 9.012183065, 1.0),),
    "B": ((10, 10.01293695, 0.199), (11, 11.00930536, 0.801)),
    "C": ((12, 12.0, 0.9893), (13, 13.00335483507, 0.0107)),
    "N": ((14, 14.00307400443, 0.99636), (15, 15.00010889888, 0.00364)),
    "O": (
        (16, 15.99491461957, 0.99757),
        (17, 16.99913175650, 0.00038),
        (18, 17.99915961286, 0.00205),
    ),
    "F": ((19, 18.99840316273, 1.0),),
    "Na": ((23, 22.9897692820, 1.0),),
    "Mg": ((24, 23.985041697, 0.7899), (25, 24.985836976, 0.1000), (26, 25.982592968, 0.1101)),
    "Al": ((27, 26.98153853, 1.0),),
    "Si": (
        (28, 27.97692653465, 0.92223),
        (29, 28.97649466490, 0.04685),
        (30, 29.973770136, 0.03092),
    ),
    "P": ((31, 30.97376199842, 1.0),),
    "S": (
        (32, 31.9720711744, 0.9499),
        (33, 32.9714589098, 0.0075),
        (34, 33.967867004, 0.0425),
        (36, 35.96708071, 0.0001),
    ),
    "Cl": ((35, 34.968852682, 0.7576), (37, 36.965902602, 0.2424)),
    "K": (
        (39, 38.9637064864, 0.932581),
        (40, 39.963998166, 0.000117),
        (41, 40.9618252579, 0.067302),
    ),
    "Ca": (
        (40, 39.962590863, 0.96941),
        (42, 41.95861783, 0.00647),
        (43, 42.95876644, 0.00135),
        (44, 43.95548156, 0.02086),
        (46, 45.953689, 0.00004),
        (48, 47.95252276, 0.00187),
    ),
    "Ti": (
        (46, 45.95262772, 0.0825),
        (47, 46.95175879, 0.0744),
        (48, 47.94794198, 0.7372),
        (49, 48.94786568, 0.0541),
        (50, 49.94478689, 0.0518),
    ),
    "Cr": (
        (50, 49.94604183, 0.04345),
        (52, 51.94050623, 0.83789),
        (53, 52.94064815, 0.09501),
        (54, 53.93887916, 0.02365),
    ),
    "Mn": ((55, 54.93804391, 1.0),),
    "Fe": (
        (54, 53.93960899, 0.05845),
        (56, 55.93493633, 0.91754),
        (57, 56.93539284, 0.02119),
        (58, 57.93327443, 0.00282),
    ),
    "Co": ((59, 58.93319429, 1.0),),
    "Ni": (
        (58, 57.93534241, 0.68077),
        (60, 59.93078588, 0.26223),
        (61, 60.93105557, 0.011399),
        (62, 61.92834537, 0.036346),
        (64, 63.92796682, 0.009255),
    ),
    "Cu": ((63, 62.92959772, 0.6915), (65, 64.92778970, 0.3085)),
    "Zn": (
        (64, 63.92914201, 0.4917),
        (66, 65.92603381, 0.2773),
        (67, 66.92712775, 0.0404),
        (68, 67.92484455, 0.1845),
        (70, 69.9253192, 0.0061),
    ),
    "Ga": ((69, 68.9255735, 0.60108), (71, 70.92470258, 0.39892)),
    "Br": ((79, 78.9183376, 0.5069), (81, 80.9162897, 0.4931)),
    "Ag": ((107, 106.9050916, 0.51839), (109, 108.9047553, 0.48161)),
    "In": ((113, 112.90406184, 0.0429), (115, 114.903878776, 0.9571)),
    "Sn": (
        (112, 111.90482387, 0.0097),
        (114, 113.9027827, 0.0066),
        (115, 114.903344699, 0.0034),
        (116, 115.90174280, 0.1454),
        (117, 116.90295398, 0.0768),
        (118, 117.90160657, 0.2422),
        (119, 118.90331117, 0.0859),
        (120, 119.90220163, 0.3258),
        (122, 121.9034438, 0.0463),
        (124, 123.9052766, 0.0579),
    ),
    "I": ((127, 126.9044719, 1.0),),
    "Cs": ((133, 132.905451961, 1.0),),
    "Au": ((197, 196.96656879, 1.0),),
    "Bi": ((209, 208.9803991, 1.0),),
}

_FORMULA_CHARGE = re.compile(r"^(.*?)(?:\^?(\d*)([+-])|([+-]{2,}))$")
_TOKEN = re.compile(r"\^(\d+)|(\d+)|_(\d+)|([A-Z][a-z]?)|(\()|(\))")


def parse_formula(formula: str) -> tuple[tuple[tuple[str, int | None, int], ...], int]:
    """Split an ion formula into atoms and a charge.

    Returns
    -------
    (atoms, charge): ``atoms`` is a tuple of ``(element, mass number or None, count)``, in order
    of appearance, with equal (element, isotope) pairs summed; ``charge`` is the signed charge
    number (0 for a neutral formula).

    Raises
    ------
    ValueError
        Unknown element symbol, unbalanced parentheses or characters that are no formula.
    """
    text = formula.strip().replace(" ", "")
    if not text:
        raise ValueError("empty ion formula")
    charge = 0
    body = text
    m = _FORMULA_CHARGE.match(text)
    if m and (m.group(3) or m.group(4)):
        body = m.group(1)
        if m.group(4):
            charge = len(m.group(4)) * (1 if m.group(4)[0] == "+" else -1)
        else:
            n = int(m.group(2)) if m.group(2) else 1
            # "Li2+" is Li2 with one charge, not Li with charge 2; "Li^2+" is doubly charged.
            if m.group(2) and not text[: m.start(2)].endswith("^"):
                body = body + m.group(2)
                n = 1
            charge = n if m.group(3) == "+" else -n
        if len(body) > 1 and body[-1] in "+-" and body[-2] not in "+-":
            raise ValueError(f"cannot parse ion formula {formula!r}")
    if not body:
        raise ValueError(f"ion formula {formula!r} has no atoms")

    stack: list[dict[tuple[str, int | None], int]] = [{}]
    last: tuple[dict, tuple[str, int | None]] | dict | None = None  # what a count applies to
    pending_isotope: int | None = None
    pos = 0
    at_start = True
    while pos < len(body):
        t = _TOKEN.match(body, pos)
        if t is None:
            raise ValueError(f"cannot parse ion formula {formula!r} at {body[pos:]!r}")
        pos = t.end()
        iso_mark, number, subscript, element, opening, closing = t.groups()
        if iso_mark is not None:
            pending_isotope = int(iso_mark)
        elif number is not None or subscript is not None:
            n = int(number if number is not None else subscript)
            nxt = body[pos : pos + 1]
            if number is not None and (at_start or last is None) and nxt.isupper():
                pending_isotope = n  # "6Li+": a mass number before the first symbol
            elif isinstance(last, tuple):
                group, key = last
                group[key] += n - 1
                last = None
            elif isinstance(last, dict):
                for key in last:
                    last[key] *= n
                _merge(stack[-1], last)
                last = None
            else:
                raise ValueError(f"misplaced number in ion formula {formula!r}")
        elif element is not None:
            if isinstance(last, dict):
                _merge(stack[-1], last)
            if element not in ISOTOPES:
                raise ValueError(f"unknown element {element!r} in ion formula {formula!r}")
            if pending_isotope is not None and pending_isotope not in {
                a for a, _m, _x in ISOTOPES[element]
            }:
                raise ValueError(f"{element} has no isotope {pending_isotope} (in {formula!r})")
            key = (element, pending_isotope)
            pending_isotope = None
            stack[-1][key] = stack[-1].get(key, 0) + 1
            last = (stack[-1], key)
        elif opening is not None:
            if isinstance(last, dict):
                _merge(stack[-1], last)
            stack.append({})
            last = None
        elif closing is not None:
            if isinstance(last, dict):
                _merge(stack[-1], last)
            if len(stack) == 1:
                raise ValueError(f"unbalanced ')' in ion formula {formula!r}")
            last = stack.pop()
        at_start = False
    if isinstance(last, dict):
        _merge(stack[-1], last)
    if len(stack) != 1:
        raise ValueError(f"unbalanced '(' in ion formula {formula!r}")
    if pending_isotope is not None:
        raise ValueError(f"isotope mark without element in ion formula {formula!r}")
    atoms = tuple((el, iso, n) for (el, iso), n in stack[0].items() if n > 0)
    if not atoms:
        raise ValueError(f"ion formula {formula!r} has no atoms")
    return atoms, charge


def _merge(into: dict, group: dict) -> None:
    for key, n in group.items():
        into[key] = into.get(key, 0) + n


def _isotope(element: str, mass_number: int | None) -> tuple[float, float]:
    table = ISOTOPES[element]
    if mass_number is None:
        _a, mass, ab = max(table, key=lambda r: r[2])
        return mass, ab
    for a, mass, ab in table:
        if a == mass_number:
            return mass, ab
    raise ValueError(f"{element} has no isotope {mass_number}")


def ion_charge(formula: str) -> int:
    """Signed charge number of an ion formula (0 for a neutral one)."""
    return parse_formula(formula)[1]


@lru_cache(maxsize=4096)
def ion_mass(formula: str) -> float:
    """Monoisotopic m/z of an ion (u): most abundant isotope of each unmarked element, marked
    isotopes as marked, one electron mass removed (cation) or added (anion) per charge, divided
    by the charge number. A formula without a sign gives the neutral mass.

    >>> round(ion_mass("Li2OH+"), 5)
    31.0342
    """
    atoms, charge = parse_formula(formula)
    mass = sum(_isotope(el, iso)[0] * n for el, iso, n in atoms)
    mass -= charge * ELECTRON_MASS
    return mass / abs(charge) if charge else mass


def nominal_mass(formula: str) -> int:
    """Integer (nominal) m/z of the monoisotopic ion."""
    atoms, charge = parse_formula(formula)
    a = 0
    for el, iso, n in atoms:
        a += n * (iso if iso is not None else max(ISOTOPES[el], key=lambda r: r[2])[0])
    return a // abs(charge) if charge else a


def _element_distribution(element: str, n: int, prune: float) -> list[tuple[float, float]]:
    """Mass distribution of n atoms of one element (repeated convolution with pruning)."""
    dist = [(0.0, 1.0)]
    single = [(mass, ab) for _a, mass, ab in ISOTOPES[element] if ab > 0]
    for _ in range(n):
        dist = _convolve(dist, single, prune)
    return dist


def _convolve(
    a: Iterable[tuple[float, float]], b: Iterable[tuple[float, float]], prune: float, tol=1e-6
) -> list[tuple[float, float]]:
    out: dict[int, list[float]] = {}
    for ma, pa in a:
        for mb, pb in b:
            p = pa * pb
            if p < prune:
                continue
            m = ma + mb
            k = round(m / tol)
            acc = out.get(k)
            if acc is None:
                out[k] = [m * p, p]
            else:
                acc[0] += m * p
                acc[1] += p
    return [(s / p, p) for s, p in out.values()]


@lru_cache(maxsize=4096)
def _pattern(
    formula: str, min_abundance: float, merge_tol: float
) -> tuple[tuple[float, float], ...]:
    atoms, charge = parse_formula(formula)
    prune = min_abundance * 1e-3
    dist = [(0.0, 1.0)]
    for el, iso, n in atoms:
        if iso is not None:
            dist = [(m + _isotope(el, iso)[0] * n, p) for m, p in dist]
        else:
            dist = _convolve(dist, _element_distribution(el, n, prune), prune)
    dist.sort()
    merged: list[list[float]] = []
    for m, p in dist:
        if merged and m - merged[-1][0] / merged[-1][1] < merge_tol:
            merged[-1][0] += m * p
            merged[-1][1] += p
        else:
            merged.append([m * p, p])
    z = abs(charge) or 1
    return tuple(((s / p - charge * ELECTRON_MASS) / z, p) for s, p in merged if p >= min_abundance)


def isotope_pattern(
    formula: str, min_abundance: float = 1e-4, merge_tol: float = 1e-3
) -> list[tuple[float, float]]:
    """Isotopologue m/z values and their abundances for an ion formula.

    Parameters
    ----------
    formula : ion formula (see the module docstring); marked isotopes are fixed
    min_abundance : isotopologues less abundant than this are dropped
    merge_tol : isotopologues closer than this (u) are merged, abundance-weighted

    Returns
    -------
    list of ``(m/z, abundance)`` sorted by m/z; the abundances are probabilities and sum to 1
    less the dropped ones.
    """
    return list(_pattern(formula, float(min_abundance), float(merge_tol)))


def surfacelab_name(formula: str) -> str:
    """The ion in SurfaceLab peak-name markup: ``"LiCO3-"`` -> ``"LiCO_3-"``,
    ``"6Li+"`` -> ``"^6Li+"``."""
    atoms, charge = parse_formula(formula)
    parts = []
    for el, iso, n in atoms:
        parts.append((f"^{iso}" if iso is not None else "") + el + (f"_{n}" if n > 1 else ""))
    sign = "+" if charge > 0 else "-"
    return "".join(parts) + (sign * abs(charge) if charge else "")
