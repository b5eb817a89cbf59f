"""Conditioning trials on dated evidence: keep the trials consistent with what is known.

Talks known to be open since D0 with no agreement by the as-of date D keep only trials that
have not settled within the months between D0 and D (rejection; the effective trial count is
reported).
"""

from __future__ import annotations

import numpy as np

from pipeline.common import BoolArray
from pipeline.model.outcomes import Outcomes
from pipeline.spec.evidence import EvidenceState


def condition_mask(outcomes: Outcomes, state: EvidenceState) -> BoolArray | None:
    """Trials consistent with the evidence (None when the evidence rules nothing out)."""
    months = state.months_open_without_agreement
    if months <= 0:
        return None
    # Unsettled trials carry months censored at the horizon, which also exceed ``months``.
    return np.asarray(outcomes.months_to_settlement > months)
