"""wrk as the load generator of the HTTP benchmarks: a C client on loopback costs the two
cores far less than a Python one, so the server gets most of the machine.

`run_wrk` returns requests/s, p50/p99 latency and error counts (non-2xx/3xx, socket errors)
read from a Lua `done` hook as JSON. POST bodies come from a file, one per line, each sent
once in turn (wrk's `request` hook), so every signed order is distinct.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TypedDict

REPORT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""

BODIES = r"""
local bodies, n, i, started = {}, 0, 0, 0
for line in io.lines("%(bodies)s") do n = n + 1; bodies[n] = line end
local values, m = {}, 0
for line in io.lines("%(values)s") do m = m + 1; values[m] = line end
wrk.method = "POST"
%(headers)s
setup = function(thread)
  thread:set("id", started)
  started = started + 1
end
request = function()
  -- thread k of t sends bodies k+1, k+1+t, ...: no body is sent twice until all were sent
  if i == 0 then i = id + 1 else i = (i + %(threads)d - 1) %% n + 1 end
  if m > 0 then wrk.headers["%(name)s"] = values[i] end
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


ROTATE = r"""
local keys, n, i, started = {}, 0, 0, 0
for line in io.lines("%(keys)s") do n = n + 1; keys[n] = line end
setup = function(thread)
  thread:set("id", started)
  started = started + 1
end
request = function()
  -- thread k of t uses header values k+1, k+1+t, ...: every account's credential in turn
  if i == 0 then i = id + 1 else i = (i + %(threads)d - 1) %% n + 1 end
  wrk.headers["%(name)s"] = keys[i]
  return wrk.format(nil, nil, nil, nil)
end
"""


class WrkResult(TypedDict):
    rps: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int


def available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str,
    *,
    connections: int = 64,
    duration_s: float = 5.0,
    threads: int = 2,
    headers: dict[str, str] | None = None,
    bodies: list[str] | None = None,
    rotate: tuple[str, list[str]] | None = None,
    body_headers: tuple[str, list[str]] | None = None,
) -> WrkResult:
    """Load `url` with wrk; with `bodies`, POST them (JSON) round-robin across all threads,
    each with its own value of the header `body_headers` names when given (one value per body:
    many accounts' orders); with `rotate` (a header name and its values), GET with each value
    in turn (many accounts' credentials)."""
    if not available():
        raise RuntimeError("wrk not found: `make bench` installs it (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "report.lua"
        header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items())
        text = REPORT
        if bodies is not None:
            body_file = Path(tmp) / "bodies.ndjson"
            body_file.write_text("\n".join(bodies) + "\n")
            name, values = body_headers or ("-", [])
            if values and len(values) != len(bodies):
                raise ValueError("body_headers needs one value per body")
            value_file = Path(tmp) / "values.txt"
            value_file.write_text("".join(value + "\n" for value in values))
            text = (
                BODIES
                % {
                    "bodies": body_file,
                    "values": value_file,
                    "name": name,
                    "threads": threads,
                    "headers": header_lines + '\nwrk.headers["Content-Type"] = "application/json"',
                }
                + REPORT
            )
        elif rotate is not None:
            name, values = rotate
            key_file = Path(tmp) / "keys.txt"
            key_file.write_text("\n".join(values) + "\n")
            text = ROTATE % {"keys": key_file, "threads": threads, "name": name} + REPORT
        script.write_text(text)
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
        ]
        if bodies is None:
            for key, value in (headers or {}).items():
                command += ["-H", f"{key}: {value}"]
        out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRK_JSON "))
    raw = json.loads(line[len("WRK_JSON ") :])
    seconds = raw["duration_us"] / 1e6
    return {
        "rps": int(raw["requests"] / seconds),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "requests": raw["requests"],
        "errors": raw["non2xx"] + raw["socket_errors"],
    }
