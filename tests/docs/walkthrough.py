"""Runs a walkthrough page (docs/*.md) step by step, as its reader would.

Every ```console block is run in order in one empty folder, each `$` line as a bash command
(a here-document continues until its EOF line; a line ending in `&` starts a background
process, stopped at the end by the `background` fixture). The lines after a command are what it
must print, line for line: runs of spaces count as one and `…` stands for anything. A block
marked ```console wait is run again until it matches (for what the worker does in the
background). The page's example ports are replaced with free ones.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.processes import free_port

WAIT_S = 30.0
BLOCK = re.compile(r"^```console( wait)?\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)

    @property
    def background(self) -> bool:
        return self.line.rstrip().endswith("&")


@dataclass
class Block:
    commands: list[Command]
    wait: bool
    number: int


def parse(text: str) -> list[Block]:
    blocks = []
    for number, match in enumerate(BLOCK.finditer(text), start=1):
        commands: list[Command] = []
        lines = iter(match.group(2).splitlines())
        for line in lines:
            if line.startswith("$ "):
                command = line[2:]
                heredoc = re.search(r"<<'?(\w+)'?", command)
                if heredoc:
                    body = []
                    for more in lines:
                        body.append(more)
                        if more == heredoc.group(1):
                            break
                    command = "\n".join([command, *body])
                commands.append(Command(command))
            elif line.strip():
                assert commands, f"block {number} prints before any command"
                commands[-1].expected.append(line)
        blocks.append(Block(commands, bool(match.group(1)), number))
    return blocks


def matches(expected: list[str], output: str) -> bool:
    actual = [" ".join(line.split()) for line in output.splitlines() if line.strip()]
    if len(actual) != len(expected):
        return False
    for want, got in zip(expected, actual, strict=True):
        pattern = ".*?".join(re.escape(part) for part in " ".join(want.split()).split("…"))
        if not re.fullmatch(pattern, got):
            return False
    return True


def environment() -> dict[str, str]:
    """The reader's shell: nothing of the developer's gateway settings, amogate on PATH."""
    prefixes = ("AMO_", "API_KEY", "DATABASE_URL", "ADMIN_", "LEAD_", "LOG_", "CORS_", "AMOGATE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes a walkthrough starts, stopped with their children at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_block(block: Block, folder: Path, env: dict[str, str]) -> list[str]:
    """Run a block's foreground commands; the problems found (empty: it matched)."""
    problems = []
    for command in block.commands:
        done = subprocess.run(
            ["bash", "-c", command.line],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = done.stdout + done.stderr
        if not matches(command.expected, output):
            problems.append(
                f"block {block.number}: $ {command.line}\n--- expected\n"
                + "\n".join(command.expected)
                + f"\n--- printed\n{output}"
            )
    return problems


def run_walkthrough(
    doc: Path,
    folder: Path,
    background: list[subprocess.Popen[bytes]],
    *,
    ports: Iterable[str],
    min_blocks: int,
) -> None:
    """Run every block of `doc` in `folder`; fails with what a command printed instead."""
    text = doc.read_text(encoding="utf-8")
    for port in ports:
        text = text.replace(port, str(free_port()))
    blocks = parse(text)
    assert len(blocks) >= min_blocks
    env = environment()
    for block in blocks:
        if block.commands and all(c.background for c in block.commands):
            for command in block.commands:
                background.append(
                    subprocess.Popen(  # its own process group: stopped with its children
                        ["bash", "-c", command.line.rstrip().removesuffix("&")],
                        cwd=folder,
                        env=env,
                        start_new_session=True,
                    )
                )
            continue
        deadline = time.monotonic() + (WAIT_S if block.wait else 0)
        while True:
            problems = run_block(block, folder, env)
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert problems == [], "\n\n".join(problems)
