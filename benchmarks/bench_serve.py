"""Load test of `emotiscope serve`: N concurrent clients on 127.0.0.1, bounded in count and time.

    python benchmarks/bench_serve.py [--clients 200] [--requests 1000] [--duration 120]
                                     [--image PHOTO] [--model MODEL.onnx] [--url URL]

Starts the server in a subprocess on a free loopback port (or uses --url, which must be a
loopback address), measures single-request latency first, then lets --clients clients post
the image to /v1/analyze as fast as they can until --requests are done or --duration seconds
have passed. Prints requests/s, p50/p90/p99 latency, and counts of 2xx, 4xx, 5xx and dropped
connections (transport errors). Target: 200 clients, no 5xx, no dropped connection.
Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from emotiscope.io import sample_image_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        sys.exit(f"bench_serve: {url} is not a loopback address; this benchmark only loads "
                 "servers on this machine (127.0.0.1)")


@contextlib.contextmanager
def started_server(model: str | None, threads: int | None):
    """`emotiscope serve` in a subprocess; yields its base URL once /healthz answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "emotiscope.cli", "serve", "--port", str(port)]
    if model:
        cmd += ["--model", model]
    if threads:
        cmd += ["--workers-threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                sys.exit(f"bench_serve: the server exited: {proc.stderr.read().strip()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                sys.exit("bench_serve: the server did not answer /healthz within 120 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def client_loop(http: httpx.AsyncClient, url: str, image: bytes, budget: list[int],
                      stop_at: float, latencies: list[float], outcomes: Counter) -> None:
    """Post the image again and again while requests remain and time is left."""
    while budget[0] > 0 and time.monotonic() < stop_at:
        budget[0] -= 1
        start = time.perf_counter()
        try:
            response = await http.post(url + "/v1/analyze", content=image,
                                       headers={"Content-Type": "image/jpeg"})
        except httpx.TransportError as exc:
            outcomes[f"dropped ({type(exc).__name__})"] += 1
            continue
        latencies.append(time.perf_counter() - start)
        outcomes[f"{response.status_code // 100}xx"] += 1
        if response.status_code >= 500:
            outcomes[f"HTTP {response.status_code}"] += 1


async def load(url: str, image: bytes, clients: int, requests: int, duration: float):
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    timeout = httpx.Timeout(duration + 60, connect=30)
    latencies: list[float] = []
    outcomes: Counter = Counter()
    budget = [requests]
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        start = time.perf_counter()
        stop_at = time.monotonic() + duration
        await asyncio.gather(*(client_loop(http, url, image, budget, stop_at, latencies, outcomes)
                               for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return latencies, outcomes, elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def single_latency(url: str, image: bytes, n: int = 20) -> float:
    """Median latency of one client alone, in seconds."""
    times = []
    with httpx.Client(timeout=60) as http:
        for _ in range(n):
            start = time.perf_counter()
            http.post(url + "/v1/analyze", content=image).raise_for_status()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(args, image_path: Path, alone: float, latencies, outcomes, elapsed) -> bool:
    done = sum(v for k, v in outcomes.items() if k.endswith("xx"))
    bad = sum(v for k, v in outcomes.items() if k == "5xx" or k.startswith("dropped"))
    ms = [x * 1000 for x in latencies] or [float("nan")]
    print(f"image: {image_path.name}; one client alone: {alone * 1000:.0f} ms per request")
    print("| clients | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | 2xx | 4xx | 5xx "
          "| dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    dropped = sum(v for k, v in outcomes.items() if k.startswith("dropped"))
    print(f"| {args.clients} | {done} | {done / elapsed:.1f} | {percentile(ms, 50):.0f} "
          f"| {percentile(ms, 90):.0f} | {percentile(ms, 99):.0f} | {max(ms):.0f} "
          f"| {outcomes['2xx']} | {outcomes['4xx']} | {outcomes['5xx']} | {dropped} |")
    details = {k: v for k, v in outcomes.items() if not k.endswith("xx")}
    if details:
        print(f"problems: {details}")
    met = bad == 0 and outcomes["4xx"] == 0 and done > 0
    print(f"target (no 5xx, no dropped connection, {args.clients} clients): "
          f"{'met' if met else 'MISSED'}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1000, help="total, over all clients")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds, at most")
    parser.add_argument("--image", type=Path, default=sample_image_path())
    parser.add_argument("--model", help="ONNX model (default: the bundled one)")
    parser.add_argument("--workers-threads", type=int, default=None)
    parser.add_argument("--url", help="an already running server on 127.0.0.1")
    args = parser.parse_args()
    if not 1 <= args.clients <= 1000 or not 1 <= args.requests <= 100_000:
        parser.error("--clients must be 1..1000 and --requests 1..100000")
    image = args.image.read_bytes()
    if args.url:
        require_loopback(args.url)
    server = (contextlib.nullcontext(args.url.rstrip("/")) if args.url
              else started_server(args.model, args.workers_threads))
    with server as url:
        alone = single_latency(url, image)
        latencies, outcomes, elapsed = asyncio.run(
            load(url, image, args.clients, args.requests, args.duration))
    return 0 if report(args, args.image, alone, latencies, outcomes, elapsed) else 1


if __name__ == "__main__":
    sys.exit(main())
