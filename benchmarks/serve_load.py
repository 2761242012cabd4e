"""A bounded load test of ``contrastkit serve`` on 127.0.0.1: 8 concurrent clients send 2,000
text queries in all to ``/search`` over an index of ≥ 10,000 texts; p50 / p95 / max latency
and errors, measured by the clients (each request's full round trip).

The index: the 10,568 movie-review snippets shipped with vaderSentiment (``movie-snippets``),
embedded by all-MiniLM-L6-v2; built once into ``--index`` (kept between runs). The queries:
2,000 snippets drawn (seeded) from the same set, cut to their first 8 words. The server is
the real one (``contrastkit serve`` in its own process, uvicorn); the clients are threads with
one ``httpx.Client`` each. Goal (issue 24): p95 < 100 ms, 0 errors.

Usage::

    python benchmarks/serve_load.py [--index /tmp/movies_index] [--clients 8] [--queries 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", default="/tmp/movies_index")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    import httpx
    import torch

    from contrastkit.data.text import load_text_data

    exe = [sys.executable, "-m", "contrastkit"]
    index = Path(args.index)
    if not (index / "index.json").is_file():
        t0 = time.perf_counter()
        subprocess.run(
            [*exe, "index", "--data", "movie-snippets", "--encoder", "minilm", "--out", str(index)],
            check=True,
        )
        print(f"built the index in {time.perf_counter() - t0:.0f} s", flush=True)
    texts = list(load_text_data("movie-snippets").texts)
    rng = random.Random(0)
    queries = [" ".join(rng.choice(texts).split()[:8]) for _ in range(args.queries)]
    port = free_port()
    server = subprocess.Popen(
        [*exe, "serve", "--index", str(index), "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            try:
                info = httpx.get(f"{url}/info", timeout=2).json()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(
                        f"the server did not start: {server.stderr.read()}"
                    ) from None
                time.sleep(0.5)
        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, AMX "
            f"{torch.cpu._is_amx_tile_supported()}; index: {info['rows']} texts, {info['dim']}-d, "
            f"{info['backend']}; {args.clients} clients, {args.queries} queries, k={args.k}",
            flush=True,
        )
        with httpx.Client() as c:  # warm-up: the first queries load lazy parts
            for q in queries[:10]:
                c.get(f"{url}/search", params={"q": q, "k": args.k}, timeout=30)
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        todo = iter(queries)

        def client() -> None:
            with httpx.Client() as c:
                while True:
                    with lock:
                        q = next(todo, None)
                    if q is None:
                        return
                    t = time.perf_counter()
                    try:
                        r = c.get(f"{url}/search", params={"q": q, "k": args.k}, timeout=30)
                        ok = r.status_code == 200 and len(r.json()["hits"]) == args.k
                        why = f"status {r.status_code}"
                    except (httpx.HTTPError, ValueError, KeyError) as err:
                        ok, why = False, type(err).__name__
                    ms = (time.perf_counter() - t) * 1e3
                    with lock:
                        latencies.append(ms)
                        if not ok:
                            errors.append(why)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        lat = sorted(latencies)
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
        print(
            f"{len(lat)} queries in {wall:.1f} s ({len(lat) / wall:.0f} queries/s): latency p50 "
            f"{statistics.median(lat):.1f} ms, p95 {p(0.95):.1f} ms, p99 {p(0.99):.1f} ms, max "
            f"{lat[-1]:.1f} ms; errors {len(errors)}"
        )
        goal = p(0.95) < 100 and not errors and info["rows"] >= 10_000
        print(f"goal: p95 < 100 ms over ≥ 10k items, 0 errors: {'PASS' if goal else 'FAIL'}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
