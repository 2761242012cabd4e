"""InfoNCE forward + backward at growing batch sizes: time, peak memory, GFLOP/s.

Compares, in one run on one machine:

- ``plain``: ``contrastkit`` :func:`info_nce` with ``chunked=False`` (the full masked table);
- ``chunked``: the memory-linear exact path (``chunked=True``);
- ``pml_supcon``: pytorch-metric-learning ``SupConLoss`` with instance ids as labels (the same
  mathematics: NT-Xent with 2 views per instance);
- ``pml_ntxent``: pytorch-metric-learning ``NTXentLoss`` (only where it fits in memory).

Each measurement runs in a fresh subprocess: first the timed calls, then one more call for the
memory. "Extra memory" is the peak resident memory during that call (``VmHWM``, reset through
``/proc/self/clear_refs``) minus the resident memory just before it (inputs allocated); for that
call glibc is told to map every block of 64 KiB or more on its own (``mallopt``) and to give
back its free memory first (``malloc_trim``), so the peak is the peak of live memory. The timed
calls run with the default allocator. GFLOP/s counts 6·N²·d (forward + backward of the two products), beside the
machine's fp32 matmul rate measured in the same run.

Usage::

    python benchmarks/loss_scaling.py                 # the full table (several minutes)
    python benchmarks/loss_scaling.py --sizes 1024 4096 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

IMPLS = ("plain", "chunked", "pml_supcon", "pml_ntxent")
# Rough extra-memory models (bytes) to skip runs that cannot fit; measured figures are printed.
MEMORY_MODEL = {
    "plain": lambda n: 21 * n * n,
    "chunked": lambda n: 4 * (1 << 23) * 4 + 64 * n * 128,
    "pml_supcon": lambda n: 45 * n * n,
    "pml_ntxent": lambda n: 17e9 * (n / 1024) ** 3,
}


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _one(impl: str, n: int, d: int, repeats: int, temperature: float) -> dict:
    import torch

    torch.manual_seed(0)
    x = torch.randn(n, d)
    ids = torch.arange(n // 2).repeat(2)
    if impl in ("plain", "chunked"):
        from contrastkit.losses.functional import info_nce

        chunked = impl == "chunked"

        def loss_fn(z):
            return info_nce(z, query_ids=ids, temperature=temperature, chunked=chunked)
    else:
        from pytorch_metric_learning import losses

        cls = losses.SupConLoss if impl == "pml_supcon" else losses.NTXentLoss
        pml = cls(temperature=temperature)

        def loss_fn(z):
            return pml(z, ids)

    times, value = [], None
    for _ in range(repeats + 1):  # the first call warms up
        z = x.clone().requires_grad_()
        t0 = time.perf_counter()
        loss = loss_fn(z)
        loss.backward()
        times.append(time.perf_counter() - t0)
        value = float(loss)
    best = min(times[1:]) if repeats else times[0]
    extra = _extra_memory(lambda: loss_fn(x.clone().requires_grad_()).backward())
    return {"seconds": best, "extra_bytes": extra, "loss": value}


def _extra_memory(fn) -> int:
    """Peak resident bytes added while ``fn`` runs (glibc: every block ≥ 64 KiB mmapped)."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 65536)  # M_MMAP_THRESHOLD: big blocks are mapped and unmapped alone
    libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident memory (VmHWM)
    base = _status_bytes("VmRSS")
    fn()
    return max(0, _status_bytes("VmHWM") - base)


def matmul_peak(size: int = 4096, repeats: int = 5) -> float:
    """Measured fp32 GEMM rate (GFLOP/s) on a size×size product, best of ``repeats``."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def run_child(impl: str, n: int, d: int, repeats: int, temperature: float) -> dict | None:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        impl,
        str(n),
        str(d),
        str(repeats),
        str(temperature),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["?"]
        return {"error": tail[0][:120]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 8192, 16384, 65536])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=0.1)
    ap.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    ap.add_argument("--memory-limit-gb", type=float, default=18.0)
    ap.add_argument("--max-seconds", type=float, default=120.0, help="skip runs predicted slower")
    ap.add_argument("--fits", type=int, default=131072, help="chunked N to check against 4 GiB")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        impl, n, d, r, t = args.child
        print(json.dumps(_one(impl, int(n), int(d), int(r), float(t))))
        return

    import torch

    peak = matmul_peak()
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"fp32 matmul peak (4096² GEMM): {peak:.1f} GFLOP/s")
    print(f"info_nce forward+backward, d={args.dim}, τ={args.temperature}, 2 views per id")
    header = f"{'N':>7} {'impl':>11} {'seconds':>9} {'extra MiB':>10} {'GFLOP/s':>8} {'% peak':>7}"
    print(header)
    results: dict[tuple[int, str], dict] = {}
    slow: dict[str, float] = {}
    for n in args.sizes:
        for impl in args.impls:
            need = MEMORY_MODEL[impl](n)
            # time grows ~N² (PML NTXent ~N³): skip when the last size predicts too long a run
            predicted = slow.get(impl, 0.0) * ((n / slow.get(impl + "_n", n)) ** 2)
            if need > args.memory_limit_gb * 1e9 or predicted > args.max_seconds:
                why = "memory" if need > args.memory_limit_gb * 1e9 else "time"
                print(f"{n:>7} {impl:>11}   skipped: predicted {why} beyond the limit")
                continue
            r = run_child(impl, n, args.dim, args.repeats, args.temperature)
            results[(n, impl)] = r
            if "error" in r:
                print(f"{n:>7} {impl:>11}   failed: {r['error']}")
                continue
            slow[impl], slow[impl + "_n"] = r["seconds"], n
            gflops = 6 * n * n * args.dim / r["seconds"] / 1e9
            print(
                f"{n:>7} {impl:>11} {r['seconds']:>9.3f} {r['extra_bytes'] / 2**20:>10.0f} "
                f"{gflops:>8.1f} {100 * gflops / peak:>6.1f}%"
            )
        sys.stdout.flush()

    def ratio(a: str, b: str, n: int, key: str) -> str:
        ra, rb = results.get((n, a)), results.get((n, b))
        if not ra or not rb or "error" in ra or "error" in rb or not rb[key]:
            return "n/a"
        return f"{ra[key] / rb[key]:.3f}"

    for n in args.sizes:
        if (n, "chunked") in results:
            print(
                f"N={n}: chunked/plain time {ratio('chunked', 'plain', n, 'seconds')}, "
                f"chunked/pml_supcon time {ratio('chunked', 'pml_supcon', n, 'seconds')}, "
                f"chunked/plain extra memory {ratio('chunked', 'plain', n, 'extra_bytes')}"
            )
    if args.fits:
        r = run_child("chunked", args.fits, args.dim, 0, args.temperature)
        if "error" in r:
            print(f"N={args.fits} chunked: failed: {r['error']}")
        else:
            print(
                f"N={args.fits} chunked (exact, one step): {r['seconds']:.1f} s, extra memory "
                f"{r['extra_bytes'] / 2**30:.2f} GiB (the float32 table alone would be "
                f"{4 * args.fits**2 / 2**30:.0f} GiB)"
            )


if __name__ == "__main__":
    main()
