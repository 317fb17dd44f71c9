"""Design-space exploration at scale: models x devices x designs on Dask, resumable, screened,
with a Pareto front.

``explore(SPACE, out=DIR)`` (or ``flexspec explore SPACE.yaml --out DIR``): see
:mod:`flexspec.explore.run`.  The space file: :mod:`flexspec.explore.space`.  The results file
and its durability: :mod:`flexspec.explore.journal`.  Screening and the front:
:mod:`flexspec.explore.pareto`.  The only module calling the rest of FlexSpec:
:mod:`flexspec.explore.adapter`.
"""

from .journal import read_rows
from .pareto import front_mask, pareto_front
from .run import ExploreResult, explore
from .space import METRICS, Point, Space, load_space

__all__ = ["METRICS", "ExploreResult", "Point", "Space", "explore", "front_mask", "load_space", "pareto_front",
           "read_rows"]
