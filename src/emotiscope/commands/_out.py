"""Output checks shared by commands: they live in emotiscope.outputs (re-exported here)."""

from __future__ import annotations

from ..outputs import check_new

__all__ = ["check_new"]
