"""A small asyncio client for DAWN's /ws stream: `async for tick in DawnClient(url).ticks()`, resumed."""

from dawn_client.client import DawnClient, DawnClientError, Stats

__all__ = ["DawnClient", "DawnClientError", "Stats"]
