"""Out-of-sample priors for every input of a backtest case.

Every input a case uses comes from exactly one of four places, each of which can only use what
was known on or before the case's as-of date:

* the **case file** (``configs/backtest/smaNN.yaml``): judgement written for that date;
* the **tuning grid** (``cases.yaml``, ``tuning``): forward chaining on earlier cases
  (:mod:`pipeline.backtest.tuning`);
* the **prior builder** (:func:`build_priors`): distributions fitted to the negotiations in
  ``data/sma_negotiations.csv`` whose agreement was public by the as-of date (asks, opening
  offers, terms);
* **dated provenance** (``cases.yaml``, ``priors.provenance``): base.yaml's judgement prior,
  used only by cases on or after the date of the latest evidence behind it; an earlier case uses
  the input's ``before`` prior (written without the SMA record) or the backtest refuses to run.

``configs/base.yaml`` holds the builder's priors fitted on all history (:func:`built_defaults`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Final

import numpy as np

from pipeline.backtest.realized import parse_date
from pipeline.spec.distributions import DiscreteSpec, InputSpec, LogNormalSpec, TriangularSpec
from pipeline.spec.history import History
from pipeline.spec.scenario import ScenarioError

if TYPE_CHECKING:
    from pipeline.backtest.cases import Case, PriorSources

BUILT_INPUTS: Final[tuple[str, ...]] = (
    "us_working_ask_increase_pct",
    "korea_opening_offer_increase_pct",
    "term_years_normal",
    "term_years_under_pressure",
)
"""Inputs the prior builder fits from data/ (the others: case files, tuning, provenance)."""

#: An ask above this [% over the level in force] is a headline figure (the model's headline
#: channel, set per case), not a working-level ask: the 11th SMA's USD 5bn (~+470%).
WORKING_ASK_MAX_PCT: Final[float] = 100.0
#: Truncation of the working-level ask (the input's catalogue bound) [%].
WORKING_ASK_CAP_PCT: Final[float] = 1000.0
#: Smallest log-spread of the working-level ask (a single ask says little about the next).
MIN_LOG_SD: Final[float] = 0.5
#: Smallest half-width of Korea's opening offer around the offers on record [pp].
MIN_OFFER_PAD_PP: Final[float] = 2.0
#: Term support [years] and the pseudo-count each term gets before any agreement is counted.
TERM_VALUES: Final[tuple[int, ...]] = (1, 2, 3, 4, 5, 6)
TERM_PSEUDO_COUNT: Final[float] = 0.5
_Z95: Final[float] = 1.6448536269514722
_PCT_RE = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*%")


@dataclass(frozen=True)
class NegotiationRecord:
    """What the builder reads from one row of data/sma_negotiations.csv."""

    sma_number: int
    known_from: date | None
    """When the agreement was public (agreement, else signing, else entry into force)."""
    us_ask_pct: float | None
    """US opening ask over the level in force [%] (working level or headline)."""
    korea_offer_pct: float | None
    """Korea's opening offer over the level in force [%]."""
    term_years: int | None
    trump_at_agreement: bool


def _leading_number(text: str) -> float | None:
    m = re.match(r"^\s*~?\s*(-?\d+(?:\.\d+)?)", text or "")
    return float(m.group(1)) if m else None


def negotiation_records(history: History) -> dict[int, NegotiationRecord]:
    """Every SMA's asks, offer and term by number, with the date they were all public."""
    out: dict[int, NegotiationRecord] = {}
    for row in history.negotiations:
        number = int(row["sma_number"])
        known = (
            parse_date(row["agreement_date"], latest=True)
            or parse_date(row["signing_date"], latest=True)
            or parse_date(row["entry_into_force"], latest=True)
        )
        offer = _PCT_RE.search(row["korea_initial_offer"] or "")
        term = _leading_number(row["duration_years"])
        out[number] = NegotiationRecord(
            sma_number=number,
            known_from=known,
            us_ask_pct=_leading_number(row["us_initial_ask_pct_over_prior_year"]),
            korea_offer_pct=float(offer.group(1)) if offer else None,
            term_years=int(term) if term is not None else None,
            trump_at_agreement="trump" in (row["us_president_at_agreement"] or "").lower(),
        )
    return out


def records_known_by(
    records: Mapping[int, NegotiationRecord], day: date, before_sma: int
) -> list[NegotiationRecord]:
    """Records of SMAs numbered below ``before_sma`` whose agreement was public by ``day``."""
    return [
        r
        for n, r in sorted(records.items())
        if n < before_sma and r.known_from is not None and r.known_from <= day
    ]


def _working_ask(asks: Sequence[float]) -> LogNormalSpec | None:
    """Lognormal through the asks on record: geometric mean, log-sd at least MIN_LOG_SD."""
    if not asks:
        return None
    logs = np.log(np.asarray(asks, dtype=np.float64))
    mu = float(logs.mean())
    sd = max(MIN_LOG_SD, float(logs.std(ddof=1)) if len(logs) > 1 else 0.0)
    return LogNormalSpec(
        dist="lognormal",
        p05=round(math.exp(mu - _Z95 * sd), 2),
        p95=round(math.exp(mu + _Z95 * sd), 2),
        high=WORKING_ASK_CAP_PCT,
    )


