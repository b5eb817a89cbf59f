"""Dated evidence and "as of": which facts a run may use (conditioning: model/conditioning.py).

A run as of date D uses only facts dated on or before D. Talks known to be open since D0 with no
agreement by D fix the start of talks at D0 and keep only trials that have not settled within
the months between D0 and D (rejection; the effective trial count is reported).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.spec.scenario import MAX_TEXT_CHARS, ScenarioError, read_yaml

FactKind = Literal["talks_opened", "round_held", "tentative_deal", "agreement", "statement"]
_DAYS_PER_MONTH = 365.25 / 12
#: Largest first-year increase a fact may record [%]: ten times the contribution, beyond
#: the largest US ask on record (about +400% in 2019); more is a typo (e.g. 9000 for 9.0).
MAX_INCREASE_PCT = 1_000.0


class Fact(BaseModel):
    """One dated piece of evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    date: date
    kind: FactKind
    text: str = Field(max_length=MAX_TEXT_CHARS)
    source: str = ""
    increase_pct: float | None = Field(default=None, ge=-100, le=MAX_INCREASE_PCT)
    """For a tentative deal or agreement: the first-year increase [%], where known."""


class Evidence(BaseModel):
    """The evidence file."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    facts: list[Fact] = []

    @model_validator(mode="after")
    def _consistent(self) -> Evidence:
        # The model ends talks at an agreement: talks opening (or a round) after it, or a
        # tentative deal after it, cannot both be true of one negotiation.
        agreements = [(i, f) for i, f in enumerate(self.facts) if f.kind == "agreement"]
        for i, fact in enumerate(self.facts):
            if fact.kind not in ("talks_opened", "round_held", "tentative_deal"):
                continue
            for j, agreement in agreements:
                if fact.date > agreement.date:
                    raise ValueError(
                        f"facts.{i} ({fact.kind} on {fact.date}) contradicts facts.{j} "
                        f"(agreement on {agreement.date}): an agreement ends the talks; "
                        "remove one of them or date the agreement after the talks"
                    )
        return self


@dataclass(frozen=True)
class EvidenceState:
    """What the evidence says as of a date."""

    as_of: date
    facts: tuple[Fact, ...]
    talks_open_on: date | None
    """Talks are known to have opened on this date (None: not known to be open)."""
    agreement_on: date | None
    """An agreement is known to have been reached on this date."""

    def facts_hash(self) -> str:
        """sha256 of the facts known as of the date (not of the date itself): runs on two days
        with the same hash used the same evidence, so what moved between them is the calendar."""
        payload = json.dumps(
            [f.model_dump(mode="json") for f in self.facts], sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def months_open_without_agreement(self) -> float:
        """Months between the opening of talks and the as-of date with no agreement [months]."""
        if self.talks_open_on is None or self.agreement_on is not None:
            return 0.0
        return (self.as_of - self.talks_open_on).days / _DAYS_PER_MONTH


def load_evidence(path: str | Path) -> Evidence:
    """Read and validate an evidence file (errors name the file and the field)."""
    shown = str(path)
    data = read_yaml(Path(path), shown)
    try:
        return Evidence.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "facts"
        raise ScenarioError(shown, field, err["msg"].removeprefix("Value error, ")) from None


def evidence_as_of(evidence: Evidence, as_of: date) -> EvidenceState:
    """The facts dated on or before ``as_of`` and what they imply."""
    facts = tuple(sorted((f for f in evidence.facts if f.date <= as_of), key=lambda f: f.date))
    opened = [f.date for f in facts if f.kind in ("talks_opened", "round_held")]
    agreed = [f.date for f in facts if f.kind == "agreement"]
    return EvidenceState(
        as_of=as_of,
        facts=facts,
        talks_open_on=min(opened) if opened else None,
        agreement_on=max(agreed) if agreed else None,
    )
