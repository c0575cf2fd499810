"""Parquet schemas of the lake's tables: the columns, types and units users and scripts rely on.

Measurement data tables (written by readers, one Parquet file per measurement and table) carry a
``measurement_id`` column added by the warehouse; readers produce every other column. Units are
in the column names: m/z in u, energies in eV, time in s, current in A, voltage in V, capacity in
Ah, energy in Wh, temperature in degC, resistance in ohm.

Every table here gets a DuckDB view of the same name over its Parquet files (see ``views.py``);
a table with no file yet still has a typed, empty view.
"""

from __future__ import annotations

import pyarrow as pa

MID = pa.field("measurement_id", pa.string(), nullable=False)

# --------------------------------------------------------------------------------------------
# Measurement data tables (long form, one row per data point)
# --------------------------------------------------------------------------------------------
DATA_TABLES: dict[str, pa.Schema] = {
    # IONTOF spectrum export: one row per channel (bin). channel = bin centre (may be fractional),
    # mz in u, intensity in counts (dead-time corrected when metadata deadtime_correction is on).
    "tof_sims_spectra": pa.schema(
        [MID, ("channel", pa.float64()), ("mz", pa.float64()), ("intensity", pa.float64())]
    ),
    # IONTOF depth profile: one row per (column, data point). kind: species | total | ratio |
    # group. species: formula without isotope marks or charge (e.g. "SnI3"); isotope: the
    # marked isotopes as written (e.g. "118Sn"); charge: +1 / -1 (null for total/ratio);
    # mass in u (null where the export says N/A).
    "tof_sims_depth_profiles": pa.schema(
        [
            MID,
            ("column_index", pa.int32()),
            ("name", pa.string()),
            ("species", pa.string()),
            ("isotope", pa.string()),
            ("charge", pa.int8()),
            ("kind", pa.string()),
            ("mass", pa.float64()),
            ("point", pa.int64()),
            ("sputter_time_s", pa.float64()),
            ("dose", pa.float64()),
            ("fluence_ions_cm2", pa.float64()),
            ("intensity", pa.float64()),
        ]
    ),
    # IONTOF peak ("mass interval") list: the 19 export columns in snake case.
    "tof_sims_peak_lists": pa.schema(
        [
            MID,
            ("no", pa.int32()),
            ("center_mass_u", pa.float64()),
            ("lower_mass_u", pa.float64()),
            ("upper_mass_u", pa.float64()),
            ("assignment", pa.string()),
            ("description", pa.string()),
            ("mass_deviation_ppm", pa.float64()),
            ("explained_pct", pa.float64()),
            ("resolution", pa.float64()),
            ("area", pa.float64()),
            ("uncorrected_area", pa.float64()),
            ("norm_by_reference_peak", pa.float64()),
            ("norm_by_total_ion_intensity", pa.float64()),
            ("norm_by_total_shots", pa.float64()),
            ("norm_by_corrected_total_ion_intensity", pa.float64()),
            ("norm_by_primary_ion_dose", pa.float64()),
            ("rsf", pa.float64()),
            ("coverage_per_cm2", pa.float64()),
            ("color", pa.int64()),
        ]
    ),
    # IONTOF image exports (one file per ion, grouped): x column, y row, z layer (3D only),
    # intensity in counts. ion "total" is the total-ion image.
    "tof_sims_images": pa.schema(
        [
            MID,
            ("ion", pa.string()),
            ("x", pa.int32()),
            ("y", pa.int32()),
            ("z", pa.int32()),
            ("intensity", pa.float64()),
        ]
    ),
    # XPS / AES spectra (VAMAS, PHI .spe/.pro): one row per point. block: block index in file
    # order; region: region / block name; cycle and sputter_time_s for depth profiles;
    # binding or kinetic energy in eV (whichever the file gives, the other derived where the
    # excitation energy is known); intensity in counts (or counts/s as the file states).
    "xps_spectra": pa.schema(
        [
            MID,
            ("block", pa.int32()),
            ("region", pa.string()),
            ("cycle", pa.int32()),
            ("sputter_time_s", pa.float64()),
            ("point", pa.int32()),
            ("binding_energy_ev", pa.float64()),
            ("kinetic_energy_ev", pa.float64()),
            ("intensity", pa.float64()),
        ]
    ),
    # CasaXPS regions and components carried in VAMAS block comments. kind: region|component.
    "xps_casa_components": pa.schema(
        [
            MID,
            ("block", pa.int32()),
            ("region", pa.string()),
            ("kind", pa.string()),
            ("name", pa.string()),
            ("lineshape", pa.string()),
            ("background", pa.string()),
            ("start_ev", pa.float64()),
            ("end_ev", pa.float64()),
            ("position_ev", pa.float64()),
            ("fwhm_ev", pa.float64()),
            ("area", pa.float64()),
            ("rsf", pa.float64()),
            ("parameters", pa.string()),
        ]
    ),
    # Battery cycling, one schema for every cycler. cycle numbered from 1; positive current
    # charges the cell; capacities (Ah) and energies (Wh) count from zero at each cycle start;
    # step_type one of rest, charge, discharge, cv, ocv, impedance, other.
    "cycling": pa.schema(
        [
            MID,
            ("record", pa.int64()),
            ("cycle", pa.int32()),
            ("step", pa.int32()),
            ("step_type", pa.string()),
            ("time_s", pa.float64()),
            ("voltage_v", pa.float64()),
            ("current_a", pa.float64()),
            ("charge_capacity_ah", pa.float64()),
            ("discharge_capacity_ah", pa.float64()),
            ("charge_energy_wh", pa.float64()),
            ("discharge_energy_wh", pa.float64()),
            ("temperature_c", pa.float64()),
        ]
    ),
    # Impedance (EIS) points: Z = z_real_ohm + j z_imag_ohm (z_imag_ohm as measured, i.e.
    # negative for capacitive behaviour).
    "impedance": pa.schema(
        [
            MID,
            ("record", pa.int64()),
            ("frequency_hz", pa.float64()),
            ("z_real_ohm", pa.float64()),
            ("z_imag_ohm", pa.float64()),
            ("cycle", pa.int32()),
            ("time_s", pa.float64()),
        ]
    ),
    # Label images / volumes: one row per measurement. The array itself is stored in the lake
    # (arrays/<measurement_id>/labels.npy, see layout.py). shape is (z, y, x) or (y, x).
    "microstructures": pa.schema(
        [
            MID,
            ("ndim", pa.int8()),
            ("shape", pa.list_(pa.int64())),
            ("voxel_size_um", pa.float64()),
            ("labels", pa.list_(pa.int64())),
            ("fractions", pa.list_(pa.float64())),
        ]
    ),
}

