"""The steps of a ``semafore verify`` run, each recorded in the report as it ends.

A failed step is recorded with its error and raises :class:`StepFailed`; the run then goes on
to the search and the clean-up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from semafore.errors import SemaforeError

T = TypeVar("T")


class StepFailed(Exception):
    """A step of the run failed; it is already recorded in the report."""


async def step(report: dict[str, Any], name: str, work: Awaitable[T]) -> T:
    """Await ``work`` as the step ``name``: recorded ok, or recorded failed and StepFailed."""
    try:
        result = await work
    except (SemaforeError, OSError) as exc:
        raise failed_step(report, name, str(exc)) from None
    report["steps"].append({"step": name, "ok": True, "detail": ""})
    return result


async def best_effort_step(report: dict[str, Any], name: str, work: Awaitable[object]) -> None:
    """Await ``work`` as the step ``name``, recorded; the run goes on even when it fails."""
    with contextlib.suppress(StepFailed):
        await step(report, name, work)


def failed_step(report: dict[str, Any], name: str, detail: str) -> StepFailed:
    """Record the step ``name`` as failed; the StepFailed to raise."""
    report["steps"].append({"step": name, "ok": False, "detail": detail})
    return StepFailed()
