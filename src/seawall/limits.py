"""Named limits that keep a hostile artifact from exhausting time, memory or disk."""

from __future__ import annotations

from dataclasses import dataclass, fields

MiB = 1024 * 1024
GiB = 1024 * MiB
MAX_DEPTH_CEILING = 32


@dataclass(frozen=True)
class Limits:
    max_depth: int = 12
    """Containers nested deeper than this are reported, not opened."""
    max_entries: int = 1_000_000
    """Members in one target, all nesting levels together."""
    max_file_bytes: int = 1 * GiB
    """Expanded bytes read from one member; the rest is reported as unscanned."""
    max_total_bytes: int = 64 * GiB
    """Expanded bytes read from one target, all members together."""
    max_ratio: int = 200
    """Expanded/compressed ratio above which a stream is treated as a bomb..."""
    ratio_floor_bytes: int = 32 * MiB
    """...once it has expanded past this many bytes (small files compress well legitimately)."""
    large_file_bytes: int = 50 * MiB
    """Members at least this large are noted (info) so reviewers see what dominates a release."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(
                    f"limit {f.name.replace('_', '-')!r} must be a positive integer, got {value!r}"
                )
        if self.max_depth > MAX_DEPTH_CEILING:
            # Each level of nesting costs Python stack frames (and a chain of streams);
            # past this the interpreter's recursion limit would end the walk instead.
            raise ValueError(
                f"limit 'max-depth' cannot exceed {MAX_DEPTH_CEILING}, got {self.max_depth}"
            )

    @classmethod
    def from_mapping(cls, values: dict[str, object]) -> Limits:
        known = {f.name for f in fields(cls)}
        clean: dict[str, object] = {}
        for raw_key, value in values.items():
            key = raw_key.replace("-", "_")
            if key not in known:
                raise ValueError(f"unknown limit {raw_key!r} (known: {', '.join(sorted(known))})")
            clean[key] = value
        return cls(**clean)  # type: ignore[arg-type]


class LimitExceeded(Exception):
    """A named limit was hit; the engine turns this into an ``anomaly`` finding."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
