"""Which files belong to one multi-file acquisition, decided from the path alone.

IONTOF SurfaceLab exports the images of one measurement as one text file per ion, named
``<measurement> (<n>) - <ion>.txt`` (``total`` beside the ion images). The share sensor calls
:func:`acquisition_group` on every path every tick (100,000 paths in well under a second), so it
is one compiled regular expression, tried only on names that contain ``") - "``.

The group key is ``<folder>/<measurement name>`` (``<measurement name>`` for a file at the share
root), with ``/`` as separator whatever the input used, so members in one folder with the same
measurement name share a key and the files of two measurements never do.

Arbin's CSV export writes the test's metadata beside the data: ``X_Metadata.csv`` next to
``X.csv``. The metadata file's group key is the data file's own path (``<folder>/X.csv``), and
the data file joins that group when its metadata file is there (:func:`companion_of`), so the
pair is read as one measurement (the reader gets ``[X.csv, X_Metadata.csv]``).
"""

from __future__ import annotations

import re

# folder (optional), measurement name, image number, ion; ".txt" in any case.
_MEMBER = re.compile(r"^(?:(.*)[/\\])?([^/\\]+?) \((\d+)\) - ([^/\\]+?)\.txt$", re.IGNORECASE)


_ARBIN_META = re.compile(r"^(.*)_Metadata\.csv$", re.IGNORECASE)


def companion_of(group: str) -> str | None:
    """The member of a group named by the group key itself (Arbin: the data CSV), else None."""
    return group if group.lower().endswith(".csv") else None


def acquisition_group(relpath: str) -> str | None:
    """Group key of a member of a multi-file acquisition, or None for a file read alone.

    >>> acquisition_group("2024/NMC_cs (3) - NiO-.txt")
    '2024/NMC_cs'
    >>> acquisition_group("2024/I241213h_M_PCBM-ref_2D_neg-B1 - NF.txt") is None
    True
    """
    if ") - " not in relpath:
        if relpath[-13:].lower() == "_metadata.csv":
            a = _ARBIN_META.match(relpath.replace(chr(92), "/"))
            return f"{a.group(1)}.csv" if a else None
        return None
    m = _MEMBER.match(relpath)
    if m is None:
        return None
    folder, name = m.group(1), m.group(2)
    if folder:
        return f"{folder.replace(chr(92), '/')}/{name}"
    return name


def member_parts(relpath: str) -> tuple[str, int, str] | None:
    """(measurement name, image number, ion) of an image-export member name, else None."""
    if ") - " not in relpath:
        return None
    m = _MEMBER.match(relpath)
    return (m.group(2), int(m.group(3)), m.group(4)) if m else None


def group_members(paths: list[str]) -> dict[str, list[str]]:
    """Members of each acquisition group among ``paths``, each list sorted by image number
    (then name). Paths that belong to no group are left out."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for p in paths:
        if ") - " not in p:
            continue
        m = _MEMBER.match(p)
        if m is None:
            continue
        folder, name = m.group(1), m.group(2)
        key = f"{folder.replace(chr(92), '/')}/{name}" if folder else name
        groups.setdefault(key, []).append((int(m.group(3)), p))
    return {k: [p for _, p in sorted(v)] for k, v in groups.items()}
