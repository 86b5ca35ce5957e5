"""``python -m gantk``: the ``gantk`` command."""

from .cli import main

main()
