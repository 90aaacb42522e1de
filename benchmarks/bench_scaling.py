"""Benchmark: how the simulator's cost grows with the number of replicas (issue 18).

Run: python benchmarks/bench_scaling.py [--replicas 1,2,10,30,60,100] [--routers least-outstanding,round-robin]
[--repeat 3] [--rate-per-replica 4]. Each point replays chat-diurnal's lengths and shared prompts at a flat Poisson
rate of `--rate-per-replica` (4/s) per replica for 1,000 requests per replica (1 x 1k ... 100 x 100k), so every
replica carries the same load, through Llama-3.1-8B on p5.48xlarge, in a fresh process per run:
- sim CPU s: user + system CPU of `simulate` alone (the fleet run and its report), best of `--repeat` runs (three
  times as many under 10 replicas; CPU time, not wall time: a shared runner's other work does not count); per
  request in microseconds, and as a multiple of that at the first count of two replicas or more;
- process CPU s: the whole child process (imports and workload generation included), from its rusage;
- peak RSS: the child's maximum resident set (as `/usr/bin/time -v` reports it), and its growth during `simulate`
  per replica.
Issue 18's target: sim CPU per request at 60-100 replicas at most 1.5x that at 2 replicas, and bounded memory per
replica. Printed figures, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

MODEL, HARDWARE = "meta-llama/Llama-3.1-8B-Instruct", "p5.48xlarge"
REQUESTS_PER_REPLICA = 1000


def child(replicas: int, router: str, rate_per_replica: float) -> None:
    """One run in this process: print sim CPU seconds, requests, and RSS before and after as JSON."""
    from fleetwise.catalog import load_catalog
    from fleetwise.models import load_model
    from fleetwise.perf import bundled_calibration
    from fleetwise.sim import FleetSpec, PoolSpec, simulate
    from fleetwise.workload import Arrivals, generate, resolve_workload

    duration = REQUESTS_PER_REPLICA / rate_per_replica
    chat = resolve_workload("chat-diurnal")
    workload = chat.replace(arrivals=Arrivals(rate_per_s=rate_per_replica * replicas).model_dump(),
                            duration_s=duration)
    requests = generate(workload)
    catalog, calibration = load_catalog(include_user_prices=False), bundled_calibration()
    fleet = FleetSpec(pools=(PoolSpec(load_model(MODEL), HARDWARE, 1, "bf16", None, replicas=replicas),),
                      router=router)
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    result = simulate(fleet, requests, catalog, calibration)
    cpu = time.process_time() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"requests": len(requests), "completed": result.completed, "sim_cpu_s": cpu,
                      "before_kib": before_kib, "peak_kib": peak_kib, "ttft_p99_ms": result.ttft_ms.p99 or 0.0}))


def run_once(replicas: int, router: str, rate_per_replica: float) -> dict[str, float]:
    """One fresh child process; adds its whole-process CPU seconds and peak RSS (from wait4's rusage)."""
    command = [sys.executable, __file__, "--child", str(replicas), router, str(rate_per_replica)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        out = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"child failed: {' '.join(command)}")
    figures: dict[str, float] = json.loads(out)
    figures["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    figures["peak_kib"] = max(figures["peak_kib"], usage.ru_maxrss)
    return figures


def main() -> None:
    """Print the scaling table: replicas, requests, CPU, CPU per request, peak memory, per router."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", default="1,2,10,30,60,100", help="comma-separated replica counts")
    parser.add_argument("--routers", default="least-outstanding,round-robin")
    parser.add_argument("--repeat", type=int, default=3, help="runs per point (3x under 10 replicas); the least CPU "
                                                              "is kept")
    parser.add_argument("--rate-per-replica", type=float, default=4.0, help="requests/s per replica")
    args = parser.parse_args()
    from fleetwise.native import build_kind

    print(f"fleetwise simulator: {build_kind()}; {REQUESTS_PER_REPLICA:,} requests and "
          f"{args.rate_per_replica:g} requests/s per replica, Llama-3.1-8B on {HARDWARE}, best of {args.repeat}")
    print(f"{'router':<18} {'replicas':>8} {'requests':>9} {'TTFT p99 ms':>11} {'sim CPU s':>10} {'us/request':>10} "
          f"{'x 2-rep':>7} {'process CPU s':>13} {'peak RSS MiB':>12} {'KiB/replica':>11}")
    for router in args.routers.split(","):
        reference = None
        for replicas in (int(r) for r in args.replicas.split(",")):
            repeat = args.repeat if replicas >= 10 else 3 * args.repeat  # short runs are the noisiest
            runs = [run_once(replicas, router, args.rate_per_replica) for _ in range(repeat)]
            best = min(runs, key=lambda run: run["sim_cpu_s"])
            per_request = best["sim_cpu_s"] / best["requests"] * 1e6
            if reference is None and replicas >= 2:
                reference = per_request  # the first count of at least two replicas
            peak = min(run["peak_kib"] for run in runs)
            growth = (peak - min(run["before_kib"] for run in runs)) / replicas
            ratio = "" if reference is None else f"{per_request / reference:.2f}"
            print(f"{router:<18} {replicas:>8} {int(best['requests']):>9,} {best['ttft_p99_ms']:>11.1f} "
                  f"{best['sim_cpu_s']:>10.2f} {per_request:>10.1f} {ratio:>7} "
                  f"{min(run['process_cpu_s'] for run in runs):>13.2f} {peak / 1024:>12.1f} {growth:>11.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
