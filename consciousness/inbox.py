"""EngineInbox: what reaches the engine from outside (stimuli, process impacts), applied at the next tick."""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from consciousness.groups import ENGINE_GROUP, ENGINE_STIMULUS, GroupMember
from consciousness.engine import Impact, StepInputs, Stimulus
from consciousness.metrics import STIMULI

logger = logging.getLogger(__name__)

MAX_STIMULI_PER_TICK = 32
MAX_QUEUED = 10_000  # stimuli waiting, all senders together
MAX_PENDING_PER_SENDER = 64  # a flooding client fills its own queue, never the others'


class EngineInbox:
    """Collects inputs between ticks and hands them to the next one; also lists the active processes.

    Stimuli wait in one queue per sender and are taken round-robin, so one client cannot starve another's;
    a stimulus that cannot wait is rejected, and the rejection reaches its sender like an ack does.
    Impacts carry the tick they are due at and apply at the first tick at or after it.
    """

    def __init__(self, *, next_tick: Callable[[], int] | None = None) -> None:
        self.next_tick = next_tick  # the number of the tick the next take() is for (None: any)
        self._stimuli: OrderedDict[str, deque[tuple[Stimulus, dict]]] = OrderedDict()
        self._queued = 0
        self._rejected: list[dict] = []
        self._impacts: list[tuple[int, Impact]] = []
        self.active_processes: tuple[str, ...] = ()
        # keys and refs of the stimuli the last tick applied, and of those rejected since the one before
        self.applied: list[dict] = []
        self.taken_impacts: tuple[Impact, ...] = ()  # the impacts the last tick applied
        self._handlers: dict[str, Callable[[dict], None]] = {ENGINE_STIMULUS: self._on_stimulus}
        self._member = GroupMember(ENGINE_GROUP, self.dispatch, name="dawn-engine-inbox")

    def add_stimulus(self, stimulus: Stimulus, *, key: str | None = None, ref: Any = None, sender: str | None = None) -> bool:
        """Queue a stimulus for the next ticks; False (and a rejection for its sender) if it cannot wait."""
        sender = sender or key or ""
        queue = self._stimuli.get(sender)
        meta = {"key": key, "ref": ref}
        if self._queued >= MAX_QUEUED or (queue is not None and len(queue) >= MAX_PENDING_PER_SENDER):
            STIMULI.labels(outcome="rejected").inc()
            if key:
                self._rejected.append({**meta, "rejected": "queue_full"})
            return False
        STIMULI.labels(outcome="accepted").inc()
        if queue is None:
            queue = self._stimuli[sender] = deque()
        queue.append((stimulus, meta))
        self._queued += 1
        return True

    def add_impact(self, mapping: dict, *, due: int = 0) -> None:
        """Queue a process's impact for tick `due` (or the first after it); ValueError if it is not one."""
        self._impacts.append((due, Impact.from_mapping(mapping)))

    def set_active(self, names: tuple[str, ...]) -> None:
        """The scripts running now, listed in each tick's active_processes."""
        self.active_processes = names

    def _take_stimuli(self) -> list[tuple[Stimulus, dict]]:
        taken: list[tuple[Stimulus, dict]] = []
        while self._stimuli and len(taken) < MAX_STIMULI_PER_TICK:
            sender, queue = next(iter(self._stimuli.items()))
            taken.append(queue.popleft())
            self._queued -= 1
            del self._stimuli[sender]
            if queue:
                self._stimuli[sender] = queue  # to the back of the line
        return taken

    def take(self, timestamp: float) -> StepInputs:
        """The inputs of the next tick; stimuli beyond the per-tick cap wait for the following ones."""
        taken = self._take_stimuli()
        tick = self.next_tick() if self.next_tick is not None else None
        due = sorted(
            ((d, impact) for d, impact in self._impacts if tick is None or d <= tick), key=lambda e: (e[0], e[1].source)
        )
        self._impacts = [(d, impact) for d, impact in self._impacts if tick is not None and d > tick]
        impacts = tuple(impact for _d, impact in due)
        self.taken_impacts = impacts
        self.applied = [meta for _stimulus, meta in taken if meta["key"]] + self._rejected
        self._rejected = []
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
        sender = message.get("client") or message.get("key")
        if not self.add_stimulus(stimulus, key=message.get("key"), ref=message.get("ref"), sender=sender):
            logger.debug("stimulus queue of %s full; rejected %r", sender, message.get("ref"))

    async def close(self) -> None:
        await self._member.leave()
