"""Automation conditions of the service (declarative automation, evaluated by the
``progral_automation`` sensor).

- Features and predictions: ``eager()``: they follow every update of their inputs.
- Models: :func:`train_condition`: trained as soon as their inputs are updated while the model
  does not exist yet, then on a nightly cron when their inputs changed since the last run.
  (Dagster's ``on_missing()`` does not fire for an asset that was already missing at the
  automation sensor's first evaluation, which is exactly the state of a fresh installation.)
"""

import dagster as dg


def train_condition(cron: str) -> dg.AutomationCondition:
    AC = dg.AutomationCondition
    first = (AC.missing() & AC.any_deps_updated() & ~AC.in_progress() & ~AC.any_deps_in_progress()).with_label(
        "missing and inputs updated")
    return first | AC.on_cron(cron)
