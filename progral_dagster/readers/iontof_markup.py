"""IONTOF SurfaceLab peak-name markup: ``^118SnI_3-`` -> species, isotopes, charge.

SurfaceLab writes peak names in its ASCII exports (depth profiles, peak lists) with a small
markup, described here from the real exports in shared/samples/sims-iontof (no published
grammar exists):

- an element symbol, optionally preceded by an isotope mark ``^<mass number>`` (``^118Sn``)
  and followed by a subscript count ``_<n>`` (``I_3``);
- a trailing charge: ``+`` or ``-``, repeated for multiply charged ions (``++``), or
  ``^<n>+`` / ``^<n>-``;
- a *group* (peaks summed under one name) lists its members separated by ``", "`` and is
  followed directly by the group's own name: ``^206PbI_3-, ^207PbI_3-PbI_3-`` is the group
  ``PbI_3-`` of ``^206PbI_3-`` and ``^207PbI_3-``; a one-member group reads
  ``^118SnI_3-SnI_3-``;
- a *ratio* is ``A / ( B )`` with A and B single peaks or groups;
- ``total`` is the total-ion column.

Names that do not follow the markup (free text typed by the operator) still parse: they become
kind ``species`` with ``formula`` None, and the charge is taken from a trailing sign if present.

Why not a library: no maintained parser for this markup exists (pySPM reads the binary files,
where peak names are plain strings); the grammar is small enough for one compiled regex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

# Symbols of the elements (plus D for deuterium): used to tell formulas from free text.
ELEMENTS = frozenset(
    """H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As
    Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd
    Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am
    Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og D""".split()
)

_TOKEN = re.compile(r"(?:\^(\d+))?([A-Z][a-z]?)(?:_(\d+))?")
_CHARGE = re.compile(r"(?:\^(\d+)([+-])|([+-]+))$")
# A member boundary inside the last part of a group: a charge sign directly followed by the
# start of the next name (an isotope mark or an element symbol).
_GROUP_SPLIT = re.compile(r"[+-](?=[\^A-Z])")
_RATIO = re.compile(r"^(.*?)\s*/\s*\(\s*(.*?)\s*\)\s*$")


@dataclass(frozen=True)
class Ion:
    """One peak name that names a single ion.

    Attributes
    ----------
    text : the name as written
    formula : element counts summed, isotope marks dropped, symbols in order of first
        appearance (``^118Sn^117SnI_3-`` -> ``Sn2I3``); None for free text
    isotopes : the marked isotopes as written, in order (``("118Sn", "117Sn")``)
    charge : signed charge number, None when the name has no charge sign
    """

    text: str
    formula: str | None
    isotopes: tuple[str, ...] = ()
    charge: int | None = None


@dataclass(frozen=True)
class PeakName:
    """A parsed column / peak name.

    kind is ``species``, ``total``, ``group`` or ``ratio``. ``ion`` is the species itself, or
    for a group the group's own name; ``members`` the members of a group; ``numerator`` and
    ``denominator`` the two sides of a ratio.
    """

    text: str
    kind: str
    ion: Ion | None = None
    members: tuple[Ion, ...] = ()
    numerator: PeakName | None = None
    denominator: PeakName | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def species(self) -> str | None:
        return self.ion.formula if self.ion else None

    @property
    def charge(self) -> int | None:
        return self.ion.charge if self.ion else None

    @property
    def isotope(self) -> str | None:
        """Marked isotopes joined by commas (None if none)."""
        if self.ion is None or not self.ion.isotopes:
            return None
        return ",".join(self.ion.isotopes)

    def to_dict(self) -> dict:
        """JSON-serialisable description (for measurement metadata)."""
        d: dict = {"name": self.text, "kind": self.kind}
        if self.ion is not None:
            d.update(
                species=self.ion.formula, isotopes=list(self.ion.isotopes), charge=self.ion.charge
            )
        if self.members:
            d["members"] = [m.text for m in self.members]
        if self.numerator is not None and self.denominator is not None:
            d["numerator"] = self.numerator.to_dict()
            d["denominator"] = self.denominator.to_dict()
        return d


def parse_ion(text: str) -> Ion:
    """Parse one ion name (no group, no ratio)."""
    s = text.strip()
    charge = None
    m = _CHARGE.search(s)
    body = s
    if m:
        if m.group(3):
            sign = 1 if m.group(3)[0] == "+" else -1
            charge = sign * len(m.group(3)) if len(set(m.group(3))) == 1 else None
        else:
            charge = int(m.group(1)) * (1 if m.group(2) == "+" else -1)
        body = s[: m.start()]
    counts: dict[str, int] = {}
    isotopes: list[str] = []
    pos = 0
    ok = bool(body)
    while pos < len(body):
        t = _TOKEN.match(body, pos)
        if not t or t.end() == pos or t.group(2) not in ELEMENTS:
            ok = False
            break
        iso, sym, n = t.groups()
        if iso:
            isotopes.append(f"{int(iso)}{sym}")
        counts[sym] = counts.get(sym, 0) + (int(n) if n else 1)
        pos = t.end()
    formula = "".join(f"{k}{v if v != 1 else ''}" for k, v in counts.items()) if ok else None
    return Ion(text=s, formula=formula, isotopes=tuple(isotopes) if ok else (), charge=charge)


def _parse_simple_or_group(text: str) -> PeakName:
    s = text.strip()
    if s.lower() == "total":
        return PeakName(text=s, kind="total")
    parts = s.split(", ")
    last = parts[-1]
    cut = _GROUP_SPLIT.search(last)
    if cut is None:
        if len(parts) > 1:  # "A, B" without a group name: free text
            return PeakName(text=s, kind="species", ion=Ion(text=s, formula=None))
        return PeakName(text=s, kind="species", ion=parse_ion(s))
    members = [parse_ion(p) for p in parts[:-1]]
    members.append(parse_ion(last[: cut.end()]))
    group = parse_ion(last[cut.end() :])
    return PeakName(text=s, kind="group", ion=group, members=tuple(members))


@lru_cache(maxsize=4096)
def parse_peak_name(text: str) -> PeakName:
    """Parse a SurfaceLab peak / column name into a :class:`PeakName`.

    Examples
    --------
    >>> parse_peak_name("^118SnI_3-").ion
    Ion(text='^118SnI_3-', formula='SnI3', isotopes=('118Sn',), charge=-1)
    >>> p = parse_peak_name("^206PbI_3-, ^207PbI_3-PbI_3-")
    >>> p.kind, p.species, [m.text for m in p.members]
    ('group', 'PbI3', ['^206PbI_3-', '^207PbI_3-'])
    >>> parse_peak_name("Sn+ / ( Pb+ )").kind
    'ratio'
    """
    s = text.strip()
    m = _RATIO.match(s)
    if m and m.group(1) and m.group(2):
        num = _parse_simple_or_group(m.group(1))
        den = _parse_simple_or_group(m.group(2))
        return PeakName(text=s, kind="ratio", numerator=num, denominator=den)
    return _parse_simple_or_group(s)
