"""Champion promotion: the candidate replaces the champion only when it is better on the same
evaluation data. The model-specific part is the ``evaluate`` callable: given a model version it
returns the score of that model on the candidate's evaluation data (the same folds)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from . import registry


@dataclass
class Decision:
    promoted: bool
    reason: str
    candidate_version: str
    candidate_score: float
    champion_version: str | None
    champion_score: float | None
    metric: str

    def as_metadata(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def decide(candidate: float, champion: float | None, *, higher_is_better: bool, min_improvement: float = 0.0) -> bool:
    """Whether a candidate score beats the champion's (no champion: yes; NaN: no)."""
    if candidate is None or math.isnan(candidate):
        return False
    if champion is None or math.isnan(champion):
        return True
    return candidate > champion + min_improvement if higher_is_better else candidate < champion - min_improvement


def promote(name: str, candidate_version: str, candidate_score: float, *, metric: str, higher_is_better: bool,
            evaluate_champion: Callable[[str], float] | None, min_improvement: float = 0.0) -> Decision:
    """Re-evaluate the current champion with ``evaluate_champion(model_uri)`` and move the alias
    to the candidate if it is better."""
    current = registry.champion(name)
    if current is None:
        # the first model that passed its checks becomes champion, even if it could not be scored
        registry.set_champion(name, candidate_version)
        return Decision(True, "no champion yet", str(candidate_version), candidate_score, None, None, metric)
    if str(current.version) == str(candidate_version):
        return Decision(False, "candidate already champion", str(candidate_version), candidate_score,
                        str(current.version), candidate_score, metric)
    champ_score = None
    if current is not None and evaluate_champion is not None:
        try:
            champ_score = float(evaluate_champion(f"models:/{name}/{current.version}"))
        except Exception as exc:  # noqa: BLE001 - an unloadable champion must not block a good candidate
            champ_score = float("nan")
            reason_extra = f" (champion could not be re-evaluated: {type(exc).__name__}: {exc})"
        else:
            reason_extra = ""
    else:
        reason_extra = ""
    if decide(candidate_score, champ_score, higher_is_better=higher_is_better, min_improvement=min_improvement):
        registry.set_champion(name, candidate_version)
        why = "no champion yet" if current is None else (
            f"better {metric}: {candidate_score:.4g} vs {champ_score:.4g}" if champ_score is not None
            and not math.isnan(champ_score) else "champion unusable")
        return Decision(True, why + reason_extra, str(candidate_version), candidate_score,
                        str(current.version) if current else None, champ_score, metric)
    return Decision(False, f"not better {metric}: {candidate_score:.4g} vs champion {champ_score:.4g}" + reason_extra,
                    str(candidate_version), candidate_score, str(current.version) if current else None,
                    champ_score, metric)
