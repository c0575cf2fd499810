"""Thin Dagster wrappers around the pure code, one module per stage."""

import warnings

import dagster as _dg

# BackfillPolicy (ranged single runs) is marked beta in this Dagster release.
warnings.filterwarnings("ignore", category=_dg.BetaWarning)
