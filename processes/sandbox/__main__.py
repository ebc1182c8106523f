"""``python -m processes.sandbox {run,serve} ...``: a script's cold start, or the warm fork server."""
from __future__ import annotations

import sys
from typing import Callable

from processes.sandbox.entry import EXIT_BAD_REQUEST, main_run
from processes.sandbox.server import main_serve

COMMANDS: dict[str, Callable[[list[str]], int]] = {"run": main_run, "serve": main_serve}


def main(argv: list[str]) -> int:
    """Dispatch to the command named by argv[0]."""
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m processes.sandbox {run,serve} ...", file=sys.stderr)
        return EXIT_BAD_REQUEST
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
