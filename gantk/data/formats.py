"""Placeholder registration (being written)."""

from ..hookspecs import hookimpl


@hookimpl
def gantk_register_data_formats(registry):
    pass
