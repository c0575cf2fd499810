"""Listing the instrument share: which files exist, with size and mtime. Pure (no dagster).

Rules: hidden files and folders (``.name``), temporary and lock files of the usual writers
(``~$x``, ``x~``, ``*.tmp``, ``*.part``, ``*.crdownload``, ``*.swp``, ``*.lock``, ``*.lck``,
``.~lock.*#``, ``Thumbs.db``, ``desktop.ini``) are skipped. Symbolic links are followed only
when they resolve inside the share, and every directory is listed once (by device and inode),
so links out of the share are never followed and link loops end.

On network shares (``PROGRAL_SHARE_KIND=network``) a full listing costs a round trip per
directory and file; between full listings (every ``PROGRAL_FULL_LISTING_SECONDS``) only
directories whose mtime changed are listed again, and files of unchanged directories keep their
last known size and mtime. A file rewritten in place (which leaves its directory's mtime alone)
is therefore noticed at the next full listing.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat as st
from dataclasses import dataclass, field
from pathlib import Path

_SKIP_NAMES = {"thumbs.db", "desktop.ini", ".ds_store"}
_SKIP_RE = re.compile(
    r"^(~\$.*|\.~lock\..*#|.*~|.*\.(tmp|temp|part|partial|crdownload|swp|swx|lock|lck|filepart|download))$",
    re.IGNORECASE,
)


def skipped(name: str) -> bool:
    """Whether a file or folder name is hidden, temporary or a lock file."""
    return name.startswith(".") or name.lower() in _SKIP_NAMES or bool(_SKIP_RE.match(name))


class ShareUnavailable(Exception):
    """The share root is missing or cannot be listed."""


@dataclass
class Listing:
    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # relpath -> (size, mtime_ns)
    dirs: dict[str, int] = field(default_factory=dict)  # relpath ('' = root) -> mtime_ns
    skipped_links: int = 0
    unreadable: list[str] = field(default_factory=list)
    bad_names: list[str] = field(default_factory=list)  # not UTF-8: skipped, reported (rename them)
    listed_dirs: int = 0


def scan(root: Path, *, previous_dirs: dict[str, int] | None = None,
         previous_files: dict[str, tuple[int, int]] | None = None) -> Listing:
    """List the share. With ``previous_dirs``/``previous_files`` (network mode), directories whose
    mtime is unchanged are not listed again and keep their previous files."""
    try:
        rst = os.stat(root)
    except OSError as exc:
        raise ShareUnavailable(f"share {root} is not reachable: {exc.strerror or exc}") from None
    if not st.S_ISDIR(rst.st_mode):
        raise ShareUnavailable(f"share {root} is not a folder")
    real_root = os.path.realpath(root)
    out = Listing()
    prev_by_dir: dict[str, list[str]] | None = None
    children: dict[str, list[str]] = {}
    if previous_dirs is not None and previous_files is not None:
        prev_by_dir = {}
        for p in previous_files:
            prev_by_dir.setdefault(os.path.dirname(p), []).append(p)
        for d in previous_dirs:
            if d:
                children.setdefault(os.path.dirname(d), []).append(d)
    try:
        os.scandir(root).close()
    except OSError as exc:
        raise ShareUnavailable(f"share {root} cannot be listed: {exc.strerror or exc}") from None
    seen_dirs: set[tuple[int, int]] = set()
    stack: list[tuple[str, str, os.stat_result]] = [(str(root), "", rst)]
    while stack:
        abs_dir, rel_dir, dst = stack.pop()
        ident = (dst.st_dev, dst.st_ino)
        if ident in seen_dirs:
            continue
        seen_dirs.add(ident)
        out.dirs[rel_dir] = dst.st_mtime_ns
        if prev_by_dir is not None and previous_dirs.get(rel_dir) == dst.st_mtime_ns:
            # unchanged directory: no listing; keep its files, look at its known subfolders
            for p in prev_by_dir.get(rel_dir, ()):
                out.files[p] = previous_files[p]
            for child in children.get(rel_dir, ()):
                try:
                    cs = os.stat(os.path.join(str(root), child))
                except OSError:
                    continue
                if st.S_ISDIR(cs.st_mode):
                    stack.append((os.path.join(str(root), child), child, cs))
            continue
        try:
            entries = list(os.scandir(abs_dir))
        except OSError:
            out.unreadable.append(rel_dir or ".")
            continue
        out.listed_dirs += 1
        for e in entries:
            name = e.name
            if skipped(name):
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not _utf8(name):
                # a name in another encoding (a share mounted without iocharset=utf8) cannot be
                # stored in the index, the catalog or a partition key: report it, do not crash
                out.bad_names.append(_printable(rel))
                continue
            try:
                if e.is_symlink():
                    target = os.path.realpath(e.path)
                    if not (target == real_root or target.startswith(real_root + os.sep)):
                        out.skipped_links += 1
                        continue
                    s = os.stat(e.path)
                else:
                    s = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # vanished since the folder was listed
            except OSError:
                out.unreadable.append(rel)  # e.g. a path longer than PATH_MAX: reported, not dropped silently
                continue
            if st.S_ISDIR(s.st_mode):
                stack.append((e.path, rel, s))
            elif st.S_ISREG(s.st_mode):
                out.files[rel] = (s.st_size, s.st_mtime_ns)
    return out


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def match_any(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) for p in patterns)


def iter_input_files(paths: list[Path]) -> tuple[list[Path], dict[str, str]]:
    """Files given on the command line: files as they are, folders walked (same skip rules).

    Returns the files and, for each path that cannot be taken, why (printable name -> reason):
    names that are not UTF-8 and entries that cannot be read, as the sensor reports them.
    """
    out: list[Path] = []
    skipped: dict[str, str] = {}
    bad_name = "the file name is not valid UTF-8 (a share mounted without iocharset=utf8?): rename it"
    for p in paths:
        p = Path(p)
        if p.is_dir():
            listing = scan(p)
            out.extend(p / rel for rel in sorted(listing.files))
            for rel in listing.bad_names:
                skipped[f"{_printable(str(p))}/{rel}"] = bad_name
            for rel in listing.unreadable:
                skipped[f"{_printable(str(p))}/{_printable(rel)}"] = "cannot be read (permissions, or a path too long)"
        elif p.is_file():
            if _utf8(str(p)):
                out.append(p)
            else:
                skipped[_printable(str(p))] = bad_name
    return out, skipped


def _printable(name: str) -> str:
    return os.fsencode(name).decode("utf-8", "backslashreplace")
