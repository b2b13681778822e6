"""Load test of `emotiscope serve`: N concurrent clients on 127.0.0.1, bounded in count and time.

    python benchmarks/bench_serve.py [--clients 200] [--requests 1000] [--duration 120]
                                     [--image PHOTO] [--model MODEL.onnx] [--url URL]
    python benchmarks/bench_serve.py --mode slow-clients [--slow 300] [--trickle 5] [--duration 60]
    python benchmarks/bench_serve.py --mode leak [--requests 2000] [--clients 4]

Starts the server in a subprocess on a free loopback port (or uses --url, which must be a
loopback address), measures single-request latency first, then lets --clients clients post
the image to /v1/analyze as fast as they can until --requests are done or --duration seconds
have passed. Prints requests/s, p50/p90/p99 latency, and counts of 2xx, 4xx, 5xx and dropped
connections (transport errors). Target: 200 clients, no 5xx, no dropped connection.
Exit status 1 when the target is missed.

--mode slow-clients: --slow connections each declare a 9.9 MB upload and send one byte every
--trickle seconds (reconnecting when the server drops them), while one normal client posts the
image again and again; prints that client's latency and status counts, and what the server did
to the slow uploads. Target: every normal request 2xx.
--mode leak: the server's resident memory (RSS, from /proc) after a warm-up and after
--requests more requests from --clients clients. Needs the server this script starts (Linux).
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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from emotiscope.images import sample_image_path


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


@dataclass
class Server:
    url: str
    pid: int | None  # None for a server given with --url


@contextlib.contextmanager
def started_server(model: str | None, threads: int | None, detector: str | None = None,
                   workers: int | None = None):
    """`emotiscope serve` in a subprocess; yields it once /healthz answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "emotiscope.cli", "serve", "--port", str(port)]
    if workers:
        cmd += ["--workers", str(workers)]
    if model:
        cmd += ["--model", model]
    if threads:
        cmd += ["--workers-threads", str(threads)]
    if detector:
        cmd += ["--detector", detector]
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
        yield Server(url, proc.pid)
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


SLOW_HEAD = (b"POST /v1/analyze HTTP/1.1\r\nHost: bench\r\nContent-Type: image/jpeg\r\n"
             b"Content-Length: %d\r\n\r\n" % int(9.9 * 1024 * 1024))


async def slow_uploader(host: str, port: int, interval: float, stop_at: float,
                        seen: Counter) -> None:
    """Trickle one byte every `interval` s of a 9.9 MB upload; reconnect when dropped."""
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            seen["connect failed"] += 1
            await asyncio.sleep(interval)
            continue
        seen["connections"] += 1
        try:
            writer.write(SLOW_HEAD)
            while time.monotonic() < stop_at:
                writer.write(b"\xff")
                await writer.drain()
                try:
                    line = await asyncio.wait_for(reader.readline(), interval)
                except asyncio.TimeoutError:
                    continue
                status = line.split()[1].decode() if line.startswith(b"HTTP/") else "closed"
                seen[f"answered {status}"] += 1
                break
        except OSError:
            seen["reset"] += 1
        finally:
            writer.close()


async def normal_client(url: str, image: bytes, stop_at: float, latencies: list[float],
                        outcomes: Counter) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            try:
                response = await http.post(url + "/v1/analyze", content=image)
            except httpx.TransportError as exc:
                outcomes[f"dropped ({type(exc).__name__})"] += 1
                continue
            latencies.append(time.perf_counter() - start)
            outcomes[f"HTTP {response.status_code}"] += 1


