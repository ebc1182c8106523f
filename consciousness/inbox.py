"""EngineInbox: what reaches the engine from outside (stimuli, process impacts), applied at the next tick."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from consciousness.groups import ENGINE_GROUP, ENGINE_STIMULUS, GroupMember
from consciousness.engine import Impact, StepInputs, Stimulus
from consciousness.metrics import STIMULI

logger = logging.getLogger(__name__)

MAX_STIMULI_PER_TICK = 32
MAX_QUEUED = 10_000


class EngineInbox:
    """Collects inputs between ticks and hands them to the next one; also lists the active processes."""

    def __init__(self) -> None:
        self._stimuli: deque[tuple[Stimulus, dict]] = deque()
        self._impacts: list[Impact] = []
        self.active_processes: tuple[str, ...] = ()
        self.applied: list[dict] = []  # keys and refs of the stimuli the last tick applied
        self.taken_impacts: tuple[Impact, ...] = ()  # the impacts the last tick applied
        self._handlers: dict[str, Callable[[dict], None]] = {ENGINE_STIMULUS: self._on_stimulus}
        self._member = GroupMember(ENGINE_GROUP, self.dispatch, name="dawn-engine-inbox")

    def add_stimulus(self, stimulus: Stimulus, *, key: str | None = None, ref: Any = None) -> bool:
        accepted = len(self._stimuli) < MAX_QUEUED
        STIMULI.labels(outcome="accepted" if accepted else "rejected").inc()
        if accepted:
            self._stimuli.append((stimulus, {"key": key, "ref": ref}))
        return accepted

    def add_impact(self, mapping: dict) -> None:
        """Queue a process's impact for the next tick; ValueError (naming the key) if it is not one."""
        self._impacts.append(Impact.from_mapping(mapping))

    def set_active(self, names: tuple[str, ...]) -> None:
        """The scripts running now, listed in each tick's active_processes."""
        self.active_processes = names

    def take(self, timestamp: float) -> StepInputs:
        """The inputs of the next tick; stimuli beyond the per-tick cap wait for the following ones."""
        taken = [self._stimuli.popleft() for _ in range(min(len(self._stimuli), MAX_STIMULI_PER_TICK))]
        impacts, self._impacts = tuple(self._impacts), []
        self.taken_impacts = impacts
        self.applied = [meta for _stimulus, meta in taken if meta["key"]]
        return StepInputs(
            timestamp=timestamp,
            stimuli=tuple(stimulus for stimulus, _meta in taken),
            impacts=impacts,
            active_processes=self.active_processes,
        )

    async def listen(self, layer: Any) -> None:
        """Receive engine messages sent by any serving process through the channel layer."""
        await self._member.join(layer)

    def on(self, message_type: str, handler: Callable[[dict], None]) -> None:
        """Route another engine message type (e.g. process wake-ups) to `handler`."""
        self._handlers[message_type] = handler

    def dispatch(self, message: dict) -> None:
        handler = self._handlers.get(message.get("type"))
        if handler is None:
            logger.warning("engine inbox ignores a message of type %r", message.get("type"))
            return
        try:
            handler(message)
        except Exception:
            logger.exception("engine inbox could not handle %r", message.get("type"))

    def _on_stimulus(self, message: dict) -> None:
        try:
            stimulus = Stimulus.from_mapping({"kind": message.get("kind"), "intensity": message.get("intensity")})
        except ValueError as exc:  # consumers validate first; this guards other senders
            logger.warning("dropping an invalid stimulus: %s", exc)
            STIMULI.labels(outcome="rejected").inc()
            return
        if not self.add_stimulus(stimulus, key=message.get("key"), ref=message.get("ref")):
            logger.warning("stimulus queue full; dropping %r", message.get("ref"))

    async def close(self) -> None:
        await self._member.leave()
