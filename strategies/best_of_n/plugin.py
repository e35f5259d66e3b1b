"""Entry-point module of the ``best-of-n`` strategy plugin (group ``progressbench``)."""

from progressbench import hookimpl

from .strategy import BestOfN


@hookimpl
def register_strategies(register):
    register(BestOfN)