async def slow_clients(url: str, image: bytes, slow: int, interval: float, duration: float):
    """Latency of one normal client while `slow` uploaders trickle bytes."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    seen, outcomes, latencies = Counter(), Counter(), []
    stop_at = time.monotonic() + duration
    uploaders = [asyncio.create_task(slow_uploader(host, port, interval, stop_at, seen))
                 for _ in range(slow)]
    await asyncio.sleep(min(3.0, duration / 4))  # let them connect
    async with httpx.AsyncClient(timeout=10) as http:
        health = (await http.get(url + "/healthz")).json()
    await normal_client(url, image, stop_at, latencies, outcomes)
    await asyncio.gather(*uploaders)
    return latencies, outcomes, seen, health


def run_slow_clients(args, url: str, image: bytes, alone: float) -> bool:
    latencies, outcomes, seen, health = asyncio.run(
        slow_clients(url, image, args.slow, args.trickle, args.duration))
    ms = [x * 1000 for x in latencies] or [float("nan")]
    print(f"one client alone: {alone * 1000:.0f} ms per request")
    print(f"{args.slow} slow uploaders (1 byte every {args.trickle:g} s), {args.duration:g} s; "
          f"server /healthz once they connected: {health}")
    print("| normal requests | p50 ms | p90 ms | max ms | statuses |")
    print("|---|---|---|---|---|")
    print(f"| {len(latencies)} | {percentile(ms, 50):.0f} | {percentile(ms, 90):.0f} "
          f"| {max(ms):.0f} | {dict(outcomes)} |")
    print(f"slow uploads: {dict(seen)}")
    met = bool(latencies) and set(outcomes) == {"HTTP 200"}
    print(f"target (every normal request answered 200): {'met' if met else 'MISSED'}")
    return met


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def run_leak(args, server: Server, image: bytes) -> bool:
    asyncio.run(load(server.url, image, 2, 50, args.duration))  # warm-up
    before = rss_mb(server.pid)
    latencies, outcomes, elapsed = asyncio.run(
        load(server.url, image, args.clients, args.requests, args.duration))
    after = rss_mb(server.pid)
    done = len(latencies)
    print(f"server RSS after a 50-request warm-up: {before:.1f} MB; after {done} more requests "
          f"({args.clients} clients, {elapsed:.0f} s, {dict(outcomes)}): {after:.1f} MB")
    print(f"growth: {after - before:+.1f} MB ({(after - before) * 1024 / max(done, 1):+.2f} KB "
          "per request)")
    return done > 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("load", "slow-clients", "leak"), default="load")
    parser.add_argument("--clients", type=int, default=None, help="default 200; leak: 4")
    parser.add_argument("--requests", type=int, default=None,
                        help="total, over all clients (default 1000; leak: 2000)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds, at most")
    parser.add_argument("--slow", type=int, default=300, help="slow uploaders (slow-clients)")
    parser.add_argument("--trickle", type=float, default=5.0,
                        help="seconds between the slow uploaders' bytes (slow-clients)")
    parser.add_argument("--image", type=Path, default=sample_image_path())
    parser.add_argument("--model", help="ONNX model (default: the bundled one)")
    parser.add_argument("--workers-threads", type=int, default=None)
    parser.add_argument("--detector", help="face detector of the started server (default auto)")
    parser.add_argument("--url", help="an already running server on 127.0.0.1 (not for leak)")
    args = parser.parse_args()
    leak = args.mode == "leak"
    args.clients = args.clients or (4 if leak else 200)
    args.requests = args.requests or (2000 if leak else 1000)
    if not 1 <= args.clients <= 1000 or not 1 <= args.requests <= 100_000:
        parser.error("--clients must be 1..1000 and --requests 1..100000")
    if not 1 <= args.slow <= 1000 or not 0.1 <= args.trickle <= 60 or args.duration > 600:
        parser.error("--slow must be 1..1000, --trickle 0.1..60 s, --duration at most 600 s")
    if leak and args.url:
        parser.error("--mode leak measures the server it starts itself; drop --url")
    image = args.image.read_bytes()
    if args.url:
        require_loopback(args.url)
    server = (contextlib.nullcontext(Server(args.url.rstrip("/"), None)) if args.url
              else started_server(args.model, args.workers_threads, args.detector))
    with server as running:
        if leak:
            return 0 if run_leak(args, running, image) else 1
        alone = single_latency(running.url, image)
        if args.mode == "slow-clients":
            return 0 if run_slow_clients(args, running.url, image, alone) else 1
        latencies, outcomes, elapsed = asyncio.run(
            load(running.url, image, args.clients, args.requests, args.duration))
    return 0 if report(args, args.image, alone, latencies, outcomes, elapsed) else 1


if __name__ == "__main__":
    sys.exit(main())
