"""The one strict TOML loader of the three config families (generation, training, EPC).

:func:`load_toml` reads a file and names it in every error; :func:`build` makes a frozen
dataclass from one table and refuses unknown keys, naming them, the table and the file.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import tomllib

from interfaces.errors import ConfigError

__all__ = ["ConfigError", "load_toml", "build"]


def load_toml(path: str | os.PathLike) -> dict:
    """Parse a TOML file.

    Raises
    ------
    ConfigError
        If the file is missing, unreadable or not valid TOML (the message names it).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML file: {exc}") from exc


def build(cls, table, where: str):
    """Instantiate dataclass ``cls`` from ``table``; unknown keys raise :class:`ConfigError`.

    ``table`` may already be a ``cls`` (returned as is). ``where`` names the file and
    table in messages (``"gen.toml [dft]"``). Invalid values rejected by ``cls`` itself
    (``__post_init__``) come back as :class:`ConfigError` with ``where`` prefixed.
    """
    if isinstance(table, cls):
        return table
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {type(table).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(table) - names
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(names)}")
    try:
        return cls(**table)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
