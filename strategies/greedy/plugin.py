"""Entry-point module of the ``greedy`` strategy plugin (group ``progressbench``)."""

from progressbench import hookimpl

from .strategy import Greedy


@hookimpl
def register_strategies(register):
    register(Greedy)
