"""The analyses, one module each, run by the sandbox: `python -m processes.sandbox run processes.scripts.<name>`.

Importing the package (and its specs) never loads numpy: the web process reads the specs.
"""

from processes.scripts.specs import SPECS

SCRIPTS: tuple[str, ...] = tuple(SPECS)
