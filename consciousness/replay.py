"""Ticks a client missed: from the hub's ring while it holds them, else from the persisted history.

`resume` answers every tick after `since` exactly once, or refuses whole (never a partial answer);
`history` answers a window of ticks. Both are capped at HISTORY_CAP ticks per request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.db import DatabaseError

from consciousness import selectors
from consciousness.frames import Frame, history_message, resume_failed_message, resumed_message, tick_message
from consciousness.health import history_stale_after
from consciousness.hub import StreamHub
from consciousness.inbound import HISTORY_CAP, ClientError

# the history is flushed once a second: a resume that reaches past what is persisted waits this long for it
PERSIST_WAIT_S = 3.0
PERSIST_POLL_S = 0.25

_ticks_between = database_sync_to_async(selectors.tick_data_between)
_bounds = database_sync_to_async(selectors.tick_number_bounds)
_epoch = database_sync_to_async(selectors.epoch_latest)


@dataclass
class Resumed:
    answer: dict  # resumed or resume_failed
    frames: list[Frame]  # the ticks to replay, oldest first
    last: int | None  # the newest tick_number the client now has (None: unchanged)


async def _tip(hub: StreamHub) -> tuple[str | None, int | None, dict | None]:
    """(epoch, newest tick_number, newest tick): the hub's, or the database's before the hub has heard one.

    A process that has heard nothing yet while the history says the engine ticks (a worker just started)
    waits to hear it, PERSIST_WAIT_S at most: the history lags the stream by up to a flush, and a resume
    that ended at the history's newest tick would leave a gap before the first tick the stream brings.
    """
    if hub.latest_tick is None:
        epoch = await _epoch()
        _low, high = await _bounds()
        tick = (await _ticks_between(since=high, until=high) or [None])[0] if high is not None else None
        ticking = tick is not None and time.time() - tick["timestamp"] <= history_stale_after()
        if not ticking or not await hub.heard(timeout=PERSIST_WAIT_S) or hub.latest_tick is None:
            return epoch, high, tick
    return hub.latest_epoch, hub.latest_tick["tick_number"], hub.latest_tick


async def tick_frames(hub: StreamHub, first: int, last: int) -> list[Frame]:
    """Tick frames first..last: the ring's contiguous tail, the database below it (gaps possible)."""
    ring = hub.ring_ticks(first, last)
    below = (ring[0].tick_number - 1) if ring else last
    rows = await _ticks_between(since=first, until=below) if below >= first else []
    return [Frame(tick_message(row)) for row in rows] + ring


def _contiguous(frames: list[Frame], first: int, last: int) -> bool:
    return len(frames) == last - first + 1 and all(f.tick_number == first + i for i, f in enumerate(frames))


async def resume(hub: StreamHub, *, epoch: str, since: int, ref: Any) -> Resumed:
    """Every tick after `since` up to now (the newest HISTORY_CAP if far behind), or resume_failed."""
    try:
        return await _resume(hub, epoch=epoch, since=since, ref=ref)
    except DatabaseError as exc:
        raise ClientError("unavailable", f"the history cannot be read now: {exc}") from None


async def _resume(hub: StreamHub, *, epoch: str, since: int, ref: Any) -> Resumed:
    current, last, tick = await _tip(hub)

    def failed(reason: str, message: str) -> Resumed:
        answer = resume_failed_message(reason=reason, message=message, epoch=current, tick=tick, ref=ref)
        return Resumed(answer, [], tick["tick_number"] if tick else None)

    if epoch != current:
        return failed("epoch", f"epoch {epoch} is not the current run ({current}): start again from the snapshot")
    if last is None or since >= last:
        # nothing missed yet (or the engine is regenerating ticks the client saw before a crash)
        answer = resumed_message(
            epoch=epoch, since=since, first=None, last=None, count=0, truncated=False, ref=ref
        )
        return Resumed(answer, [], since)
    first = max(since + 1, last - HISTORY_CAP + 1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PERSIST_WAIT_S
    while True:
        frames = await tick_frames(hub, first, last)
        if _contiguous(frames, first, last):
            break
        low, high = await _bounds()
        if low is None or low > first:
            return failed("pruned", f"ticks from {first} are no longer kept (oldest: {low})")
        if loop.time() >= deadline:
            return failed("unavailable", f"ticks {first}..{last} are not all persisted yet (newest: {high})")
        await asyncio.sleep(PERSIST_POLL_S)
    truncated = first > since + 1
    answer = resumed_message(
        epoch=epoch, since=since, first=first, last=last, count=len(frames), truncated=truncated, ref=ref
    )
    return Resumed(answer, frames, last)


async def history(hub: StreamHub, *, count: int | None, since: int | None, until: int | None, ref: Any) -> dict:
    """The newest `count` ticks, or ticks since..until (the first HISTORY_CAP of them), oldest first."""
    try:
        _epoch_now, last, _tick = await _tip(hub)
        if last is None:
            return history_message([], truncated=False, ref=ref)
        if count is not None:
            first, top, truncated = max(0, last - count + 1), last, False
        else:
            top = last if until is None else min(until, last)
            first = since
            truncated = top - first + 1 > HISTORY_CAP
            top = min(top, first + HISTORY_CAP - 1)
        frames = await tick_frames(hub, first, top) if top >= first else []
    except DatabaseError as exc:
        raise ClientError("unavailable", f"the history cannot be read now: {exc}") from None
    return history_message([f.message["data"] for f in frames], truncated=truncated, ref=ref)
