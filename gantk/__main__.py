"""``python -m gantk``: the ``gantk`` command."""

from .cli import main

if __name__ == "__main__":
    main()
