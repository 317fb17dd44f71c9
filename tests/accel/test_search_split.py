"""The search's array count: besides the most arrays that fit, the count just below it that splits
best over kernel groups (``search.arrays_to_try``), ranked by the closed form at its best array
split (``search.estimate_cycles``).  Measured (BENCHMARKS "Chained cin blocks and a split-aware
array count"): VGG16 on the U200 simulates 12.73 ms at 73 x 8 (prime) and 7.48 ms at 72 x 8."""

from __future__ import annotations

from dataclasses import replace

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.search import SPLIT_SLACK, arrays_to_try, estimate_cycles
from flexspec.devices import load_device
from flexspec.workload.zoo import get_network


def _divisors(n: int) -> int:
    return sum(n % d == 0 for d in range(1, n + 1))


def test_arrays_to_try_is_the_best_splitting_count_within_the_slack():
    for most in range(1, 240):
        got = arrays_to_try(most, "tiles+groups")
        window = [n for n in range(1, most) if n >= most * (1 - SPLIT_SLACK)]
        best = max(window, key=lambda n: (_divisors(n), n), default=None)
        want = (most,) if best is None or _divisors(best) <= _divisors(most) or most < 4 else (most, best)
        assert got == want, most
        assert arrays_to_try(most, "tiles") == (most,)  # no group split: the count does not matter
    assert arrays_to_try(73, "tiles+groups") == (73, 72)


def test_estimate_ranks_a_splitting_count_above_a_prime_one():
    """The closed form at the best split: 72 arrays (8 x 9) before 73 (prime), as the simulator
    ranks them, though 73 has more PEs; before the split-aware estimate it ranked 73 first."""
    net = get_network("vgg16")
    masks, _, _ = resolve_kernels(net, None)
    dev = load_device("u200")
    cfg = AcceleratorConfig(arrays=73, pes=8, banks=20, ports=1, fft_engines=32, ifft_engines=32, fft_size=8,
                            readout_rows=1)
    memo: dict = {}
    prime, split = (estimate_cycles(net, masks, replace(cfg, arrays=a), dev, memo) for a in (73, 72))
    assert split < 0.8 * prime
    assert estimate_cycles(net, masks, replace(cfg, arrays=73, array_split="tiles"), dev, memo) >= prime
