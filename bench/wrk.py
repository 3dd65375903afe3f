"""wrk, the C load generator (Debian's `wrk`), driving one server from CPU 1.

A Python client on one core cannot drive a bare Starlette endpoint to its ceiling, so a ratio
measured with one would flatter the slower server. wrk can: its Lua hooks below send the
requests (one body and header set, or a rotation of several) and print the results as JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import servers

_SCRIPT = r"""
local requests = {}
local next_index = 1

function init(args)
  for line in io.lines(args[1]) do
    local method, path, headers_json, body = line:match("^(%S+)\t(%S+)\t([^\t]*)\t(.*)$")
    local headers = {}
    for name, value in headers_json:gmatch("([^\1]+)\1([^\1]*)\1") do headers[name] = value end
    requests[#requests + 1] = wrk.format(method, path, headers, body)
  end
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_s: float
    p99_s: float
    max_s: float

    @property
    def ok_per_s(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds


def ensure() -> str:
    """The path of wrk, installing Debian's package when it is missing and that is possible."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is not None:
        print("wrk not found: installing Debian's package (apt-get install -y wrk)")
        subprocess.run([apt, "install", "-y", "-q", "wrk"], check=False, timeout=600)
        found = shutil.which("wrk")
    if not found:
        raise RuntimeError(
            "the create and progress benchmarks need wrk, the C load generator: install it "
            "(Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk) and run again"
        )
    return found


def run(port: int, requests: list[Request], *, connections: int, seconds: float) -> Result:
    """Sends `requests` in rotation over `connections` keep-alive connections for `seconds`."""
    return run_many([port], [requests], connections=connections, seconds=seconds)


def run_many(
    ports: list[int], requests: list[list[Request]], *, connections: int, seconds: float
) -> Result:
    """One wrk per port (`requests[i]` to `ports[i]`), all at once, `connections` split evenly
    between them; their figures summed (requests, errors) or the worst taken (p50, p99, max:
    the slowest instance's)."""
    binary = ensure()
    each = max(1, connections // len(ports))
    with tempfile.TemporaryDirectory(prefix="jobtrail-wrk-") as tmp:
        script = Path(tmp) / "bench.lua"
        script.write_text(_SCRIPT)
        processes = []
        try:
            for n, (port, mine) in enumerate(zip(ports, requests, strict=True)):
                lines = Path(tmp) / f"requests-{n}.tsv"
                lines.write_text("".join(_line(r) for r in mine))
                argv = ["taskset", "-c", servers.CLIENT_CPU, binary, "-t1", f"-c{each}"]
                argv += [f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script)]
                argv += [f"http://127.0.0.1:{port}/", "--", str(lines)]
                processes.append(
                    subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                )
            outs = []
            for process in processes:
                out, err = process.communicate(timeout=seconds + 60)
                if process.returncode != 0:
                    raise RuntimeError(f"wrk exited with {process.returncode}: {err[-500:]!r}")
                outs.append(json.loads(out.decode().strip().splitlines()[-1]))
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    return Result(
        requests=sum(f["requests"] for f in outs),
        seconds=sum(f["duration_us"] for f in outs) / len(outs) / 1e6,
        non_2xx=sum(f["non_2xx"] for f in outs),
        socket_errors=sum(f[k] for f in outs for k in ("connect", "read", "write", "timeout")),
        p50_s=max(f["p50_us"] for f in outs) / 1e6,
        p99_s=max(f["p99_us"] for f in outs) / 1e6,
        max_s=max(f["max_us"] for f in outs) / 1e6,
    )


def _line(request: Request) -> str:
    for text in (request.path, request.body, *request.headers, *request.headers.values()):
        if any(c in text for c in "\t\n\1"):
            raise ValueError(f"no tab, newline or \\1 allowed in a wrk request: {text!r}")
    headers = "".join(f"{name}\1{value}\1" for name, value in request.headers.items())
    return f"{request.method}\t{request.path}\t{headers}\t{request.body}\n"
