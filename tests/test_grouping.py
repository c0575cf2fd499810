"""Acquisition grouping of IONTOF image exports, from path strings alone."""

from __future__ import annotations

import time

from progral_dagster.readers.grouping import acquisition_group, group_members, member_parts


def test_members_of_one_measurement_share_a_key():
    names = [
        f"2024-05/NMC cs (1) ({i}) - {ion}.txt" for i, ion in enumerate(["total", "Li-", "NiO-"], 1)
    ]
    keys = {acquisition_group(n) for n in names}
    assert keys == {"2024-05/NMC cs (1)"}


def test_same_name_in_other_folder_or_other_measurement_is_another_group():
    a = acquisition_group("a/M1 (1) - total.txt")
    b = acquisition_group("b/M1 (1) - total.txt")
    c = acquisition_group("a/M2 (1) - total.txt")
    assert len({a, b, c}) == 3


def test_single_files_have_no_group():
    for p in [
        "sims/I241213h_M_PCBM-ref_2D_neg-B1 - NF.txt",  # depth profile: no "(n)"
        "sims/P_Ru_Bi1_1.txt",
        "xps/regular.vms",
        "a/M1 (1) - total.csv",
        "a/M1 (x) - total.txt",
        "a/ (1) - total.txt/other.txt",
    ]:
        assert acquisition_group(p) is None, p


def test_root_and_windows_separators():
    assert acquisition_group("M1 (2) - Li-.txt") == "M1"
    assert acquisition_group("d1\\d2\\M1 (2) - Li-.TXT") == "d1/d2/M1"
    assert member_parts("d/M1 (12) - C_2H-.txt") == ("M1", 12, "C_2H-")


def test_group_members_sorted_by_image_number_and_singletons_left_out():
    paths = ["f/M (10) - b.txt", "f/M (2) - a.txt", "f/single.txt", "g/N (1) - total.txt"]
    assert group_members(paths) == {
        "f/M": ["f/M (2) - a.txt", "f/M (10) - b.txt"],
        "g/N": ["g/N (1) - total.txt"],
    }


def test_fast_enough_for_the_sensor_tick():
    # 100,000 paths: half image-export members, half ordinary files. The sensor's budget for a
    # whole tick is 2 s; grouping must take a small fraction of it.
    paths = [f"proj{i % 50}/meas{i // 10} ({i % 10}) - ion{i % 7}.txt" for i in range(50_000)]
    paths += [f"proj{i % 50}/spectrum_{i}.txt" for i in range(50_000)]
    t = time.perf_counter()
    keys = [acquisition_group(p) for p in paths]
    dt = time.perf_counter() - t
    assert sum(k is not None for k in keys) == 50_000
    assert dt < 0.5, f"{dt:.3f} s for 100k paths"
