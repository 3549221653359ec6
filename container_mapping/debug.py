"""Debug lines for `collect -v`, at no cost where nobody listens.

Only the CLI configures logging (`diagnostics`); the task prints its own lines and never imports
`logging`, which costs about 10 ms of every post-job's start. Until something has imported it,
no handler can exist, so a line is dropped without importing it.
"""

from __future__ import annotations

import sys


def debug(logger_name: str, message: str, *args: object) -> None:
    """`logging.getLogger(logger_name).debug(message, *args)`, if `logging` is in use at all."""
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(logger_name).debug(message, *args)
