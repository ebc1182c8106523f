"""The Redis channel layer as configured: an idle receiver waits quietly, however long nothing comes."""

import asyncio
import logging

import pytest
from channels.layers import get_channel_layer

from consciousness.groups import GroupMember

pytestmark = [pytest.mark.scaled, pytest.mark.asyncio]


async def test_an_idle_group_member_outlasts_the_blocking_pop_without_an_error(caplog):
    layer = get_channel_layer()
    received = []
    member = GroupMember("dawn.test.idle", received.append, name="idle-member")
    await member.join(layer)
    try:
        with caplog.at_level(logging.WARNING, logger="consciousness.groups"):
            await asyncio.sleep(6.5)  # longer than one blocking pop (5 s)
        assert [r.getMessage() for r in caplog.records] == []
        await layer.group_send("dawn.test.idle", {"type": "hello"})
        for _ in range(200):
            if received:
                break
            await asyncio.sleep(0.01)
        assert received == [{"type": "hello"}]
    finally:
        await member.leave()
