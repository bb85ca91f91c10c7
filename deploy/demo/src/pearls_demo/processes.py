"""The services and the SMTP sink as child processes, with prefixed output."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    _pump: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        self._pump = asyncio.create_task(self._copy_output())

    async def _copy_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_path.open("ab") as log:
            async for line in self.process.stdout:
                log.write(line)
                log.flush()

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout=15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._pump is not None:
            await self._pump

    async def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown code runs. ``start()`` runs it again."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.kill()
        await self.process.wait()
        if self._pump is not None:
            await self._pump


async def wait_ready(child: Child, url: str, *, within: float = 60.0) -> None:
    """Poll ``url`` until it answers 200; fail with the child's log tail otherwise."""
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited; log:\n{_tail(child.log_path)}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                log = _tail(child.log_path)
                raise RuntimeError(f"{child.name} not ready at {url}; log:\n{log}")
            await asyncio.sleep(0.3)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