def _opening_offer(offers: Sequence[float]) -> TriangularSpec | None:
    """Triangular over the offers on record: mode the median, padded by their spread."""
    if not offers:
        return None
    x = np.asarray(offers, dtype=np.float64)
    pad = max(MIN_OFFER_PAD_PP, float(x.std(ddof=1)) if len(x) > 1 else 0.0)
    return TriangularSpec(
        dist="triangular",
        min=round(float(x.min()) - pad, 2),
        mode=round(float(np.median(x)), 2),
        max=round(float(x.max()) + pad, 2),
    )


def _term(counts: Mapping[int, float]) -> DiscreteSpec:
    """Discrete over TERM_VALUES: pseudo-count plus the agreements counted."""
    weights = np.array([TERM_PSEUDO_COUNT + counts.get(v, 0.0) for v in TERM_VALUES])
    probs = np.round(weights / weights.sum(), 4)
    probs[-1] = round(1.0 - float(probs[:-1].sum()), 4)
    return DiscreteSpec(
        dist="discrete", values=[float(v) for v in TERM_VALUES], probs=probs.tolist()
    )


def build_priors(
    known: Sequence[NegotiationRecord], no_history: Mapping[str, InputSpec]
) -> dict[str, InputSpec]:
    """The built inputs' priors from the negotiations in ``known`` (and nothing else).

    * working-level ask: lognormal through the US asks on record up to WORKING_ASK_MAX_PCT;
    * Korea's opening offer: triangular around its offers on record;
    * term, normal: every known agreement's term not settled under Trump, plus pseudo-counts;
    * term under pressure (Trump in office): agreements settled under Trump count fully, the
      others half (there is little Trump-era history, and none before 2019).

    Where nothing is on record the input takes its ``no_history`` prior (cases.yaml).
    """
    asks = [
        r.us_ask_pct
        for r in known
        if r.us_ask_pct is not None and r.us_ask_pct <= WORKING_ASK_MAX_PCT
    ]
    offers = [r.korea_offer_pct for r in known if r.korea_offer_pct is not None]
    normal: dict[int, float] = {}
    pressure: dict[int, float] = {}
    for r in known:
        if r.term_years is None or r.term_years not in TERM_VALUES:
            continue
        if r.trump_at_agreement:
            pressure[r.term_years] = pressure.get(r.term_years, 0.0) + 1.0
        else:
            normal[r.term_years] = normal.get(r.term_years, 0.0) + 1.0
            pressure[r.term_years] = pressure.get(r.term_years, 0.0) + 0.5
    built: dict[str, InputSpec | None] = {
        "us_working_ask_increase_pct": _working_ask(asks),
        "korea_opening_offer_increase_pct": _opening_offer(offers),
        "term_years_normal": _term(normal),
        "term_years_under_pressure": _term(pressure),
    }
    out: dict[str, InputSpec] = {}
    for name, spec in built.items():
        if spec is None:
            if name not in no_history:
                raise ValueError(f"{name}: nothing on record and no no_history prior")
            spec = no_history[name]
        out[name] = spec
    return out


@dataclass(frozen=True, eq=False)
class CasePriors:
    """The priors a case uses in place of its scenario's, and where every input's comes from."""

    specs: dict[str, InputSpec]
    """Built and ``before`` priors replacing the scenario's (base.yaml's) specs."""
    origin: dict[str, str]
    """input -> "case file" | "tuned" | "built from SMA n, m" | "base.yaml (evidence d)" |
    "before (evidence d)"."""


def case_priors(
    case: Case,
    sources: PriorSources,
    records: Mapping[int, NegotiationRecord],
    tuned: Sequence[str],
) -> CasePriors:
    """Every input's out-of-sample prior for ``case`` (tuned inputs are left to tuning).

    Raises :class:`ScenarioError` when an input's evidence postdates the case's as-of date and
    no earlier prior is given: the backtest refuses to run rather than use it.
    """
    known = records_known_by(records, case.as_of, case.sma_number)
    specs: dict[str, InputSpec] = {}
    origin: dict[str, str] = {}
    used = ", ".join(str(r.sma_number) for r in known) or "none"
    for name, spec in build_priors(
        known, {n: d.spec for n, d in sources.no_history.items()}
    ).items():
        fallback = sources.no_history[name]
        if spec is fallback.spec:
            if fallback.evidence_date > case.as_of:
                raise ScenarioError(
                    str(case.scenario_path),
                    name,
                    f"no_history prior's evidence ({fallback.evidence_date}) postdates the "
                    f"case's as_of {case.as_of}",
                )
            origin[name] = f"no history (evidence {fallback.evidence_date})"
        else:
            origin[name] = f"built from SMA {used}"
        specs[name] = spec
    for name in tuned:
        origin[name] = "tuned"
    for name, prov in sources.provenance.items():
        if name in case.own_inputs:
            origin[name] = "case file"
        elif prov.evidence_date <= case.as_of:
            origin[name] = f"base.yaml (evidence {prov.evidence_date})"
        elif prov.before is not None and prov.before.evidence_date <= case.as_of:
            specs[name] = prov.before.spec
            origin[name] = f"before (evidence {prov.before.evidence_date})"
        else:
            raise ScenarioError(
                str(case.scenario_path),
                name,
                f"base.yaml's prior rests on evidence of {prov.evidence_date}, after the case's "
                f"as_of {case.as_of}; set it in the case file or give an earlier prior "
                "(cases.yaml priors.provenance.before)",
            )
    return CasePriors(specs, origin)
