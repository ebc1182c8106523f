"""`python -m dawn_client tail ws://HOST:PORT/ws` prints ticks; `... record --out FILE.jsonl` records them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time

from dawn_client.client import DawnClient, DawnClientError


def _line(tick: dict) -> str:
    return (
        f"#{tick['tick_number']:<8} {tick['mood']:<13} scup {tick['scup']:6.2f}  entropy {tick['entropy']:.3f}  "
        f"neural {tick['neural_activity']:.3f}  unity {tick['consciousness_unity']:.3f}"
    )


async def tail(client: DawnClient, count: int | None, as_json: bool) -> None:
    seen = 0
    async with contextlib.aclosing(client.ticks()) as ticks:
        async for tick in ticks:
            print(json.dumps(tick) if as_json else _line(tick), flush=True)
            seen += 1
            if count is not None and seen >= count:
                return


async def record(client: DawnClient, out: str, count: int | None) -> None:
    seen, started, last_shown = 0, time.monotonic(), 0.0
    with open(out, "a", encoding="utf-8") as file:
        async with contextlib.aclosing(client.ticks()) as ticks:
            async for tick in ticks:
                file.write(json.dumps(tick, separators=(",", ":")) + "\n")
                seen += 1
                now = time.monotonic()
                if now - last_shown >= 0.5 or (count is not None and seen >= count):
                    file.flush()
                    last_shown = now
                    latency = client.stats.latency_s
                    sys.stderr.write(
                        f"\r{seen} ticks to {out} | tick {tick['tick_number']}"
                        f" | {seen / max(now - started, 1e-9):.1f}/s"
                        f" | latency {latency * 1000 if latency is not None else float('nan'):.0f} ms"
                        f" | reconnects {client.stats.reconnects} "
                    )
                    sys.stderr.flush()
                if count is not None and seen >= count:
                    break
    sys.stderr.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dawn_client", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("tail", "record"):
        cmd = sub.add_parser(name)
        cmd.add_argument("url", help="the stream, e.g. ws://127.0.0.1:8000/ws")
        cmd.add_argument("--count", type=int, default=None, help="stop after this many ticks")
        cmd.add_argument("--json", dest="protocol", action="store_const", const="json", default="msgpack",
                         help="ask for JSON text frames instead of msgpack")
        if name == "tail":
            cmd.add_argument("--raw", action="store_true", help="print each tick as JSON")
        else:
            cmd.add_argument("--out", required=True, help="JSON Lines file to append the ticks to")
    args = parser.parse_args(argv)
    client = DawnClient(args.url, binary=args.protocol == "msgpack")
    job = tail(client, args.count, args.raw) if args.command == "tail" else record(client, args.out, args.count)
    try:
        asyncio.run(job)
    except KeyboardInterrupt:
        return 130
    except DawnClientError as exc:
        print(f"dawn_client: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
