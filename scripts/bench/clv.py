"""Benchmark the lifetime-value fit and scoring at operator scale, with lifetimes on the same
inputs side by side. Appends a result block to RESULTS.md.

python scripts/bench/clv.py [--customers 1000000 10000000] [--lifetimes 1000000 3000000]
                            [--lifetimes-timeout 1800] [--no-record]

For each size: customers are simulated on Spark from BG/NBD + Gamma-Gamma with the CDNOW
parameters (weeks, purchases recorded to the day over 39 weeks) and written to Parquet, outside
the timings. crmlake then reads them, compresses, fits both models and scores every customer
(probability alive, expected purchases over 90 and 365 days, expected value, CLV over 12 and 36
months) into a Delta table — timed as one. lifetimes (one process, pandas/numpy) fits the same
Parquet statistics and scores the same quantities, in a child process with a time limit, so a
crash or running out of memory is recorded as where it stops.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
BGNBD = (0.243, 4.414, 0.793, 2.426)
GAMMA_GAMMA = (6.25, 3.74, 15.44)

LIFETIMES_CHILD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import lifetimes
path = sys.argv[1]
started = time.monotonic()
df = pd.read_parquet(path)
f, r, t, m = df["frequency"], df["recency"], df["age"], df["monetary_value"]
bg = lifetimes.BetaGeoFitter().fit(f, r, t)
fitted = time.monotonic()
repeat = f > 0
gg = lifetimes.GammaGammaFitter().fit(f[repeat], m[repeat])
alive = bg.conditional_probability_alive(f, r, t)
e90 = bg.conditional_expected_number_of_purchases_up_to_time(90 / 7, f, r, t)
e365 = bg.conditional_expected_number_of_purchases_up_to_time(365 / 7, f, r, t)
value = gg.conditional_expected_average_profit(f, m)
monthly = 1.1 ** (1 / 12) - 1
clv12 = gg.customer_lifetime_value(bg, f, r, t, m, time=12, discount_rate=monthly, freq="W")
clv36 = gg.customer_lifetime_value(bg, f, r, t, m, time=36, discount_rate=monthly, freq="W")
done = time.monotonic()
print(json.dumps({
    "seconds": done - started, "fit_bgnbd_s": fitted - started,
    "bgnbd": bg.params_.to_dict(), "gamma_gamma": gg.params_.to_dict(),
    "clv12_sum": float(clv12.sum()), "clv36_sum": float(clv36.sum()), "alive_mean": float(alive.mean()),
}))
"""


def machine() -> str:
    cpu = "unknown cpu"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def session(driver_memory: str):
    from crmlake.core.config import load_config
    from crmlake.core.session import build_session

    cfg = load_config(
        env="local",
        overrides={
            "spark.master": "local[*]",
            "spark.driver_memory": driver_memory,
            "spark.shuffle_partitions": 8,
            "logging.format": "text",
        },
    )
    return build_session(cfg)


def crmlake_run(spark, path: Path, out: Path) -> dict:
    import numpy as np
    from crmlake.gold import clv, clv_models

    started = time.monotonic()
    stats_df = spark.read.parquet(str(path)).cache()
    combos = clv.compressed_statistics(stats_df).toPandas()
    compressed = time.monotonic()
    x, t_x, age, n = (combos[c].to_numpy() for c in ("frequency", "recency", "age", "customers"))
    bg = clv_models.fit_bgnbd(x, t_x, age, n)
    fitted_bg = time.monotonic()
    values = clv.compressed_values(stats_df).toPandas()
    gg = clv_models.fit_gamma_gamma(values["frequency"], values["monetary_value"], values["customers"])
    fitted_gg = time.monotonic()
    scored_df = clv.with_transaction_predictions(stats_df, bg.params, gg.params, (90, 365), (12, 36), "week", 0.1, 1.0)
    scored_df.write.format("delta").mode("overwrite").save(str(out))
    done = time.monotonic()
    sums = (
        spark.read.format("delta").load(str(out)).selectExpr("sum(clv_12m)", "sum(clv_36m)", "avg(probability_alive)")
    )
    clv12, clv36, alive = sums.first()
    errors = clv_models.bgnbd_standard_errors(bg.params, x, t_x, age, n)
    stats_df.unpersist()
    return {
        "seconds": done - started,
        "compress_s": compressed - started,
        "fit_bgnbd_s": fitted_bg - compressed,
        "fit_gamma_gamma_s": fitted_gg - fitted_bg,
        "score_write_s": done - fitted_gg,
        "distinct_statistics": len(combos),
        "distinct_values": len(values),
        "bgnbd": bg.params,
        "bgnbd_se": errors,
        "bgnbd_converged": bg.converged,
        "gamma_gamma": gg.params,
        "gamma_gamma_converged": gg.converged,
        "clv12_sum": clv12,
        "clv36_sum": clv36,
        "alive_mean": alive,
        "recovered_within_4se": bool(
            all(abs(bg.params[k] - v) < 4 * errors[k] for k, v in zip(clv_models.BGNBD_PARAMS, BGNBD, strict=True))
        ),
        "max_abs_z": float(
            np.max([abs(bg.params[k] - v) / errors[k] for k, v in zip(clv_models.BGNBD_PARAMS, BGNBD, strict=True)])
        ),
    }


