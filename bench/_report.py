"""From raw figures to the verdict: latency a proxy adds over the direct path, targets met, errors seen."""

from __future__ import annotations

#: The issue's targets, for one gateway worker on one core with tracing and records on.
TARGETS = {"added_c1_p50_ms": 1.0, "added_c1_p99_ms": 2.0, "saturation_rps": 2000.0}
#: A phase in which other programs kept more than this many cores busy is flagged as noisy.
NOISY_FOREIGN_CORES = 0.25
_POINTS = ("p50", "p90", "p99")


PHASES = ("c1", "c4", "stream_c1", "saturation")
#: Counters that add up over rounds; everything else not a phase is taken from the last round that has it.
_SUMMED = ("records_written", "spans_exported")


def merge_rounds(runs: list[dict]) -> dict:
    """One target's rounds as one result: per phase, the round in which other programs used the least CPU."""
    merged: dict = {}
    chosen: dict[str, int] = {}
    for phase in PHASES:
        foreign = [(r[phase]["machine"].get("foreign_cores", 0.0), i) for i, r in enumerate(runs) if phase in r]
        if foreign:
            best = min(foreign)[1]
            merged[phase], chosen[phase] = runs[best][phase], best + 1
    for run in runs:
        for key, value in run.items():
            if key in PHASES:
                continue
            if key in _SUMMED and isinstance(value, int | float):
                merged[key] = merged.get(key, 0) + value
            else:
                merged[key] = value
    if len(runs) > 1:
        merged["rounds"] = {
            "count": len(runs),
            "chosen": chosen,
            "foreign_cores": {p: [r[p]["machine"].get("foreign_cores") for r in runs if p in r] for p in PHASES},
        }
    return merged


def _minus(a: dict, b: dict) -> dict[str, float | None]:
    return {p: round(a[p] - b[p], 3) if p in a and p in b else None for p in _POINTS}


def added(target: dict, direct: dict) -> dict:
    """Per percentile, the target's latency minus the direct path's (ms); throughput as a share of direct."""
    sat_t, sat_d = target["saturation"]["requests_per_s"], direct["saturation"]["requests_per_s"]
    return {
        "c1_ms": _minus(target["c1"]["latency_ms"], direct["c1"]["latency_ms"]),
        "c4_ms": _minus(target["c4"]["latency_ms"], direct["c4"]["latency_ms"]),
        "stream_ttft_ms": _minus(target["stream_c1"]["ttft_ms"], direct["stream_c1"]["ttft_ms"]),
        "stream_total_ms": _minus(target["stream_c1"]["stream_ms"], direct["stream_c1"]["stream_ms"]),
        "saturation_share_of_direct": round(sat_t / sat_d, 3) if sat_d else None,
    }


def sustainable_rps(target: dict) -> float:
    """Throughput at saturation, lowered by the writing the gateway deferred meanwhile (``deferred``), when it
    had to defer any: the rate one core sustains doing both."""
    saturation = target["saturation"]
    return (saturation.get("deferred") or {}).get("sustainable_requests_per_s") or saturation["requests_per_s"]


def targets(target: dict, extra: dict) -> dict:
    values = {
        "added_c1_p50_ms": extra["c1_ms"]["p50"],
        "added_c1_p99_ms": extra["c1_ms"]["p99"],
        "saturation_rps": sustainable_rps(target),
    }
    out = {}
    for name, limit in TARGETS.items():
        value = values[name]
        met = None if value is None else (value >= limit if name == "saturation_rps" else value <= limit)
        out[name] = {"value": value, "target": limit, "met": met}
    return out


def errors(results: dict) -> dict[str, dict]:
    """Every failed request by target and phase; must be empty for the figures to mean anything."""
    out: dict[str, dict] = {}
    for target, phases in results.items():
        for phase, figures in phases.items():
            if not isinstance(figures, dict):
                continue
            bad = dict(figures.get("errors") or {})
            for key in ("non_2xx", "socket_errors"):
                if figures.get(key):
                    bad[key] = figures[key]
            if bad:
                out.setdefault(target, {})[phase] = bad
    return out


def noisy_phases(results: dict) -> list[str]:
    noisy = []
    for target, phases in results.items():
        for phase, figures in phases.items():
            if isinstance(figures, dict):
                foreign = (figures.get("machine") or {}).get("foreign_cores", 0.0)
                if foreign > NOISY_FOREIGN_CORES:
                    noisy.append(f"{target}.{phase} (other programs used {foreign} cores)")
    return noisy


def summary(results: dict) -> dict:
    """The headline figures of each target, one line each, for people reading the JSON."""
    out = {}
    for name, r in results.items():
        out[name] = {
            "c1_p50_ms": r["c1"]["latency_ms"].get("p50"),
            "c1_p99_ms": r["c1"]["latency_ms"].get("p99"),
            "c4_p50_ms": r["c4"]["latency_ms"].get("p50"),
            "c4_p99_ms": r["c4"]["latency_ms"].get("p99"),
            "stream_ttft_p50_ms": r["stream_c1"]["ttft_ms"].get("p50"),
            "stream_ttft_p99_ms": r["stream_c1"]["ttft_ms"].get("p99"),
            "saturation_rps": r["saturation"]["requests_per_s"],
            "saturation_sustainable_rps": sustainable_rps(r),
            "saturation_p50_ms": r["saturation"]["latency_ms"].get("p50"),
            "saturation_p99_ms": r["saturation"]["latency_ms"].get("p99"),
            "saturation_server_cpu_us_per_request": r["saturation"]["machine"].get("target_cpu_us_per_request"),
            "c1_server_cpu_us_per_request": r["c1"]["machine"].get("target_cpu_us_per_request"),
        }
    return out


def build(results: dict, direct_key: str = "direct") -> dict:
    direct = results[direct_key]
    report: dict = {"summary": summary(results), "added": {}, "targets": {}}
    for name, r in results.items():
        if name == direct_key:
            continue
        report["added"][name] = added(r, direct)
        if name.startswith("interlock"):
            report["targets"][name] = targets(r, report["added"][name])
    if "litellm" in results and "interlock_sqlite" in results:
        lite, ours = results["litellm"]["saturation"]["requests_per_s"], results["interlock_sqlite"]
        report["interlock_vs_litellm_throughput"] = (
            round(ours["saturation"]["requests_per_s"] / lite, 1) if lite else None
        )
    if "thin_proxy" in results and "interlock_sqlite" in results:
        thin, ours = results["thin_proxy"]["saturation"], results["interlock_sqlite"]["saturation"]
        report["interlock_share_of_thin_proxy_throughput"] = (
            round(ours["requests_per_s"] / thin["requests_per_s"], 3) if thin["requests_per_s"] else None
        )
    report["errors"] = errors(results)
    report["noisy_phases"] = noisy_phases(results)
    return report
