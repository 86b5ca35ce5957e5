"""The ``gantk`` command (``python -m gantk``)."""

from __future__ import annotations

import signal
import sys

from .cli_output import echo


def main() -> None:
    """Run the command line; a Ctrl-C while it starts (importing torch, loading plugins) ends it with "Aborted." and
    status 130, as one during a command does, without a traceback."""
    try:
        from .cli import main as run_cli

        run_cli()
    except KeyboardInterrupt:  # a command's own are answered inside it
        echo("\nAborted.", err=True)
        sys.exit(128 + signal.SIGINT)


if __name__ == "__main__":
    main()
