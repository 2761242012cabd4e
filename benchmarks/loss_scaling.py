"""InfoNCE forward + backward at growing batch sizes: time, peak memory, GFLOP/s.

Compares, in one run on one machine:

- ``plain``: ``contrastkit`` :func:`info_nce` with ``chunked=False`` (the full masked table);
- ``chunked``: the memory-linear exact path (``chunked=True``);
- ``chunked_bf16``: the same path with ``precision="bf16"`` (bfloat16 block products);
- ``pml_supcon``: pytorch-metric-learning ``SupConLoss`` with instance ids as labels (the same
  mathematics: NT-Xent with 2 views per instance);
- ``pml_ntxent``: pytorch-metric-learning ``NTXentLoss`` (only where it fits in memory).

Each measurement runs in a fresh subprocess: first the timed calls, then one more call for the
memory. "Extra memory" is the peak resident memory during that call (``VmHWM``, reset through
``/proc/self/clear_refs``) minus the resident memory just before it (inputs allocated); for that
call glibc is told to map every block of 64 KiB or more on its own (``mallopt``) and to give
back its free memory first (``malloc_trim``), so the peak is the peak of live memory. The timed
calls run with the default allocator. GFLOP/s counts 6·N²·d (forward + backward of the two
products), beside the machine's fp32 (bf16 for ``chunked_bf16``) matmul rate measured in the
same run.

The bf16 section (``--bf16-at N``, default the issue's N = 8192) prints the forward + backward
time of ``chunked_bf16`` against ``chunked`` (fp32) at that N, and the bf16 loss's and
gradient's relative errors against the float64 chunked path, on the timing's inputs (``randn``)
and on two correlated views per id (unit rows, noise 0.8: a peaked softmax, as in training).

Usage::

    python benchmarks/loss_scaling.py                 # the full table (several minutes)
    python benchmarks/loss_scaling.py --sizes 1024 4096 --repeats 2
    python benchmarks/loss_scaling.py --sizes 8192 --impls chunked chunked_bf16 --fits 0
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

IMPLS = ("plain", "chunked", "chunked_bf16", "pml_supcon", "pml_ntxent")
#: Inputs of the bf16 accuracy check: the timing's randn rows, and two noisy views per id.
ACCURACY_INPUTS = ("randn", "views")
# Rough extra-memory models (bytes) to skip runs that cannot fit; measured figures are printed.
MEMORY_MODEL = {
    "plain": lambda n: 21 * n * n,
    "chunked": lambda n: 4 * (1 << 23) * 4 + 64 * n * 128,
    "chunked_bf16": lambda n: 4 * (1 << 23) * 4 + 80 * n * 128,
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
    if impl in ("plain", "chunked", "chunked_bf16"):
        from contrastkit.losses.functional import info_nce

        chunked = impl != "plain"
        precision = "bf16" if impl == "chunked_bf16" else "fp32"

        def loss_fn(z):
            return info_nce(
                z, query_ids=ids, temperature=temperature, chunked=chunked, precision=precision
            )
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


def _accuracy(inputs: str, n: int, d: int, temperature: float) -> dict:
    """Relative errors of the bf16 chunked loss and gradient against the float64 chunked path
    on (n, d) ``inputs`` (see :data:`ACCURACY_INPUTS`), two views per id."""
    import torch

    from contrastkit.losses.functional import info_nce

    torch.manual_seed(0)
    if inputs == "randn":
        x = torch.randn(n, d)
    else:
        base = torch.randn(n // 2, d)
        views = [base + 0.8 * torch.randn(n // 2, d) for _ in range(2)]
        x = torch.nn.functional.normalize(torch.cat(views), dim=1)
    ids = torch.arange(n // 2).repeat(2)

    def loss_and_grad(z: torch.Tensor, precision: str) -> tuple[float, torch.Tensor]:
        z = z.clone().requires_grad_()
        loss = info_nce(
            z, query_ids=ids, temperature=temperature, chunked=True, precision=precision
        )
        loss.backward()
        return float(loss), z.grad.double()

    ref, ref_grad = loss_and_grad(x.double(), "fp32")
    got, grad = loss_and_grad(x, "bf16")
    return {
        "loss": ref,
        "loss_rel_err": abs(got - ref) / abs(ref),
        "grad_rel_err": float((grad - ref_grad).norm() / ref_grad.norm()),
    }


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


def matmul_peak(size: int = 4096, repeats: int = 5, dtype: str = "float32") -> float:
    """Measured GEMM rate (GFLOP/s) on a size×size product in ``dtype``, best of ``repeats``."""
    import torch

    dt = getattr(torch, dtype)
    a, b = torch.randn(size, size, dtype=dt), torch.randn(size, size, dtype=dt)
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
    ap.add_argument(
        "--bf16-at",
        type=int,
        default=8192,
        help="N of the bf16 section: chunked_bf16/chunked time and errors vs float64 (0: skip)",
    )
    ap.add_argument("--peak-size", type=int, default=4096, help="size of the peak-rate GEMMs")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        impl, n, d, r, t = args.child
        if impl.startswith("accuracy:"):
            print(json.dumps(_accuracy(impl.split(":", 1)[1], int(n), int(d), float(t))))
        else:
            print(json.dumps(_one(impl, int(n), int(d), int(r), float(t))))
        return

    import torch

    peak = matmul_peak(args.peak_size)
    peaks = {"bf16": matmul_peak(args.peak_size, dtype="bfloat16")}
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(
        f"AMX tiles (torch.cpu._is_amx_tile_supported()): {torch.cpu._is_amx_tile_supported()}, "
        f"CPU capability: {torch.backends.cpu.get_cpu_capability()}"
    )
    for name, rate in (("fp32", peak), ("bf16", peaks["bf16"])):
        print(f"{name} matmul peak ({args.peak_size}² GEMM): {rate:.1f} GFLOP/s")
    print(f"info_nce forward+backward, d={args.dim}, τ={args.temperature}, 2 views per id")
    header = f"{'N':>7} {'impl':>12} {'seconds':>9} {'extra MiB':>10} {'GFLOP/s':>8} {'% peak':>7}"
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
                print(f"{n:>7} {impl:>12}   skipped: predicted {why} beyond the limit")
                continue
            r = run_child(impl, n, args.dim, args.repeats, args.temperature)
            results[(n, impl)] = r
            if "error" in r:
                print(f"{n:>7} {impl:>12}   failed: {r['error']}")
                continue
            slow[impl], slow[impl + "_n"] = r["seconds"], n
            gflops = 6 * n * n * args.dim / r["seconds"] / 1e9
            impl_peak = peaks["bf16"] if impl == "chunked_bf16" else peak
            print(
                f"{n:>7} {impl:>12} {r['seconds']:>9.3f} {r['extra_bytes'] / 2**20:>10.0f} "
                f"{gflops:>8.1f} {100 * gflops / impl_peak:>6.1f}%"
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
        if (n, "chunked_bf16") in results:
            print(
                f"N={n}: chunked_bf16/chunked time "
                f"{ratio('chunked_bf16', 'chunked', n, 'seconds')}, chunked_bf16/chunked extra "
                f"memory {ratio('chunked_bf16', 'chunked', n, 'extra_bytes')}"
            )
    if args.bf16_at:
        bf16_section(args, results)
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


def bf16_section(args: argparse.Namespace, results: dict[tuple[int, str], dict]) -> None:
    """``precision="bf16"`` at N = ``args.bf16_at``: time against the fp32 chunked path (from
    the table when it has them, else measured now) and relative errors against float64."""
    n = args.bf16_at
    print(f"bf16 chunked path at N={n}, d={args.dim}, τ={args.temperature}:")
    timed = {}
    for impl in ("chunked", "chunked_bf16"):
        r = results.get((n, impl)) or run_child(impl, n, args.dim, args.repeats, args.temperature)
        timed[impl] = r
        if "error" in r:
            print(f"  {impl}: failed: {r['error']}")
    if not any("error" in r for r in timed.values()):
        fp32, bf16 = timed["chunked"]["seconds"], timed["chunked_bf16"]["seconds"]
        print(
            f"  forward+backward: chunked_bf16 {bf16:.3f} s, chunked (fp32) {fp32:.3f} s, "
            f"ratio bf16/fp32 {bf16 / fp32:.3f}"
        )
    for inputs in ACCURACY_INPUTS:
        r = run_child(f"accuracy:{inputs}", n, args.dim, 0, args.temperature)
        if "error" in r:
            print(f"  against float64 ({inputs}): failed: {r['error']}")
            continue
        print(
            f"  against float64 ({inputs}, loss {r['loss']:.4f}): loss relative error "
            f"{r['loss_rel_err']:.2e}, gradient relative error (norm) {r['grad_rel_err']:.2e}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
