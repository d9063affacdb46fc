"""Start and stop an Anvil node from the project's npm packages (devnet, tests, benchmarks)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from backend.core.config import PROJECT_ROOT
from backend.core.errors import GridLedgerError
from backend.core.processes import stop_process


class AnvilError(GridLedgerError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def anvil_binary() -> str:
    local = PROJECT_ROOT / "node_modules" / ".bin" / "anvil"
    found = str(local) if local.exists() else shutil.which("anvil")
    if found is None:
        raise AnvilError("anvil not found: run `make setup` (npm installs @foundry-rs/anvil)")
    return found


def rpc(url: str, method: str, params: list[Any] | None = None, timeout: float = 10) -> Any:
    reply = requests.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
        timeout=timeout,
    ).json()
    if "error" in reply:
        raise AnvilError(f"{method}: {reply['error']}")
    return reply["result"]


@dataclass
class AnvilNode:
    rpc_url: str
    process: subprocess.Popen[bytes]

    def request(self, method: str, params: list[Any] | None = None, timeout: float = 10) -> Any:
        return rpc(self.rpc_url, method, params, timeout)

    def stop(self) -> None:
        """SIGINT first: Anvil writes its --state file on a clean exit."""
        stop_process(self.process, signal.SIGINT)


def start_anvil(
    port: int | None = None,
    chain_id: int = 31337,
    state_file: Path | None = None,
    extra_args: tuple[str, ...] = (),
    state_interval_s: int = 0,
    timeout_s: float = 30,
) -> AnvilNode:
    port = port or free_port()
    args = [
        anvil_binary(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--silent",
        *extra_args,
    ]
    if state_file is not None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        args += ["--state", str(state_file)]
        if state_interval_s > 0:  # else Anvil writes the file only on a clean exit
            args += ["--state-interval", str(state_interval_s)]
    process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    node = AnvilNode(rpc_url=f"http://127.0.0.1:{port}", process=process)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr is not None else ""
            raise AnvilError(f"anvil exited at start: {stderr[:500]}")
        try:
            node.request("eth_chainId", timeout=1)
            return node
        except (requests.RequestException, ValueError):
            time.sleep(0.05)
    process.kill()
    raise AnvilError(f"anvil did not answer on port {port} within {timeout_s:.0f} s")
