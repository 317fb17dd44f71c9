"""FlexSpec against its baselines on the same hardware and kernels (:class:`Comparison`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .results import FORMAT_VERSION, NetworkResult, _plain
from .spatial import conv_only

#: The fixed-dataflow baselines (``flexspec.dataflow.PLANS`` other than 'flexible').
BASELINES = ("kernel-reuse", "activation-reuse")
#: The headline baseline: prior spectral accelerators keep the kernels on chip and stream tiles.
HEADLINE_BASELINE = "kernel-reuse"


@dataclass(frozen=True)
class Comparison:
    """The FlexSpec design and its baselines on the same hardware and kernels -- the one
    definition every command uses (:func:`simulate_designs`):

    * ``baselines[plan]``: the same design with one fixed dataflow (``plan``) everywhere and
      in-order schedules (what prior spectral accelerators do);
    * ``dataflow_only[plan]``: the same design with that fixed dataflow and FlexSpec's own
      (optimal conflict-free) schedules -- so the total speed-up splits exactly into what the
      dataflow gives (``dataflow_only / flexspec``) and what the scheduler gives
      (``baselines / dataflow_only``);
    * ``spatial``: the accelerators a user would build instead on the same board (dense and
      sparse spatial arrays, :func:`flexspec.accel.spatial.spatial_accelerator`).

    With ``whole_network`` every layer is counted (FC, adds, concats); else the convolutions."""

    flexspec: NetworkResult
    baselines: dict  # plan name -> NetworkResult
    analysis_seconds: float = 0.0
    dataflow_only: dict = field(default_factory=dict)  # plan name -> NetworkResult
    spatial: dict = field(default_factory=dict)  # name -> SpatialAccelerator
    notes: tuple = ()
    whole_network: bool = False

    @property
    def headline(self) -> NetworkResult:
        return self.baselines[HEADLINE_BASELINE]

    def speedup(self, baseline: str = HEADLINE_BASELINE) -> float:
        return self.baselines[baseline].cycles / self.flexspec.cycles

    def dataflow_speedup(self, baseline: str = HEADLINE_BASELINE) -> float:
        """Fixed dataflow -> flexible dataflow, both with optimal schedules."""
        return self.dataflow_only[baseline].cycles / self.flexspec.cycles

    def scheduler_speedup(self, baseline: str = HEADLINE_BASELINE) -> float:
        """In-order -> optimal schedules, both with the fixed dataflow."""
        return self.baselines[baseline].cycles / self.dataflow_only[baseline].cycles

    def traffic_reduction(self, baseline: str = HEADLINE_BASELINE) -> float:
        return 1 - self.flexspec.traffic_bytes / self.baselines[baseline].traffic_bytes

    def speedup_split(self) -> dict:
        """plan -> total / dataflow / scheduler speed-up ratios (:func:`speedup_split`)."""
        return speedup_split(self.flexspec, self.dataflow_only, self.baselines)

    def to_dict(self) -> dict:
        return _plain({
            "format_version": FORMAT_VERSION,
            "whole_network": self.whole_network,
            "flexspec": self.flexspec.to_dict(),
            "baselines": {k: v.to_dict() for k, v in self.baselines.items()},
            "dataflow_only_baselines": {k: v.to_dict() for k, v in self.dataflow_only.items()},
            "spatial_accelerators": {k: v.to_dict() for k, v in self.spatial.items()},
            "headline_baseline": HEADLINE_BASELINE,
            "headline_reason": "prior spectral accelerators keep kernels on chip and stream input tiles "
                               "(one fixed kernel-reuse dataflow) with in-order reads",
            "speedup": {k: self.speedup(k) for k in self.baselines},
            "speedup_split": self.speedup_split(),
            "traffic_reduction": {k: self.traffic_reduction(k) for k in self.baselines},
            "analysis_seconds": self.analysis_seconds,
            "notes": list(self.notes),
        })


def speedup_split(flexspec: NetworkResult, dataflow_only: dict, baselines: dict) -> dict:
    """plan -> {total, dataflow, scheduler} speed-up ratios, total = dataflow x scheduler (see
    :class:`Comparison`), over all layers of the results and over their convolutions only."""
    out = {}
    for name, b in baselines.items():
        d = dataflow_only.get(name)
        if d is None:
            continue
        f_c, d_c, b_c = (conv_only(x)["cycles"] for x in (flexspec, d, b))
        out[name] = {"total_ratio": b.cycles / flexspec.cycles, "dataflow_ratio": d.cycles / flexspec.cycles,
                     "scheduler_ratio": b.cycles / d.cycles, "conv_total_ratio": b_c / max(1, f_c),
                     "conv_dataflow_ratio": d_c / max(1, f_c), "conv_scheduler_ratio": b_c / max(1, d_c)}
    return out
