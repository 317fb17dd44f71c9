"""Conflict-free scheduling of sparse spectral kernel reads from banked on-chip memory.

P PEs process P sparse kernels of one input channel at once, all reading the same transformed
tile, which sits in B banks of R read ports.  This package builds the bank map, groups kernels,
schedules the reads of every group (``optimal`` reaches the lower bound by bipartite edge
colouring) and validates schedules independently.
"""

from __future__ import annotations

from .bounds import bank_loads, lower_bounds, pe_loads
from .grouping import GROUPINGS, LayerSchedule, group_kernels, schedule_layer
from .model import BANK_MAPS, METHODS, BankConfig, Schedule, ScheduleError, bank_addresses, bank_map
from .schedulers import check_mask, schedule_groups
from .validate import validate

__all__ = [
    "BANK_MAPS", "GROUPINGS", "METHODS", "BankConfig", "LayerSchedule", "Schedule", "ScheduleError",
    "bank_addresses", "bank_loads", "bank_map", "check_mask", "group_kernels", "lower_bounds", "pe_loads",
    "schedule_groups", "schedule_layer", "validate",
]
