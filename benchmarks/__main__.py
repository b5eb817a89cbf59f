"""Benchmarks of sma-forecast, as ratios against references measured in the same run.

    python -m benchmarks            # every section but 'big' (about 5-8 minutes on 2 cores)
    python -m benchmarks --only big # 10^8 trials through the real run (2-4 minutes more)
    python -m benchmarks --quick    # smaller sizes, no 8x memory run (a smoke test)
    python -m benchmarks --only sampling,core

Needs the ``bench`` extra (numba, squigglepy): ``pip install -e '.[dev,dask,bench]'``.

Every ratio compares two things timed in this process, alternating, best of N (other jobs on
the machine make single timings noisy). Rows:

- sampling: the sampling stage (``pipeline.model.plan.sample_block``: uniforms, Gaussian copula,
  inverse CDFs, range clipping) against the RNG limit, the same number of direct numpy draws of
  the same families (``Generator.beta`` for PERT, ``.lognormal``, ``.normal``, ...).
- core: ``pipeline.model.simulate.simulate`` on the baseline scenario against a compiled per-trial
  reference of the same model (benchmarks/reference.py under numba), 1 thread; the reference's
  outputs are checked against the core's first.
- threads: the core on 2 worker threads against 1 (throughput; information: the default runner
  of a big run is worker processes).
- workers: ``sma-forecast run -s baseline`` with the default runner (``auto``) on 2 workers
  against 1, the seconds of its own "simulating" phase (workers2/1; 2,000,000 trials, so
  ``auto`` picks worker processes for 2 workers and threads for 1).
- python / squigglepy: the core against the same per-trial loop interpreted, and the Monte Carlo
  (sampling + core) against squigglepy sampling the same inputs inside a per-sample model
  function (squigglepy's way to express a model it has no vectorized form for).
- end to end: ``sma-forecast run`` for all default scenarios in its own process, against the
  Monte Carlo itself (sampling + core for the same trials on 2 workers: the faster of 2 threads
  and 2 warm worker processes) plus an empty Prefect flow's start-up: the ratio is what
  aggregation, tables, Parquet, the report and orchestration add.
- memory: peak RSS of that run (the CLI process plus its largest child: a worker process or
  the embedded server) at 10^6 and 8 x 10^6 trials per scenario.
- big (opt-in, ``--only big``, about 2-3 minutes): ``sma-forecast run -s baseline`` at 10^8
  trials against 10 times the same run at 10^7, both timed in this run.
"""

from __future__ import annotations

import os

# One BLAS thread, before numpy loads (as the CLI does): see flows/cli.py.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime as dt  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Mapping  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import flows._env  # noqa: E402,F401  (Prefect defaults and the allocator settings a run uses)
from benchmarks import reference  # noqa: E402
from pipeline.compose import resolve_scenarios  # noqa: E402
from pipeline.model.plan import Plan, plan_run, sample_block  # noqa: E402
from pipeline.model.seeding import EVENT_STREAM, block_rng  # noqa: E402
from pipeline.model.simulate import EVENT_COLUMNS, simulate  # noqa: E402
from pipeline.spec.catalog import INPUT_BY_NAME, INPUT_NAMES  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 29)
SEED = 20261129
CHUNK = 65_536
SECTIONS = ("sampling", "core", "threads", "workers", "python", "squigglepy", "e2e", "memory")
#: Opt-in sections (not run by default).
EXTRA_SECTIONS = ("big",)
#: Information rows whose ratio is printed in the RATIOS line too.
INFO_RATIOS = ("threads2/1",)


@dataclass
class Row:
    name: str
    value: str
    reference: str
    ratio: float
    target: str
    ok: bool | None
    key: str


def _fmt_rate(per_second: float) -> str:
    if per_second >= 1e6:
        return f"{per_second / 1e6:.2f} M/s"
    return f"{per_second / 1e3:.1f} k/s"


