"""The cheapest mix of pools: Mélange's integer program over request-size buckets, solved with HiGHS.

Mélange (Griggs et al., "Mélange: Cost Efficient Large Language Model Serving by Exploiting GPU Heterogeneity",
arXiv:2404.14527) chooses how many instances of each type to run and which share of each request-size bucket
each type serves, minimising cost subject to every bucket's load fitting within its SLO capacity. fleetwise
solves it over the whole day, so a pool that is cheap only at the peak still pays for its quiet hours:

    minimise    sum_h sum_j price_j * m_jh                  (m_jh: whole instances of option j in hour h)
    subject to  sum_j x_bj = 1                  for every bucket b   (x_bj: share of bucket b sent to j, all day)
                sum_b x_bj * rate_bh / cap_bj <= rpi_j * m_jh   for every option j and hour h
                x_bj <= y_j,  m_jh >= y_j       (y_j = 1 when pool j is used: at least one instance every hour)
                sum over the batch variants of one shape of y_j <= 1,  sum_j y_j <= MAX_POOLS
                x_bj = 0 where option j cannot serve bucket b within the SLO

with HiGHS's branch and bound (through highspy, the solver scipy.optimize.milp wraps: the same program and options
give the same solution, without loading scipy.optimize, about half a second of imports). Any single pool is a
feasible point, so the mix is never dearer than the best single pool at on-demand prices.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from fleetwise.plan.capacity import Option

SHORTLIST_PER_FAMILY = 2  # options per instance family offered to the solver (cheapest per unit of load)
SHORTLIST_PER_BUCKET = 2  # plus the cheapest specialists for each bucket
TIME_LIMIT_S = 1.0  # interactive: the best mix found by then (HiGHS reports the gap)
MIP_GAP = 0.005  # stop within 0.5% of the optimum's bound
HOUR_LEVELS = 6  # the day's hours grouped into this many load levels for the solver (each at its busiest hour)
MAX_POOLS = 3  # more pools than this is rarely worth running; each needs its own images, alarms and capacity


def instance_price(option: Option, spot_share: float = 0.0) -> float:
    """USD per instance-hour the solver minimises: on-demand blended with `spot_share` of spot where spot is cheaper."""
    on_demand, spot = option.prices.get("on-demand"), option.prices.get("spot")
    if on_demand is None:
        return float(spot) if spot is not None else float("inf")
    if spot is None or spot >= on_demand:
        return float(on_demand)
    return float((1.0 - spot_share) * on_demand + spot_share * spot)


def shortlist(options: list[Option], bucket_rates: np.ndarray, spot_share: float = 0.0) -> list[Option]:
    """Options worth offering the solver: per family the cheapest per unit of load, per bucket its specialists."""
    def unit_cost(option: Option, rates: np.ndarray) -> float:
        served = option.capacity > 0
        if not served[rates > 0].all():
            return float("inf")
        load = float(np.sum(rates[served] / option.capacity[served]))
        return load * instance_price(option, spot_share) / option.replicas_per_instance

    chosen: dict[int, Option] = {}
    by_family: dict[str, list[Option]] = {}
    for option in options:
        by_family.setdefault(option.family, []).append(option)
    for family_options in by_family.values():
        ranked = sorted(family_options, key=lambda o: unit_cost(o, bucket_rates))
        for option in ranked[:SHORTLIST_PER_FAMILY]:
            chosen[id(option)] = option
    for b in range(bucket_rates.shape[0]):
        alone = np.zeros_like(bucket_rates)
        alone[b] = bucket_rates[b]
        ranked = sorted(options, key=lambda o: unit_cost(o, alone))
        for option in ranked[:SHORTLIST_PER_BUCKET]:
            if np.isfinite(unit_cost(option, alone)):
                chosen[id(option)] = option
    return [o for o in options if id(o) in chosen]


def hour_levels(bucket_rates: np.ndarray, levels: int = HOUR_LEVELS) -> tuple[np.ndarray, np.ndarray]:
    """Group hours of similar load (sorted by total rate, split evenly); each group at its busiest rates."""
    order = np.argsort(bucket_rates.sum(axis=1))
    groups = [g for g in np.array_split(order, min(levels, len(order))) if len(g)]
    return np.array([bucket_rates[g].max(axis=0) for g in groups]), np.array([len(g) for g in groups])


def solve_mix(options: list[Option], bucket_rates: np.ndarray,
              spot_share: float = 0.0) -> list[tuple[Option, np.ndarray, int]] | None:
    """The cheapest (option, bucket shares, peak instances) set for `bucket_rates` (hours, B); None if infeasible."""
    rates, hours_alike = hour_levels(np.atleast_2d(bucket_rates))
    n_options, (n_hours, n_buckets) = len(options), rates.shape
    if not n_options:
        return None
    price = np.array([instance_price(o, spot_share) for o in options])
    if not np.all(np.isfinite(price)):
        return None
    capacity = np.array([o.capacity for o in options]).T  # (B, J)
    # variables: m (hour-major, H*J), then y (J), then x (bucket-major, B*J)
    m0, y0, x0 = 0, n_hours * n_options, n_hours * n_options + n_options
    n_vars = x0 + n_buckets * n_options
    cost = np.zeros(n_vars)
    cost[m0:y0] = np.outer(hours_alike, price).ravel()
    upper = np.full(n_vars, np.inf)
    upper[y0:x0] = 1.0
    upper[x0:] = (capacity > 0).astype(np.float64).ravel()
    rows, low, high = _constraints(options, rates, capacity, (m0, y0, x0, n_vars))
    integrality = np.zeros(n_vars, dtype=np.int64)
    integrality[:x0] = 1
    x = solve_milp(cost, np.array(rows), np.array(low), np.array(high), upper, integrality)
    if x is None:
        return None
    instances = np.round(x[m0:y0]).astype(np.int64).reshape(n_hours, n_options)
    used = np.round(x[y0:x0]) > 0
    shares = x[x0:].reshape(n_buckets, n_options)
    return [(option, np.clip(shares[:, j], 0.0, 1.0), int(instances[:, j].max()))
            for j, option in enumerate(options) if used[j] and shares[:, j].sum() > 1e-9]


def solve_milp(cost: np.ndarray, matrix: np.ndarray, low: np.ndarray, high: np.ndarray, upper: np.ndarray,
               integrality: np.ndarray) -> np.ndarray | None:
    """Minimise cost @ x with low <= matrix @ x <= high, 0 <= x <= upper, x integral where integrality is 1: HiGHS's
    answer within TIME_LIMIT_S and MIP_GAP (as scipy.optimize.milp asks for it), None when it found none."""
    import highspy  # the solver loads only when a mix is solved

    n_rows, n_cols = matrix.shape
    cols, rows = np.nonzero(matrix.T)  # compressed columns, rows ascending within each (scipy's csc_array order)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_cols, n_rows
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, np.zeros(n_cols), upper
    lp.row_lower_, lp.row_upper_ = low, high
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n_cols, n_rows
    lp.a_matrix_.start_ = np.searchsorted(cols, np.arange(n_cols + 1)).astype(np.int32)
    lp.a_matrix_.index_ = rows.astype(np.int32)
    lp.a_matrix_.value_ = matrix.T[cols, rows]
    lp.integrality_ = [highspy.HighsVarType(int(kind)) for kind in integrality]
    with _quiet_stdout():
        highs = highspy.Highs()
        for option, value in (("log_to_console", False), ("time_limit", TIME_LIMIT_S), ("mip_rel_gap", MIP_GAP)):
            highs.setOptionValue(option, value)
        highs.passModel(lp)
        highs.run()
    status, found = highs.getModelStatus(), highs.getInfo().objective_function_value
    stopped = (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kIterationLimit,
               highspy.HighsModelStatus.kSolutionLimit)  # a solution found before the limit counts
    if status != highspy.HighsModelStatus.kOptimal and (status not in stopped or found == highspy.kHighsInf):
        return None
    return np.array(highs.getSolution().col_value)


def _constraints(options: list[Option], rates: np.ndarray, capacity: np.ndarray,
                 layout: tuple[int, int, int, int]) -> tuple[list[np.ndarray], list[float], list[float]]:
    """The program's rows (low <= row @ vars <= high), in the order the docstring at the top lists them."""
    m0, y0, x0, n_vars = layout
    n_options, (n_hours, n_buckets) = len(options), rates.shape
    rows: list[np.ndarray] = []
    low: list[float] = []
    high: list[float] = []

    def add(row: np.ndarray, lo: float, hi: float) -> None:
        rows.append(row)
        low.append(lo)
        high.append(hi)

    with np.errstate(divide="ignore", invalid="ignore"):
        per_share = np.where(capacity > 0, 1.0 / np.where(capacity > 0, capacity, 1.0), 0.0)  # (B, J)
    for b in range(n_buckets):  # every bucket is served in full
        row = np.zeros(n_vars)
        row[x0 + b * n_options: x0 + (b + 1) * n_options] = 1.0
        add(row, 1.0, 1.0)
    for h in range(n_hours):  # each pool's load fits its instances; a used pool keeps one instance every hour
        for j, option in enumerate(options):
            row = np.zeros(n_vars)
            row[m0 + h * n_options + j] = -float(option.replicas_per_instance)
            row[x0 + np.arange(n_buckets) * n_options + j] = rates[h] * per_share[:, j]
            add(row, -np.inf, 0.0)
            floor = np.zeros(n_vars)
            floor[m0 + h * n_options + j], floor[y0 + j] = 1.0, -1.0
            add(floor, 0.0, np.inf)
    for b in range(n_buckets):  # only used pools serve
        for j in range(n_options):
            link = np.zeros(n_vars)
            link[x0 + b * n_options + j], link[y0 + j] = 1.0, -1.0
            add(link, -np.inf, 0.0)
    shapes: dict[str, list[int]] = {}
    for j, option in enumerate(options):
        shapes.setdefault(option.shape, []).append(j)
    for members in shapes.values():  # one batch setting per shape
        if len(members) > 1:
            row = np.zeros(n_vars)
            row[[y0 + j for j in members]] = 1.0
            add(row, 0.0, 1.0)
    row = np.zeros(n_vars)  # between one and MAX_POOLS pools
    row[y0:x0] = 1.0
    add(row, 1.0, float(MAX_POOLS))
    return rows, low, high


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence HiGHS's C-level debug prints, which would corrupt `--json` output on stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
