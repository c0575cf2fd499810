"""The cycling-schema conventions, checked against series whose truth is built in the test."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from progral_dagster.readers.base import ReaderError
from progral_dagster.readers.cycling_common import (
    STEP_TYPES,
    accumulate_per_cycle,
    counter_increments,
    counter_per_cycle,
    cycles_from_one,
    cycling_table,
    impedance_table,
    segments,
    split_increments,
    step_codes,
    step_type_names,
    step_types_from_current,
    unit_factor,
)
from progral_dagster.warehouse.schemas import reader_schema


def _truth(increments: np.ndarray, cycle: np.ndarray) -> np.ndarray:
    """Per-cycle running sum computed the slow, obvious way."""
    out = np.empty_like(increments)
    total = 0.0
    for i in range(increments.size):
        if i == 0 or cycle[i] != cycle[i - 1]:
            total = 0.0
        total += increments[i]
        out[i] = total
    return out


def test_cycles_from_one_conventions():
    assert cycles_from_one(np.array([0, 0, 1, 1, 2])).tolist() == [1, 1, 2, 2, 3]  # BioLogic/Maccor
    assert cycles_from_one(np.array([1, 1, 2])).tolist() == [1, 1, 2]  # Neware/Arbin
    assert cycles_from_one(np.array([5, 6])).tolist() == [5, 6]  # a continued test keeps numbers
    assert cycles_from_one(np.array([0.0, 1.0])).dtype == np.int32
    with pytest.raises(ValueError, match=r"data row 2 \(2 such rows\)"):
        cycles_from_one(np.array([0.0, np.nan, 1.0, np.inf]))


def test_segments_count_changes():
    step = np.array([1, 1, 2, 2, 1, 1])
    cyc = np.array([1, 1, 1, 2, 2, 2])
    assert segments(step).tolist() == [1, 1, 2, 2, 3, 3]
    assert segments(step, cyc).tolist() == [1, 1, 2, 3, 4, 4]


# Three cycler conventions for the same charge passed: a counter over the whole test, one
# restarted every cycle, one restarted every step. All must give the same per-cycle capacity.
@pytest.fixture
def protocol():
    rng = np.random.default_rng(7)
    step = np.repeat([1, 2, 3, 1, 2, 3, 1, 2, 3], [5, 8, 3, 6, 7, 4, 5, 9, 2])
    cycle = np.repeat([1, 2, 3], [16, 17, 16])
    inc = rng.uniform(0.0, 0.01, step.size)
    inc[step == 3] = 0.0  # a rest step adds nothing
    return step, cycle, inc


def test_counter_over_test_is_rebased_per_cycle(protocol):
    step, cycle, inc = protocol
    raw = np.cumsum(inc)
    np.testing.assert_allclose(
        counter_per_cycle(raw, cycle), _truth(inc, cycle), rtol=1e-12, atol=1e-15
    )


def test_counter_reset_each_cycle_is_kept(protocol):
    step, cycle, inc = protocol
    raw = _truth(inc, cycle)
    np.testing.assert_allclose(counter_per_cycle(raw, cycle), raw, rtol=1e-12, atol=1e-15)


def test_counter_reset_each_step_is_summed_over_the_cycle(protocol):
    step, cycle, inc = protocol
    seg = segments(step, cycle)
    raw = _truth(inc, seg)  # Neware: restarts at each step
    got = counter_per_cycle(raw, cycle, resets=seg)
    np.testing.assert_allclose(got, _truth(inc, cycle), rtol=1e-12, atol=1e-15)
    # and without being told, the drops are found as restarts too (rest steps add zero)
    np.testing.assert_allclose(
        counter_per_cycle(raw, cycle), _truth(inc, cycle), rtol=1e-12, atol=1e-15
    )


def test_capacity_is_zero_before_each_cycle_and_grows_within(protocol):
    step, cycle, inc = protocol
    got = counter_per_cycle(np.cumsum(inc), cycle)
    starts = np.flatnonzero(np.r_[True, cycle[1:] != cycle[:-1]])
    # at a cycle's first row only that row's own increment has been counted
    np.testing.assert_allclose(got[starts], inc[starts], atol=1e-15)
    for s, e in zip(starts, np.r_[starts[1:], cycle.size], strict=True):
        assert np.all(np.diff(got[s:e]) >= -1e-15)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 4), st.floats(0, 5)), min_size=1, max_size=60),
)
def test_counter_forms_agree_property(rows):
    cycle = np.cumsum([c for c, _ in rows]) // 7 + 1  # non-decreasing cycle numbers
    inc = np.array([x for _, x in rows])
    truth = _truth(inc, cycle)
    np.testing.assert_allclose(
        counter_per_cycle(np.cumsum(inc), cycle), truth, rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(accumulate_per_cycle(inc, cycle), truth, rtol=1e-9, atol=1e-9)
    # a counter restarted per cycle stays non-negative (up to the restart-detection tolerance)
    assert np.all(counter_per_cycle(truth, cycle) >= -1e-8 * max(1.0, truth.max()))


def test_counter_increments_restart_on_drop():
    raw = np.array([0.0, 1.0, 2.0, 0.5, 1.5, 1.5, 0.2])
    assert counter_increments(raw).tolist() == [0.0, 1.0, 1.0, 0.5, 1.0, 0.0, 0.2]


def test_split_increments_books_by_sign_and_uses_end_potential():
    dq = np.array([0.0, 0.1, 0.1, -0.05, -0.05, 0.2])
    v = np.array([3.0, 3.5, 3.7, 3.6, 3.4, 3.8])
    cyc = np.array([1, 1, 1, 1, 1, 2])
    qc, qd, ec, ed = split_increments(dq, v, cyc)
    np.testing.assert_allclose(qc, [0, 0.1, 0.2, 0.2, 0.2, 0.2])
    np.testing.assert_allclose(qd, [0, 0, 0, 0.05, 0.1, 0.0])
    np.testing.assert_allclose(ec, [0, 0.35, 0.72, 0.72, 0.72, 0.76])
    np.testing.assert_allclose(ed, [0, 0, 0, 0.18, 0.35, 0.0])


def test_step_types_from_current_per_segment():
    current = np.array([0.0, 0.0, 1.0, 1.1, 0.9, -1.0, -1.0, 1e-9, 0.0])
    seg = np.array([1, 1, 2, 2, 2, 3, 3, 4, 4])
    got = step_type_names(step_types_from_current(current, seg))
    assert got.tolist() == [
        "rest",
        "rest",
        "charge",
        "charge",
        "charge",
        "discharge",
        "discharge",
        "rest",
        "rest",
    ]


def test_step_codes_round_trip():
    names = np.array(["other", "rest", "cv", "charge", "rest"], dtype=object)
    codes = step_codes(names)
    assert codes.dtype == np.int8 and step_type_names(codes).tolist() == names.tolist()
    with pytest.raises(ValueError):
        step_codes(["rest", "sleep"])


def test_unit_factors():
    assert unit_factor("mA") == 1e-3 and unit_factor("mA.h") == 1e-3 and unit_factor("mWh") == 1e-3
    assert unit_factor("C") == pytest.approx(1 / 3600)
    with pytest.raises(ValueError):
        unit_factor("furlong")


def _table(**over):
    n = 3
    kw = dict(
        time_s=np.arange(n, dtype=float),
        voltage_v=np.full(n, 3.7),
        current_a=np.zeros(n),
        cycle=np.ones(n, dtype=np.int32),
        step=np.ones(n),
        step_type=np.array(["rest"] * n, dtype=object),
        charge_capacity_ah=np.zeros(n),
        discharge_capacity_ah=np.zeros(n),
        charge_energy_wh=np.zeros(n),
        discharge_energy_wh=np.zeros(n),
    )
    kw.update(over)
    return cycling_table(**kw)


def test_cycling_table_follows_the_lake_schema():
    t = _table(temperature_c=np.array([25.0, np.nan, 26.0]))
    assert t.schema == reader_schema("cycling")
    assert t.column("record").to_pylist() == [1, 2, 3]
    assert t.column("temperature_c").to_pylist() == [25.0, None, 26.0]
    assert _table().column("temperature_c").null_count == 3
    assert set(STEP_TYPES) == {"rest", "charge", "discharge", "cv", "ocv", "impedance", "other"}


def test_cycling_table_rejects_what_the_schema_forbids():
    with pytest.raises(ReaderError, match="cycle"):
        _table(cycle=np.array([0, 1, 1]))
    with pytest.raises(ReaderError, match="step types"):
        _table(step_type=np.array(["rest", "float", "rest"], dtype=object))
    with pytest.raises(ReaderError, match="voltage"):
        _table(voltage_v=np.array([3.7, np.nan, 3.7]))


def test_impedance_table_schema():
    t = impedance_table(
        frequency_hz=np.array([1e3, 1.0]), z_real_ohm=np.ones(2), z_imag_ohm=-np.ones(2)
    )
    assert t.schema == reader_schema("impedance")
    assert t.column("cycle").null_count == 2 and t.column("time_s").null_count == 2
    assert isinstance(t, pa.Table)


def test_durations_fast_path_and_loose_forms():
    """Maccor/PEC test times: the fast byte decoder, and the looser forms MIMS Client writes
    (one-digit fields, long fractions, decimal comma) through the fallback; bad rows named."""
    import pyarrow as pa

    from progral_dagster.readers._cycler_text import durations_seconds

    fast = durations_seconds(pa.array(["0d 00:00:10.0000", "123:45:06.789", "1d 01:00:00.5"]))
    np.testing.assert_allclose(fast, [10.0, 123 * 3600 + 45 * 60 + 6.789, 86400 + 3600.5])
    loose = durations_seconds(pa.array(["0d 00:00:5.05000019073486", "1:2:3,5", "0d 0:0:0"]))
    np.testing.assert_allclose(loose, [5.05000019073486, 3723.5, 0.0])
    rows = ["0d 00:00:01.0"] * 40_000 + ["not a time"]  # the second chunk holds the bad row
    with pytest.raises(ValueError, match="row 40001 is not"):
        durations_seconds(pa.array(rows))