def lifetimes_run(path: Path, timeout: int) -> dict:
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", LIFETIMES_CHILD, str(path)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"stopped": f"did not finish within {timeout} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return {"stopped": f"failed after {time.monotonic() - started:.0f} s: {last}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def relative(a: dict, b: dict, names) -> float:
    return max(abs(a[k] - b[k]) / abs(b[k]) for k in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--lifetimes", type=int, nargs="*", default=[1_000_000], help="sizes lifetimes also runs")
    parser.add_argument("--lifetimes-timeout", type=int, default=1800)
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    from crmlake.synth.clv import simulate_transaction_statistics

    spark = session(args.driver_memory)
    work = Path(tempfile.mkdtemp(prefix="crmlake-bench-clv-"))
    lines = []
    try:
        for n in args.customers:
            path = work / f"stats-{n}.parquet"
            started = time.monotonic()
            simulate_transaction_statistics(
                spark, n, BGNBD, GAMMA_GAMMA, days=273, seed=2026, partitions=16
            ).write.parquet(str(path))
            simulated = time.monotonic() - started
            ours = crmlake_run(spark, path, work / f"scored-{n}")
            print(f"crmlake {n:,}: {json.dumps(ours, default=str)}", flush=True)
            theirs = lifetimes_run(path, args.lifetimes_timeout) if n in args.lifetimes else None
            if theirs is not None:
                print(f"lifetimes {n:,}: {json.dumps(theirs, default=str)}", flush=True)
            lines.append(report(n, simulated, ours, theirs))
            shutil.rmtree(path, ignore_errors=True)
            shutil.rmtree(work / f"scored-{n}", ignore_errors=True)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    block = "\n".join(
        [
            f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: lifetime value (BG/NBD + Gamma-Gamma), "
            f"{', '.join(f'{n:,}' for n in args.customers)} simulated customers",
            "",
            f"- machine: {machine()}; Spark local[*], driver {args.driver_memory}",
            "- command: `scripts/bench.sh clv "
            + " ".join(["--customers", *map(str, args.customers), "--lifetimes", *map(str, args.lifetimes)])
            + "`",
            *lines,
            "",
        ]
    )
    print(block)
    if not args.no_record:
        with open(RESULTS, "a") as fh:
            fh.write("\n" + block)


def report(n: int, simulated: float, ours: dict, theirs: dict | None) -> str:
    from crmlake.gold import clv_models

    bg = ", ".join(f"{k} {ours['bgnbd'][k]:.4f} ± {ours['bgnbd_se'][k]:.4f}" for k in clv_models.BGNBD_PARAMS)
    out = [
        f"- **{n:,} customers** (simulated in {simulated:.0f} s, not timed): crmlake {ours['seconds']:.1f} s "
        f"(compress {ours['compress_s']:.1f}, BG/NBD fit {ours['fit_bgnbd_s']:.1f}, Gamma-Gamma fit "
        f"{ours['fit_gamma_gamma_s']:.1f}, score + write Delta {ours['score_write_s']:.1f}); "
        f"compressed problem: {ours['distinct_statistics']:,} distinct (x, t_x, T), "
        f"{ours['distinct_values']:,} distinct (x, m̄)",
        f"  - BG/NBD {bg} (true 0.243, 4.414, 0.793, 2.426; largest |z| {ours['max_abs_z']:.2f}); "
        f"Gamma-Gamma p {ours['gamma_gamma']['p']:.3f}, q {ours['gamma_gamma']['q']:.3f}, "
        f"gamma {ours['gamma_gamma']['gamma']:.3f} (true 6.25, 3.74, 15.44)",
    ]
    if theirs is None:
        return "\n".join(out)
    if "stopped" in theirs:
        out.append(f"  - lifetimes on the same statistics: {theirs['stopped']}")
        return "\n".join(out)
    gg_theirs = {"p": theirs["gamma_gamma"]["p"], "q": theirs["gamma_gamma"]["q"], "gamma": theirs["gamma_gamma"]["v"]}
    out.append(
        f"  - lifetimes on the same statistics: {theirs['seconds']:.1f} s (BG/NBD fit {theirs['fit_bgnbd_s']:.1f} s) "
        f"→ crmlake **{theirs['seconds'] / ours['seconds']:.1f}×** faster; parameters differ by at most "
        f"{relative(ours['bgnbd'], theirs['bgnbd'], clv_models.BGNBD_PARAMS):.1e} (BG/NBD) and "
        f"{relative(ours['gamma_gamma'], gg_theirs, clv_models.GAMMA_GAMMA_PARAMS):.1e} (Gamma-Gamma) relative; "
        f"Σ CLV 12 m {ours['clv12_sum']:,.0f} against {theirs['clv12_sum']:,.0f}"
    )
    return "\n".join(out)


if __name__ == "__main__":
    main()
