"""manage.py runtick: run the engine's tick loop, and by default serve HTTP and /ws from the same process."""

from __future__ import annotations

import argparse
import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from consciousness.engine import EngineConfig
from dawn_site.config import tick_rate_option_check
from dawn_site.runtime import EngineRuntime, RuntimeOptions, RuntimeRefused, event_loop_factory


def _rate(value: str) -> float:
    try:
        return tick_rate_option_check(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc}") from None


def _seed(value: str) -> int:
    try:
        return EngineConfig.check("seed", int(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc}") from None


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is negative")
    return number


def _port(value: str) -> int:
    number = _count(value)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (1-65535)")
    return number


class Command(BaseCommand):
    help = "Run DAWN's tick loop; unless --no-serve, also serve HTTP and /ws (embedded shape)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--rate", type=_rate, help='ticks per second, or "max": unthrottled, for batch runs (default: config.yaml tick_rate)')
        parser.add_argument("--seed", type=_seed, help="seed of a new run (default: config.yaml seed; a stored run keeps its own)")
        parser.add_argument("--ticks", type=_count, help="run this many ticks, then stop")
        parser.add_argument("--until", type=_count, help="stop once this tick_number is done")
        parser.add_argument("--host", help="address to serve on (default: config.yaml api.host)")
        parser.add_argument("--port", type=_port, help="port to serve on (default: config.yaml api.port)")
        parser.add_argument("--no-serve", action="store_true", help="engine only: serve nothing (the scaled shape's workers serve)")
        parser.add_argument("--no-processes", action="store_true", help="run no auto-triggered analysis processes")
        parser.add_argument("--reset", action="store_true", help="forget the stored run and its history, start a new one")
        parser.add_argument("--progress", type=_count, default=30, help="seconds between progress lines (0: none; default 30)")
        parser.add_argument("--metrics-port", type=_port, help="serve /metrics on this port (for --no-serve; on --host)")

    def handle(self, *args, **options) -> None:
        config = settings.DAWN_CONFIG
        runtime_options = RuntimeOptions(
            rate=options["rate"] or config["consciousness"]["tick_rate"],
            seed=options["seed"],
            max_ticks=options["ticks"],
            until=options["until"],
            serve=not options["no_serve"],
            host=options["host"] or config["api"]["host"],
            port=options["port"] or config["api"]["port"],
            processes=not options["no_processes"],
            reset=options["reset"],
            progress=float(options["progress"]),
            metrics_port=options["metrics_port"],
        )
        runtime = EngineRuntime(runtime_options)
        try:
            runtime.prepare()
        except RuntimeRefused as exc:
            raise CommandError(str(exc)) from None
        start = runtime.engine.state.tick_number
        if runtime_options.until is not None and start >= runtime_options.until:
            runtime.lock.release()
            self.stdout.write(f"already at tick {start}, past --until {runtime_options.until}: nothing to do")
            return
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            done = runner.run(runtime.run())
        self.stdout.write(f"ran {done} ticks: {start + 1}..{runtime.engine.state.tick_number}" if done else "ran no tick")