def best_of(fns: Mapping[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best wall time of each function, runs alternating between them (noise hits all)."""
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def baseline_plan(n_blocks: int = 16) -> Plan:
    scenario = resolve_scenarios(REPO / "configs", ["baseline"])[0]
    return plan_run(scenario, as_of=AS_OF, entropy=SEED, n_trials=n_blocks * CHUNK,
                    chunk_size=CHUNK)  # fmt: skip


def events_for(plan: Plan, block: int) -> Any:
    return block_rng(plan.entropy, block, EVENT_STREAM).random(
        (plan.block_size(block), len(EVENT_COLUMNS))
    )


# --------------------------------------------------------------------------- sampling


def direct_draws(plan: Plan, rng: np.random.Generator, n: int) -> dict[str, Any]:
    """The RNG limit: direct numpy draws of each input's family (no copula, no inverse CDF)."""
    out: dict[str, Any] = {}
    for name in INPUT_NAMES:
        m = plan.marginals[name]
        p = m.params
        if m.kind in ("pert", "beta"):
            out[name] = p["low"] + (p["high"] - p["low"]) * rng.beta(p["alpha"], p["beta"], n)
        elif m.kind == "lognormal":
            out[name] = rng.lognormal(p["mu"], p["sigma"], n)
        elif m.kind == "normal":
            out[name] = rng.normal(p["mu"], p["sigma"], n)
        elif m.kind == "triangular":
            out[name] = rng.triangular(p["min"], p["mode"], p["max"], n)
        elif m.kind == "uniform":
            out[name] = rng.uniform(p["low"], p["high"], n)
        elif m.kind == "bernoulli":
            out[name] = (rng.random(n) < p["p"]).astype(np.float64)
        elif m.kind in ("discrete", "categorical"):
            out[name] = rng.choice(m.scipy_dist.xk, p=m.scipy_dist.pk, size=n)
        else:  # fixed
            out[name] = np.full(n, p["value"])
    return out


def bench_sampling(plan: Plan, repeat: int) -> list[Row]:
    rng = np.random.default_rng(1)
    blocks = iter(range(10**9))
    t = best_of({
        "ours": lambda: sample_block(plan, next(blocks) % plan.n_blocks),
        "direct": lambda: direct_draws(plan, rng, CHUNK),
    }, repeat)  # fmt: skip
    kinds = sorted({plan.marginals[n].kind for n in INPUT_NAMES})
    ratio = t["direct"] / t["ours"]
    return [Row(
        "sampling stage vs RNG limit (26 inputs, copula)",
        _fmt_rate(CHUNK / t["ours"]) + " trials", _fmt_rate(CHUNK / t["direct"]) + " direct "
        + "/".join(kinds), ratio, ">= 0.5", ratio >= 0.5, "sampling/rng",
    )]  # fmt: skip


# --------------------------------------------------------------------------- core


def core_inputs(plan: Plan, blocks: range) -> list[tuple[dict[str, Any], Any]]:
    return [(sample_block(plan, b), events_for(plan, b)) for b in blocks]


def bench_core(plan: Plan, repeat: int) -> tuple[list[Row], float]:
    draws, events = core_inputs(plan, range(1))[0]
    run_numba = reference.numba_runner()
    x = reference.input_matrix(draws)
    run_numba(x[:100], events[:100], plan.settings)  # compile
    outcomes = simulate(draws, plan.settings, event_uniforms=events)
    bad = reference.check_against_core(outcomes, *run_numba(x, events, plan.settings))
    t = best_of({
        "core": lambda: simulate(draws, plan.settings, event_uniforms=events),
        "numba": lambda: run_numba(x, events, plan.settings),
    }, repeat)  # fmt: skip
    ratio = t["numba"] / t["core"]
    note = "" if not bad else f" (reference DIFFERS: {bad})"
    return [Row(
        "core vs compiled per-trial reference, 1 thread", _fmt_rate(CHUNK / t["core"]),
        _fmt_rate(CHUNK / t["numba"]) + " numba" + note, ratio, ">= 1.0",
        ratio >= 1.0 and not bad, "core/numba",
    )], CHUNK / t["core"]  # fmt: skip


def bench_threads(plan: Plan, repeat: int) -> list[Row]:
    work = core_inputs(plan, range(8))

    def one(item: tuple[dict[str, Any], Any]) -> object:
        return simulate(item[0], plan.settings, event_uniforms=item[1])

    def serial() -> None:
        for item in work:
            one(item)

    pool = ThreadPoolExecutor(2)

    def two() -> None:
        list(pool.map(one, work))

    blocks = list(range(8))

    def mc_serial() -> None:
        for b in blocks:
            simulate(sample_block(plan, b), plan.settings, event_uniforms=events_for(plan, b))

    def mc_two() -> None:
        list(pool.map(lambda b: simulate(sample_block(plan, b), plan.settings,
                                         event_uniforms=events_for(plan, b)), blocks))  # fmt: skip

    t = best_of({"1": serial, "2": two}, repeat)
    t_mc = best_of({"1": mc_serial, "2": mc_two}, max(2, repeat // 2))
    pool.shutdown()
    # The same Monte Carlo in 2 worker processes (how Dask workers run it): no shared GIL.
    from benchmarks._work import monte_carlo_blocks

    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as procs:
        list(procs.map(monte_carlo_blocks, [[0], [1]]))  # start and warm both processes
        t_proc = best_of({
            "1": lambda: procs.submit(monte_carlo_blocks, blocks).result(),
            "2": lambda: list(procs.map(monte_carlo_blocks, [blocks[0::2], blocks[1::2]])),
        }, max(2, repeat // 2))  # fmt: skip
    n = 8 * CHUNK
    ratio, ratio_mc = t["1"] / t["2"], t_mc["1"] / t_mc["2"]
    ratio_proc = t_proc["1"] / t_proc["2"]
    return [
        Row("core on 2 worker threads vs 1", _fmt_rate(n / t["2"]), _fmt_rate(n / t["1"]) +
            " on 1", ratio, "info", None, "threads2/1"),
        Row("  (sampling + core on 2 threads vs 1)", _fmt_rate(n / t_mc["2"]),
            _fmt_rate(n / t_mc["1"]) + " on 1", ratio_mc, "info", None, "mc_threads2/1"),
        Row("  (sampling + core on 2 processes vs 1)", _fmt_rate(n / t_proc["2"]),
            _fmt_rate(n / t_proc["1"]) + " on 1", ratio_proc, "info", None, "mc_procs2/1"),
    ]  # fmt: skip


# --------------------------------------------------------------------------- python, squigglepy


def bench_python(plan: Plan, core_rate: float, n: int) -> list[Row]:
    draws, events = core_inputs(plan, range(1))[0]
    x = reference.input_matrix(draws)[:n].tolist()
    ev = events[:n].tolist()
    run = reference.python_runner()
    start = time.perf_counter()
    scalars, paths = run(x, ev, plan.settings)
    rate = n / (time.perf_counter() - start)
    outcomes = simulate(draws, plan.settings, event_uniforms=events)
    bad = reference.check_against_core(outcomes.take(slice(0, n)), scalars, paths)  # type: ignore[arg-type]
    ratio = core_rate / rate
    return [Row(
        "core vs pure-Python per-trial loop", _fmt_rate(core_rate),
        _fmt_rate(rate) + " python" + ("" if not bad else f" (DIFFERS: {bad})"), ratio,
        ">= 50", ratio >= 50 and not bad, "core/python",
    )]  # fmt: skip


def squigglepy_model(plan: Plan) -> Callable[[], list[float]]:
    """The baseline model as a squigglepy per-sample function: the same input distributions
    (squigglepy's pert/lognorm/norm/triangular/bernoulli/discrete), clipped to the allowed
    ranges, then benchmarks.reference.trial. No rank correlation: ``sq.correlate`` works on
    vectorized draws, not inside a per-sample function."""
    import squigglepy as sq

    dists: list[Any] = []
    for name in INPUT_NAMES:
        spec = plan.scenario.inputs[name]
        kind = spec.dist
        if kind == "pert":
            dists.append(sq.pert(spec.min, spec.mode, spec.max, lam=spec.shape))
        elif kind in ("normal", "lognormal"):
            pair = spec.quantile_pair()
            if pair is None or (pair[0][0], pair[1][0]) != (0.05, 0.95):
                raise ValueError(f"squigglepy benchmark: {name} needs a p05/p95 spec")
            (_, lo), (_, hi) = pair  # a 90% interval, squigglepy's default credibility
            dists.append((sq.norm if kind == "normal" else sq.lognorm)(lo, hi))
        elif kind == "triangular":
            dists.append(sq.triangular(spec.min, spec.mode, spec.max))
        elif kind == "bernoulli":
            dists.append(sq.bernoulli(spec.p))
        elif kind == "discrete":
            dists.append(sq.discrete(dict(zip(spec.values, spec.probs, strict=True))))
        elif kind == "categorical":
            cats = INPUT_BY_NAME[name].categories
            dists.append(sq.discrete({float(cats.index(c)): p
                                      for c, p in zip(spec.categories, spec.probs, strict=True)}))  # fmt: skip
        elif kind == "fixed":
            dists.append(sq.const(spec.value))
        else:
            raise ValueError(f"squigglepy benchmark: no mapping for {kind}")
    bounds = [(INPUT_BY_NAME[n].low, INPUT_BY_NAME[n].high) for n in INPUT_NAMES]
    sv = {k: v.tolist() for k, v in reference.settings_vector(plan.settings).items()}
    y = len(sv["years"])
    levels, path, res = [0.0] * y, [0.0] * y, [0.0] * len(reference.SCALARS)
    esc, deals = [0.0] * y, [[0.0] * (y + 1) for _ in range(3)]

    def model() -> list[float]:
        x = [min(max(float(~d), lo), hi) for d, (lo, hi) in zip(dists, bounds, strict=True)]
        reference.trial(x, random.random(), random.random(), random.random(), random.random(),
                        sv["st"], sv["years"], sv["known_cpi"], sv["known_def"],
                        sv["level_kind"], sv["level_known"], levels, path, res, esc,
                        deals)  # fmt: skip
        return res[:]

    return model


def bench_squigglepy(plan: Plan, mc_rate: float, n: int) -> list[Row]:
    import squigglepy as sq

    model = squigglepy_model(plan)
    sq.sample(model, n=10, verbose=False)
    start = time.perf_counter()
    out = sq.sample(model, n=n, verbose=False)
    rate = n / (time.perf_counter() - start)
    assert len(out) == n
    ratio = mc_rate / rate
    return [Row(
        "sampling+core vs squigglepy per-sample model", _fmt_rate(mc_rate),
        _fmt_rate(rate) + " squigglepy", ratio, ">= 100", ratio >= 100, "mc/squigglepy",
    )]  # fmt: skip


# --------------------------------------------------------------------------- end to end


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env["PREFECT_HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return elapsed, proc.stderr


def _cli_run(
    trials: int, out: Path, env: dict[str, str], *args: str
) -> tuple[float, float, dict[str, float]]:
    """Wall time, peak RSS [MB] (the CLI process plus its largest child) and the phases' seconds
    as the run printed them, of ``sma-forecast run`` (all scenarios unless ``args`` name some)
    in its own process."""
    cmd = [sys.executable, "-m", "benchmarks._rss", "run", "--trials", str(trials),
           "--seed", str(SEED), "--as-of", AS_OF.isoformat(), "--output", str(out), *args]  # fmt: skip
    elapsed, err = _timed(cmd, env)
    own = re.search(r"PEAK_RSS_MB ([0-9.]+)", err)
    child = re.search(r"PEAK_CHILD_RSS_MB ([0-9.]+)", err)
    rss = (float(own.group(1)) if own else math.nan) + (float(child.group(1)) if child else 0.0)
    phases = {m.group(1).strip(): float(m.group(2))
              for m in re.finditer(r"^ {2}(\S[^\n]*?)\s+([0-9.]+) s", err, re.M)}  # fmt: skip
    return elapsed, rss, phases


def monte_carlo_process_seconds(trials: int, workers: int = 2) -> float:
    """Wall time of sampling + core for every default scenario at ``trials`` each, on
    ``workers`` warm worker processes (started and warmed before the clock starts)."""
    from benchmarks._work import monte_carlo_jobs

    plans = [plan_run(s, as_of=AS_OF, entropy=SEED, n_trials=trials, chunk_size=CHUNK)
             for s in resolve_scenarios(REPO / "configs")]  # fmt: skip
    jobs = [(i, b) for i, p in enumerate(plans) for b in range(p.n_blocks)]
    parts = [jobs[k::workers] for k in range(workers)]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=spawn) as procs:
        list(procs.map(monte_carlo_jobs, [[] for _ in range(workers)], [trials] * workers))
        start = time.perf_counter()
        list(procs.map(monte_carlo_jobs, parts, [trials] * workers))
        return time.perf_counter() - start


def monte_carlo_seconds(trials: int, workers: int = 2) -> tuple[float, float]:
    """Wall time of sampling + core (and of the core alone, summed) for every default
    scenario at ``trials`` each, on ``workers`` threads: the Monte Carlo work of a run."""
    plans = [plan_run(s, as_of=AS_OF, entropy=SEED, n_trials=trials, chunk_size=CHUNK)
             for s in resolve_scenarios(REPO / "configs")]  # fmt: skip
    jobs = [(p, b) for p in plans for b in range(p.n_blocks)]
    core_time = [0.0] * len(jobs)

    def one(i: int) -> None:
        plan, block = jobs[i]
        draws, events = sample_block(plan, block), events_for(plan, block)
        start = time.perf_counter()
        simulate(draws, plan.settings, event_uniforms=events)
        core_time[i] = time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(len(jobs))))
    return time.perf_counter() - start, sum(core_time) / workers


@contextlib.contextmanager
def _sandbox() -> Iterator[tuple[Path, dict[str, str]]]:
    """A throwaway Prefect home (its database migrated by one empty flow run) and output
    folder: (outputs, environment for the CLI); both removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="sma-bench-prefect-"))
    outputs = Path(tempfile.mkdtemp(prefix="sma-bench-out-"))
    env = _env(home)
    try:
        _timed([sys.executable, "-m", "benchmarks._empty_flow"], env)  # database migration
        yield outputs, env
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(outputs, ignore_errors=True)


def bench_e2e(trials: int, memory_factor: int | None) -> list[Row]:
    with _sandbox() as (outputs, env):
        empty = [sys.executable, "-m", "benchmarks._empty_flow"]
        t_empty = min(_timed(empty, env)[0] for _ in range(2))
        t_run, rss, phases = _cli_run(trials, outputs / "a", env)
        t_threads, t_core = min(monte_carlo_seconds(trials) for _ in range(2))
        t_procs = min(monte_carlo_process_seconds(trials) for _ in range(2))
        t_mc = min(t_threads, t_procs)
        ratio = t_run / (t_mc + t_empty)
        n = len(resolve_scenarios(REPO / "configs"))
        how = "threads" if t_threads <= t_procs else "processes"
        rows = [
            Row(f"end to end: sma-forecast run, {n} scenarios x {trials:,}", f"{t_run:.1f} s",
                f"{t_mc:.1f} s MC ({how}) + {t_empty:.1f} s empty flow", ratio, "<= 1.5",
                ratio <= 1.5, "e2e"),
            Row("  (vs core alone + empty flow)", f"{t_run:.1f} s",
                f"{t_core:.1f} s core + {t_empty:.1f} s", t_run / (t_core + t_empty), "info",
                None, "e2e_core"),
        ]  # fmt: skip
        print("end to end, the run's phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in
              phases.items()) + f"; MC on 2 threads {t_threads:.1f} s, on 2 processes "
              f"{t_procs:.1f} s", flush=True)  # fmt: skip
        if memory_factor:
            t_big, rss_big, _ = _cli_run(trials * memory_factor, outputs / "b", env)
            growth = rss_big / rss
            rows.append(Row(
                f"peak RSS at {memory_factor}x trials ({trials * memory_factor:,}/scenario)",
                f"{rss_big:.0f} MB ({t_big:.0f} s)", f"{rss:.0f} MB at {trials:,}", growth,
                "<= 1.5", growth <= 1.5, "rss",
            ))  # fmt: skip
        else:
            rows.append(Row(f"peak RSS at {trials:,}/scenario", f"{rss:.0f} MB", "", math.nan,
                            "info", None, "rss1"))  # fmt: skip
        return rows


def bench_workers(trials: int) -> list[Row]:
    """The default runner on 2 workers vs 1: seconds of the run's own "simulating" phase."""
    with _sandbox() as (outputs, env):
        seconds: dict[int, float] = {}
        for workers in (1, 2, 1, 2):
            _, _, phases = _cli_run(trials, outputs / f"w{workers}", env, "-s", "baseline",
                                    "--workers", str(workers))  # fmt: skip
            seconds[workers] = min(seconds.get(workers, math.inf), phases["simulating"])
        ratio = seconds[1] / seconds[2]
        return [Row(
            f"sma-forecast run -s baseline --trials {trials:,}: 2 workers vs 1 (default runner)",
            f"{trials / seconds[2] / 1e6:.2f} M/s", f"{trials / seconds[1] / 1e6:.2f} M/s on 1",
            ratio, ">= 1.7", ratio >= 1.7, "workers2/1",
        )]  # fmt: skip


def bench_big(trials: int) -> list[Row]:
    """``sma-forecast run -s baseline`` at ``trials`` against 10 x the same at trials / 10."""
    with _sandbox() as (outputs, env):
        t_small, _, _ = _cli_run(trials // 10, outputs / "small", env, "-s", "baseline")
        t_big, rss, phases = _cli_run(trials, outputs / "big", env, "-s", "baseline")
        print(f"big run phases: {phases}; peak RSS {rss:.0f} MB", flush=True)
        ratio = t_big / (10 * t_small)
        return [Row(
            f"sma-forecast run -s baseline --trials {trials:,} vs 10 x {trials // 10:,}",
            f"{t_big:.1f} s", f"10 x {t_small:.1f} s", ratio, "< 1", ratio < 1, "big/10small",
        )]  # fmt: skip


# --------------------------------------------------------------------------- report


def print_table(rows: list[Row]) -> None:
    head = ("measurement", "ours", "reference", "ratio", "target", "")
    body = [(r.name, r.value, r.reference, "" if math.isnan(r.ratio) else f"{r.ratio:.3g}",
             r.target, "" if r.ok is None else ("ok" if r.ok else "MISS")) for r in rows]  # fmt: skip
    widths = [max(len(str(x[i])) for x in (head, *body)) for i in range(len(head))]
    for line in (head, tuple("-" * w for w in widths), *body):
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    ratios = " ".join(f"{r.key}={r.ratio:.3g}" for r in rows if not math.isnan(r.ratio)
                      and (r.ok is not None or r.key in INFO_RATIOS))  # fmt: skip
    print(f"RATIOS {ratios}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes, fewer repeats, no 8x memory run"
    )
    parser.add_argument(
        "--only", default=",".join(SECTIONS),
        help=f"comma-separated sections: {','.join(SECTIONS)}; opt-in: {','.join(EXTRA_SECTIONS)}",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=None, help="best of N (default 9, quick 3)")
    parser.add_argument(
        "--e2e-trials",
        type=int,
        default=None,
        help="trials per scenario end to end (default 1,000,000; quick 100,000)",
    )
    args = parser.parse_args(argv)  # fmt: skip
    only = set(args.only.split(","))
    unknown = only - set(SECTIONS) - set(EXTRA_SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}")
    repeat = args.repeat or (3 if args.quick else 9)
    e2e_trials = args.e2e_trials or (100_000 if args.quick else 1_000_000)
    print(f"sma-forecast benchmarks: python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} cpu(s), BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"block {CHUNK:,} trials, baseline as of {AS_OF}", flush=True)  # fmt: skip
    plan = baseline_plan()
    rows: list[Row] = []
    core_rate = mc_rate = math.nan
    if "sampling" in only:
        rows += bench_sampling(plan, repeat)
    if only & {"core", "python", "squigglepy"}:
        core_rows, core_rate = bench_core(plan, repeat)
        rows += core_rows if "core" in only else []
    if "threads" in only:
        rows += bench_threads(plan, max(3, repeat // 2))
    if "workers" in only:
        rows += bench_workers(2_000_000)
    if "python" in only:
        rows += bench_python(plan, core_rate, 2_000 if args.quick else 20_000)
    if "squigglepy" in only:
        blocks = iter(range(10**9))

        def monte_carlo() -> None:
            block = next(blocks) % plan.n_blocks
            simulate(sample_block(plan, block), plan.settings,
                     event_uniforms=events_for(plan, block))  # fmt: skip

        mc_rate = CHUNK / best_of({"mc": monte_carlo}, repeat)["mc"]
        rows += bench_squigglepy(plan, mc_rate, 500 if args.quick else 3_000)
    if only & {"e2e", "memory"}:
        rows += bench_e2e(e2e_trials, None if args.quick or "memory" not in only else 8)
    if "big" in only:
        rows += bench_big(10**7 if args.quick else 10**8)
    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
