"""How a stage declares its commands of `python -m sarchat_bench`: each handler with its
arguments beside it, collected in the stage's `COMMANDS` list, which cli.py assembles.

    COMMANDS: list[Command] = []

    @command(COMMANDS, "annotations", "validate and filter one split's COCO annotations",
             arg("--root", required=True, help="SARDet-100K root"))
    def annotations(args): ...
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Callable

from sarchat_bench.core.sharding import parse_shard


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    arguments: tuple
    handler: Callable[[argparse.Namespace], None]


def arg(*flags: str, **options) -> tuple:
    """One argument of a command, as argparse's add_argument takes it."""
    return flags, options


def command(registry: list, name: str, help_text: str, *arguments: tuple):
    """Register the decorated function as the handler of command `name`."""

    def register(handler):
        registry.append(Command(name, help_text, arguments, handler))
        return handler

    return register


def json_value(text: str):
    """An argument given as JSON text (empty: an empty object)."""
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from None


def key_paths(items: list[str]) -> dict[str, list[str]]:
    """KEY=PATH arguments; a key may repeat (the shards of one task)."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"error: expected KEY=PATH, got {item!r}")
        out.setdefault(key, []).append(value)
    return out


def shard(text: str) -> tuple[int, int]:
    """A shard argument, "I-of-N"."""
    try:
        return parse_shard(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
