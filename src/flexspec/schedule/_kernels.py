"""numba kernels: one loop over kernel groups, each group scheduled by a small compiled routine.

Every kernel takes the mask ``[G, P, F]`` (uint8 view of the boolean mask), the bank map, the
ports per bank and ``offsets`` (int64 [G+1], first read of each group in the output) and fills
``out_pe``, ``out_index``, ``out_cycle`` (int32 [nnz], sorted by (cycle, pe) inside each group)
and ``out_cycles`` (int64 [G], the makespan of each group).

Groups are processed in contiguous chunks, each with its own scratch memory (serial: on the
2-core target machine ``parallel=True`` gave no speed-up and quadrupled the compile time).
Compiled code is cached on disk (``cache=True``); the first call compiles in a few seconds.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_NUM_CHUNKS = 64


def _chunks(num_groups: int) -> np.ndarray:
    n = max(1, min(_NUM_CHUNKS, num_groups))
    return np.linspace(0, num_groups, n + 1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# optimal: bipartite edge colouring (Konig), PEs x bank ports
# --------------------------------------------------------------------------------------------
@njit(cache=True)
def colour_groups(mask, bank_of, ports, num_banks, lower_bound, offsets, max_colours, bounds,
                  out_pe, out_index, out_cycle, out_cycles):
    num_groups, num_pes, num_freq = mask.shape
    num_ports = num_banks * ports
    max_edges = num_pes * num_freq
    for chunk in range(bounds.size - 1):
        pe_col = np.empty((num_pes, max_colours), np.int64)
        port_col = np.empty((num_ports, max_colours), np.int64)
        e_pe = np.empty(max_edges, np.int64)
        e_port = np.empty(max_edges, np.int64)
        e_f = np.empty(max_edges, np.int64)
        e_col = np.empty(max_edges, np.int64)
        bank_count = np.empty(num_banks, np.int64)
        path = np.empty(num_pes + num_ports + 2, np.int64)
        table = np.empty((max_colours, num_pes), np.int64)
        for g in range(bounds[chunk], bounds[chunk + 1]):
            colours = lower_bound[g]
            # edges, PE-major; bank b's reads go round-robin to its ports b*R .. b*R+R-1, so every
            # port gets ceil or floor of (reads of b) / R edges
            bank_count[:] = 0
            ne = 0
            for p in range(num_pes):
                for f in range(num_freq):
                    if mask[g, p, f]:
                        b = bank_of[f]
                        e_pe[ne] = p
                        e_port[ne] = b * ports + bank_count[b] % ports
                        bank_count[b] += 1
                        e_f[ne] = f
                        ne += 1
            pe_col[:, :colours] = -1
            port_col[:, :colours] = -1
            for e in range(ne):
                u = e_pe[e]
                v = e_port[e]
                a = 0
                while pe_col[u, a] != -1:
                    a += 1
                if port_col[v, a] != -1:
                    c = 0
                    while port_col[v, c] != -1:
                        c += 1
                    # alternating a/c path from v; swapping its colours frees a at v (it never reaches u)
                    length = 0
                    x = v
                    on_port_side = True
                    cur = a
                    while True:
                        if on_port_side:
                            nxt = port_col[x, cur]
                        else:
                            nxt = pe_col[x, cur]
                        if nxt == -1:
                            break
                        path[length] = nxt
                        length += 1
                        x = e_pe[nxt] if on_port_side else e_port[nxt]
                        on_port_side = not on_port_side
                        cur = c if cur == a else a
                    for k in range(length):
                        ed = path[k]
                        old = e_col[ed]
                        pe_col[e_pe[ed], old] = -1
                        port_col[e_port[ed], old] = -1
                    for k in range(length):
                        ed = path[k]
                        new = c if e_col[ed] == a else a
                        e_col[ed] = new
                        pe_col[e_pe[ed], new] = ed
                        port_col[e_port[ed], new] = ed
                e_col[e] = a
                pe_col[u, a] = e
                port_col[v, a] = e
            # emit in (cycle, pe) order
            used = 0
            table[:colours, :] = -1
            for e in range(ne):
                table[e_col[e], e_pe[e]] = e_f[e]
                if e_col[e] + 1 > used:
                    used = e_col[e] + 1
            out_cycles[g] = used
            pos = offsets[g]
            for t in range(used):
                for p in range(num_pes):
                    if table[t, p] >= 0:
                        out_pe[pos] = p
                        out_index[pos] = table[t, p]
                        out_cycle[pos] = t
                        pos += 1


# --------------------------------------------------------------------------------------------
# inorder: every PE offers its next non-zero each cycle; ports serve in PE order; others stall
# --------------------------------------------------------------------------------------------
@njit(cache=True)
def inorder_groups(mask, bank_of, ports, num_banks, broadcast, offsets, bounds,
                   out_pe, out_index, out_cycle, out_cycles):
    num_groups, num_pes, num_freq = mask.shape
    for chunk in range(bounds.size - 1):
        nxt = np.empty(num_pes, np.int64)
        used_ports = np.empty(num_banks, np.int64)
        stamp = np.empty(num_freq, np.int64)
        for g in range(bounds[chunk], bounds[chunk + 1]):
            left = 0
            for p in range(num_pes):
                f = 0
                while f < num_freq and not mask[g, p, f]:
                    f += 1
                nxt[p] = f
                for k in range(num_freq):
                    if mask[g, p, k]:
                        left += 1
            stamp[:] = -1
            pos = offsets[g]
            t = 0
            while left > 0:
                used_ports[:] = 0
                for p in range(num_pes):
                    f = nxt[p]
                    if f >= num_freq:
                        continue
                    b = bank_of[f]
                    if broadcast and stamp[f] == t:
                        pass  # same address already being read in this bank: shares the port
                    elif used_ports[b] < ports:
                        used_ports[b] += 1
                        stamp[f] = t
                    else:
                        continue  # collision: this PE stalls and retries next cycle
                    out_pe[pos] = p
                    out_index[pos] = f
                    out_cycle[pos] = t
                    pos += 1
                    left -= 1
                    f += 1
                    while f < num_freq and not mask[g, p, f]:
                        f += 1
                    nxt[p] = f
                t += 1
            out_cycles[g] = t


# --------------------------------------------------------------------------------------------
# greedy: cycle-by-cycle list scheduling
# --------------------------------------------------------------------------------------------
@njit(cache=True)
def greedy_groups(mask, bank_of, ports, num_banks, broadcast, offsets, bounds,
                  out_pe, out_index, out_cycle, out_cycles):
    """Each cycle, PEs in decreasing order of remaining work each take, among their pending
    frequencies, one whose address is already being read this cycle (broadcast only, free),
    else one in the bank with the most pending reads that still has a free port."""
    num_groups, num_pes, num_freq = mask.shape
    for chunk in range(bounds.size - 1):
        pending = np.empty((num_pes, num_freq), np.bool_)
        rem = np.empty(num_pes, np.int64)
        order = np.empty(num_pes, np.int64)
        bank_rem = np.empty(num_banks, np.int64)
        used_ports = np.empty(num_banks, np.int64)
        stamp = np.empty(num_freq, np.int64)
        for g in range(bounds[chunk], bounds[chunk + 1]):
            bank_rem[:] = 0
            left = 0
            for p in range(num_pes):
                rem[p] = 0
                for f in range(num_freq):
                    v = mask[g, p, f] != 0
                    pending[p, f] = v
                    if v:
                        rem[p] += 1
                        bank_rem[bank_of[f]] += 1
                left += rem[p]
            stamp[:] = -1
            pos = offsets[g]
            t = 0
            while left > 0:
                used_ports[:] = 0
                # PEs by decreasing remaining work (insertion sort, stable)
                for p in range(num_pes):
                    k = p
                    while k > 0 and rem[order[k - 1]] < rem[p]:
                        order[k] = order[k - 1]
                        k -= 1
                    order[k] = p
                start = pos
                for k in range(num_pes):
                    p = order[k]
                    if rem[p] == 0:
                        continue
                    best = -1
                    best_key = -1
                    for f in range(num_freq):
                        if not pending[p, f]:
                            continue
                        b = bank_of[f]
                        if broadcast and stamp[f] == t:
                            key = 1 << 40
                        elif used_ports[b] < ports:
                            key = bank_rem[b]
                        else:
                            continue
                        if key > best_key:
                            best_key = key
                            best = f
                    if best < 0:
                        continue
                    b = bank_of[best]
                    if not (broadcast and stamp[best] == t):
                        used_ports[b] += 1
                        stamp[best] = t
                    pending[p, best] = False
                    rem[p] -= 1
                    bank_rem[b] -= 1
                    left -= 1
                    out_pe[pos] = p
                    out_index[pos] = best
                    out_cycle[pos] = t
                    pos += 1
                # sort this cycle's reads by PE (insertion sort on a handful of entries)
                for i in range(start + 1, pos):
                    pp = out_pe[i]
                    ff = out_index[i]
                    j = i
                    while j > start and out_pe[j - 1] > pp:
                        out_pe[j] = out_pe[j - 1]
                        out_index[j] = out_index[j - 1]
                        j -= 1
                    out_pe[j] = pp
                    out_index[j] = ff
                t += 1
            out_cycles[g] = t


# --------------------------------------------------------------------------------------------
# broadcast-aware: per cycle, greedy cover of PEs by served addresses (P <= 64, bit masks)
# --------------------------------------------------------------------------------------------
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@njit(cache=True)
def _popcount(x):
    """Set bits of a uint64 (SWAR)."""
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


@njit(cache=True)
def broadcast_groups(mask, bank_of, ports, num_banks, offsets, bounds,
                     out_pe, out_index, out_cycle, out_cycles, variant):
    """Each cycle, pick addresses one at a time (at most ``ports`` per bank); every still-idle PE
    that needs a picked address reads it (broadcast).  The next address is the one that covers
    most PEs on the critical path (remaining reads == remaining bound), then that completes an
    address of a bottleneck bank, then that covers most idle PEs; ``variant`` > 0 breaks the
    remaining ties pseudo-randomly (a different way per variant), 0 by lowest frequency."""
    num_groups, num_pes, num_freq = mask.shape
    one = np.uint64(1)
    zero = np.uint64(0)
    for chunk in range(bounds.size - 1):
        need = np.empty(num_freq, np.uint64)
        rem = np.empty(num_pes, np.int64)
        distinct = np.empty(num_banks, np.int64)
        free_ports = np.empty(num_banks, np.int64)
        picked = np.empty(num_freq, np.bool_)
        table = np.empty(num_pes, np.int64)
        for g in range(bounds[chunk], bounds[chunk + 1]):
            distinct[:] = 0
            for p in range(num_pes):
                rem[p] = 0
            left = 0
            for f in range(num_freq):
                m = zero
                for p in range(num_pes):
                    if mask[g, p, f]:
                        m |= one << np.uint64(p)
                        rem[p] += 1
                        left += 1
                need[f] = m
                if m != zero:
                    distinct[bank_of[f]] += 1
            pos = offsets[g]
            t = 0
            while left > 0:
                bound = 0
                for p in range(num_pes):
                    if rem[p] > bound:
                        bound = rem[p]
                bank_bound = 0
                for b in range(num_banks):
                    v = (distinct[b] + ports - 1) // ports
                    if v > bank_bound:
                        bank_bound = v
                if bank_bound > bound:
                    bound = bank_bound
                crit = zero
                idle = zero
                for p in range(num_pes):
                    if rem[p] > 0:
                        idle |= one << np.uint64(p)
                        if rem[p] == bound:
                            crit |= one << np.uint64(p)
                for b in range(num_banks):
                    free_ports[b] = ports
                picked[:] = False
                for p in range(num_pes):
                    table[p] = -1
                while idle != zero:
                    best = -1
                    best_key = 0
                    for f in range(num_freq):
                        m = need[f] & idle
                        if m == zero or picked[f]:
                            continue
                        b = bank_of[f]
                        if free_ports[b] == 0:
                            continue
                        completes = 1 if m == need[f] else 0
                        heavy = 1 if (completes == 1 and (distinct[b] + ports - 1) // ports == bound) else 0
                        key = ((_popcount(m & crit) << 24) | (heavy << 20) | (_popcount(m) << 8)
                               | (completes << 7) | min(distinct[b], 127))
                        if variant > 0:  # deterministic pseudo-random tie-break, different per variant
                            h = (f * 2654435761 + t * 40503 + g * 97 + variant * 7919) % 1000003
                            key = (key << 8) | (h & 255)
                        if key > best_key:
                            best_key = key
                            best = f
                    if best < 0:
                        break
                    b = bank_of[best]
                    m = need[best] & idle
                    picked[best] = True
                    free_ports[b] -= 1
                    need[best] &= ~m
                    idle &= ~m
                    if need[best] == zero:
                        distinct[b] -= 1
                    for p in range(num_pes):
                        if (m >> np.uint64(p)) & one:
                            table[p] = best
                            rem[p] -= 1
                            left -= 1
                for p in range(num_pes):
                    if table[p] >= 0:
                        out_pe[pos] = p
                        out_index[pos] = table[p]
                        out_cycle[pos] = t
                        pos += 1
                t += 1
            out_cycles[g] = t


# --------------------------------------------------------------------------------------------
# bank-aware grouping: swap kernels between groups of one input channel to cut the group bounds
# --------------------------------------------------------------------------------------------
@njit(cache=True)
def _group_bound(loads, nnz_slots, ports):
    best = 0
    for v in nnz_slots:
        if v > best:
            best = v
    for v in loads:
        c = (v + ports - 1) // ports
        if c > best:
            best = c
    return best


@njit(cache=True)
def bank_aware_swaps(slots, kb, nnz, num_pes, ports, passes):
    """Improve a grouping in place.

    ``slots`` int64 [Cin, S] (S = groups per channel * P): output channel in each slot, -1 idle;
    slot s belongs to group s // P.  ``kb`` [Cin, Cout, B]: reads of each kernel per bank;
    ``nnz`` [Cin, Cout].  For each group whose bank part binds its lower bound, try moving its
    kernels with the most reads in the heaviest bank against, in every other group of the same
    channel, the kernel with the fewest reads there; accept a swap when it lowers the sum of the two
    groups' bounds, or keeps it and lowers their sum of squared bank loads.  Returns the swaps made.
    """
    cin, num_slots = slots.shape
    banks = kb.shape[2]
    groups = num_slots // num_pes
    loads = np.zeros((groups, banks), np.int64)
    pe_n = np.zeros((groups, num_pes), np.int64)
    new_a = np.empty(banks, np.int64)
    new_b = np.empty(banks, np.int64)
    pa = np.empty(num_pes, np.int64)
    pb = np.empty(num_pes, np.int64)
    swaps = 0
    for i in range(cin):
        loads[:, :] = 0
        pe_n[:, :] = 0
        for s in range(num_slots):
            j = slots[i, s]
            if j >= 0:
                g = s // num_pes
                pe_n[g, s % num_pes] = nnz[i, j]
                for b in range(banks):
                    loads[g, b] += kb[i, j, b]
        for _ in range(passes):
            changed = False
            for ga in range(groups):
                for _try in range(num_pes):  # keep improving this group while swaps are found
                    bound_a = _group_bound(loads[ga], pe_n[ga], ports)
                    heavy = 0
                    for b in range(banks):
                        if loads[ga, b] > loads[ga, heavy]:
                            heavy = b
                    if (loads[ga, heavy] + ports - 1) // ports < bound_a:
                        break  # the PE part binds: no swap can lower this group's bound
                    first_sx = -1
                    done = False
                    for _rank in range(2):  # the two kernels of A with the most reads in the heavy bank
                        sx = -1
                        top = 0
                        for p in range(num_pes):
                            j = slots[i, ga * num_pes + p]
                            if j >= 0 and kb[i, j, heavy] > top:
                                if ga * num_pes + p == first_sx:
                                    continue
                                top = kb[i, j, heavy]
                                sx = ga * num_pes + p
                        if sx < 0:
                            break
                        first_sx = sx
                        x = slots[i, sx]
                        for gb in range(groups):
                            if gb == ga:
                                continue
                            sy = -1
                            low = top
                            for p in range(num_pes):
                                j = slots[i, gb * num_pes + p]
                                v = kb[i, j, heavy] if j >= 0 else 0
                                if v < low:
                                    low = v
                                    sy = gb * num_pes + p
                            if sy < 0:
                                continue
                            y = slots[i, sy]
                            bound_b = _group_bound(loads[gb], pe_n[gb], ports)
                            sq_old = 0
                            sq_new = 0
                            for b in range(banks):
                                kx = kb[i, x, b]
                                ky = kb[i, y, b] if y >= 0 else 0
                                new_a[b] = loads[ga, b] - kx + ky
                                new_b[b] = loads[gb, b] + kx - ky
                                sq_old += loads[ga, b] * loads[ga, b] + loads[gb, b] * loads[gb, b]
                                sq_new += new_a[b] * new_a[b] + new_b[b] * new_b[b]
                            pa[:] = pe_n[ga]
                            pb[:] = pe_n[gb]
                            ny = nnz[i, y] if y >= 0 else 0
                            pa[sx % num_pes] = ny
                            pb[sy % num_pes] = nnz[i, x]
                            delta = (_group_bound(new_a, pa, ports) + _group_bound(new_b, pb, ports)
                                     - bound_a - bound_b)
                            if delta < 0 or (delta == 0 and sq_new < sq_old):
                                loads[ga, :] = new_a
                                loads[gb, :] = new_b
                                pe_n[ga, :] = pa
                                pe_n[gb, :] = pb
                                slots[i, sx] = y
                                slots[i, sy] = x
                                swaps += 1
                                changed = True
                                done = True
                                break
                        if done:
                            break
                    if not done:
                        break
            if not changed:
                break
    return swaps
