#!/usr/bin/env python
"""Django's command-line utility for DAWN."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dawn_site.settings")
    from django.core.management import execute_from_command_line

    from dawn_site.config import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        # a readable line, not a traceback, for a mistake in config.yaml
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
