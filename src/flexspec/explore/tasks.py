"""What the Dask workers run: plain functions of plain data, importable on any worker.

* :func:`screen_group`: the points that share one kernel set (model, N, density, seed, pruning
  scope): the kernels (synthesized once per machine, disk cache), then per point its design, its
  exact resources and its closed-form lower bounds; impossible and oversized designs are final
  rows here.
* :func:`evaluate_point`: the exact simulation of one screened point.

Both return rows for :mod:`flexspec.explore.journal`; an error of one point (a FlexSpec error or
a bug) becomes that point's ``failed`` row with the error on one line, and the rest continue.
"""

from __future__ import annotations

import os
import socket
import time

from ..errors import CapacityError, FlexSpecError, UsageError
from . import adapter
from .cache import store_at


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _error(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}" if not isinstance(exc, FlexSpecError) else str(exc)


def base_row(point: dict, group: dict) -> dict:
    return {"point_id": point["point_id"], "model": group["model"], "device": point["device"],
            "fft_size": group["fft_size"], "density_requested_fraction": group["density"],
            "prune_scope": group["prune_scope"], "seed": group["seed"], "arrays_requested": str(point["arrays"]),
            "pes": point["pes"], "banks": point["banks"], "ports": point["ports"], "broadcast": point["broadcast"],
            "flexspec_version": adapter.version()}


def screen_group(group: dict) -> list[dict]:
    """Screening rows of the points of one kernel set (see the module docstring)."""
    store = store_at(group.get("cache_dir"))
    net = group["network"]
    try:
        masks, src, _, hit = adapter.kernels_of(net, group["fft_size"], group["density"], group["seed"],
                                                group["prune_scope"], store)
        acc = None
        if group.get("accuracy"):
            acc = adapter.accuracy_of(net, group["fft_size"], group["density"], group["seed"], group["prune_scope"],
                                      store)
    except Exception as exc:  # noqa: BLE001 - every point of the group fails with the kernels' error
        return [{**base_row(p, group), "status": "failed", "error": f"kernels: {_error(exc)}", "worker": _worker()}
                for p in group["points"]]
    weights = "real" if src.get("is_real") else src.get("kind")
    rows = []
    resolved = {}  # the design resolution of `flexspec run`, shared by the points of this kernel set
    for p in group["points"]:
        row = {**base_row(p, group), "kernel_cache": "hit" if hit else "miss", "weights": weights,
               "density_used_fraction": float(src["density"]), "accuracy_fraction": acc, "worker": _worker()}
        device = group["devices"][p["device"]]
        try:
            config, res = adapter.design_of(device, group["fft_size"], p["arrays"], p["pes"], p["banks"], p["ports"],
                                            p["broadcast"], network=adapter.network_of(net))
        except UsageError as exc:
            rows.append({**row, "status": "invalid", "error": _error(exc)})
            continue
        except CapacityError as exc:
            rows.append({**row, "status": "does-not-fit", "error": _error(exc)})
            continue
        except Exception as exc:  # noqa: BLE001
            rows.append({**row, "status": "failed", "error": _error(exc)})
            continue
        lb = adapter.lower_bound(net, masks, config, device)
        row.update(adapter.resource_figures(res))
        row.update({"arrays": config.arrays, "fft_engines": config.fft_engines, "config": config,
                    "cycles_lower_bound": lb["cycles"], "latency_lower_bound_seconds": lb["cycles"] / device.clock_hz,
                    "traffic_lower_bound_bytes": lb["traffic_bytes"],
                    "conv_latency_lower_bound_seconds": lb["conv_cycles"] / device.clock_hz, "status": "screened",
                    "reproduce": adapter.reproduce_command(group["model"], group["device_labels"][p["device"]],
                                                           group["fft_size"], group["density"], group["seed"],
                                                           group["prune_scope"], config, net, masks, device,
                                                           resolved)})
        rows.append(row)
    return rows


def evaluate_point(task: dict) -> dict:
    """The exact simulation of one screened point: its row with status 'ok' or 'failed'."""
    row = dict(task["row"])
    row.pop("config", None)
    t0 = time.perf_counter()
    store = store_at(task.get("cache_dir"))
    sched = adapter.DiskScheduleCache(store)
    try:
        masks, _, _, hit = adapter.kernels_of(task["network"], row["fft_size"], row["density_requested_fraction"],
                                              row["seed"], row["prune_scope"], store)
        result = adapter.simulate(task["network"], task["device"], task["config"], masks, sched)
        fig = adapter.exact_figures(result)
        row.update(fig)
        row.update({"status": "ok", "error": None, "throughput_per_second": 1.0 / fig["latency_seconds"],
                    "kernel_cache": "hit" if hit else "miss"})
    except Exception as exc:  # noqa: BLE001 - a failing point is recorded, the rest continue
        row.update({"status": "failed", "error": _error(exc)})
    row.update({"schedule_cache_hits": sched.hits, "schedule_cache_misses": sched.misses,
                "simulate_seconds": time.perf_counter() - t0, "worker": _worker()})
    return row
