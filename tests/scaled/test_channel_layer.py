"""The Redis channel layer as configured: an idle receiver waits quietly, however long nothing comes."""

import asyncio
import gc
import logging

import pytest
from channels.layers import get_channel_layer

from consciousness.groups import GroupMember
from tests.support import free_port

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


async def test_a_layer_task_that_fails_while_redis_is_gone_is_one_line_not_a_traceback(caplog):
    # channels_redis cleans its receive backup in a task nobody awaits; Redis gone just then used to end
    # in asyncio's "Task exception was never retrieved" with a traceback in the serving process's log
    from channels_redis.core import RedisChannelLayer

    member = GroupMember("dawn.test.quiet", lambda message: None, name="quiet-member")
    await member.join(get_channel_layer())  # serving processes install the handler as they join
    dead = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{free_port()}/0"])
    try:
        with caplog.at_level(logging.WARNING):
            cleaner = asyncio.ensure_future(dead._clean_receive_backup(0, "dawn.test.quiet!x"))
            await asyncio.wait([cleaner])
            del cleaner
            gc.collect()  # the unretrieved exception is reported when the task is collected
        failures = [r for r in caplog.records if "_clean_receive_backup" in r.getMessage()]
        assert [(r.levelname, r.exc_info) for r in failures] == [("WARNING", None)], caplog.text
        assert "never retrieved" not in caplog.text
    finally:
        await member.leave()