# --------------------------------------------------------------------------------------------
# Catalog tables (append-only; written by the warehouse, never by readers)
# --------------------------------------------------------------------------------------------
CATALOG_TABLES: dict[str, pa.Schema] = {
    # One row per measurement (unique content). sha256 of the file, or of the sorted member
    # hashes for a group. metadata is JSON.
    "catalog_measurements": pa.schema(
        [
            MID,
            ("sha256", pa.string()),
            ("technique", pa.string()),
            ("format", pa.string()),
            ("reader", pa.string()),
            ("reader_version", pa.string()),
            ("instrument", pa.string()),
            ("n_files", pa.int32()),
            ("size_bytes", pa.int64()),
            ("metadata", pa.string()),
            ("tables", pa.list_(pa.string())),
            ("row_counts", pa.string()),
            ("twin_key", pa.string()),
            ("batch", pa.string()),
            ("ingested_at", pa.timestamp("us", tz="UTC")),
            ("partition_key", pa.string()),
            ("run_id", pa.string()),
        ]
    ),
    # Every path a measurement (or a member of a group) was seen under. source_path is relative
    # to the share root, absolute for files ingested from elsewhere. version_key identifies the
    # (path, size, mtime) observation.
    "catalog_files": pa.schema(
        [
            MID,
            ("source_path", pa.string()),
            ("member_sha256", pa.string()),
            ("sha256", pa.string()),
            ("size_bytes", pa.int64()),
            ("mtime", pa.timestamp("us", tz="UTC")),
            ("seen_at", pa.timestamp("us", tz="UTC")),
            ("raw_path", pa.string()),
            ("partition_key", pa.string()),
        ]
    ),
    # Files that could not be parsed. A rejected file is still copied into the raw store.
    "catalog_rejected": pa.schema(
        [
            ("source_path", pa.string()),
            ("sha256", pa.string()),
            ("size_bytes", pa.int64()),
            ("mtime", pa.timestamp("us", tz="UTC")),
            ("reason", pa.string()),
            ("error_type", pa.string()),
            ("rejected_at", pa.timestamp("us", tz="UTC")),
            ("partition_key", pa.string()),
        ]
    ),
    # Data rows moved out of the active files by compaction (superseded versions, older or
    # duplicate parses): they live under ``superseded/<table>/`` from then on.
    "catalog_moved": pa.schema(
        [
            MID,
            ("batch", pa.string()),
            ("table_name", pa.string()),
            ("moved_at", pa.timestamp("us", tz="UTC")),
        ]
    ),
    # Rows of sample sheets and sidecars, one per sheet version and row. ``pattern`` is the
    # sheet's ``file`` entry resolved against the sheet's folder (relative to the share).
    "catalog_sheet_rows": pa.schema(
        [
            ("sheet_path", pa.string()),
            ("sheet_sha256", pa.string()),
            ("sheet_mtime", pa.timestamp("us", tz="UTC")),
            ("row", pa.int32()),
            ("pattern", pa.string()),
            ("file", pa.string()),
            ("sample_id", pa.string()),
            ("project", pa.string()),
            ("material", pa.string()),
            ("label", pa.string()),
            ("composition", pa.string()),
            ("polarity", pa.string()),
            ("spot", pa.string()),
            ("field_of_view_um", pa.float64()),
            ("labels_for", pa.string()),
            ("storage_atmosphere", pa.string()),
            ("dew_point_c", pa.float64()),
            ("storage_time_h", pa.float64()),
            ("cell_id", pa.string()),
            ("extra", pa.string()),
            ("problems", pa.string()),
            ("ingested_at", pa.timestamp("us", tz="UTC")),
            ("partition_key", pa.string()),
        ]
    ),
}


def schema_of(table: str) -> pa.Schema:
    """The Parquet schema of a lake table (data or catalog)."""
    if table in DATA_TABLES:
        return DATA_TABLES[table]
    if table in CATALOG_TABLES:
        return CATALOG_TABLES[table]
    raise KeyError(f"unknown lake table {table!r}")


def reader_schema(table: str) -> pa.Schema:
    """Columns a reader produces for a data table (everything but measurement_id)."""
    s = DATA_TABLES[table]
    return pa.schema([f for f in s if f.name != "measurement_id"])


def conform(table: str, data: pa.Table) -> pa.Table:
    """Cast a reader's table to the lake schema: missing nullable columns become nulls, column
    order is the schema's, and a column of the wrong type is cast (failing loudly if it cannot).
    Extra columns are an error: the schema is the interface.
    """
    target = reader_schema(table)
    extra = set(data.column_names) - set(target.names)
    if extra:
        raise ValueError(f"table {table}: columns not in the schema: {sorted(extra)}")
    cols = []
    for f in target:
        if f.name in data.column_names:
            col = data.column(f.name)
            if col.type != f.type:
                col = col.cast(f.type)
            cols.append(col)
        else:
            cols.append(pa.nulls(data.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=target)
