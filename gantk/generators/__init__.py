"""Placeholder registration (being written)."""

from ..hookspecs import hookimpl


@hookimpl
def gantk_register_generators(registry):
    pass
