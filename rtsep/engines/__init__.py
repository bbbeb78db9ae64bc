"""Stateful stream engines: they own the state arrays and call the kernels."""

from __future__ import annotations

from .base import Engine, engine_class, ENGINES

__all__ = ["Engine", "engine_class", "ENGINES"]
