"""How much memory the machine has free: the one reading of ``/proc/meminfo``."""

from __future__ import annotations

__all__ = ["available_mb"]


def available_mb(default: int = 4000) -> int:
    """MemAvailable of ``/proc/meminfo`` in MB (``default`` where it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return default
