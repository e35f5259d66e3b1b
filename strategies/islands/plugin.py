"""Entry-point module of the ``islands`` strategy plugin."""

from progressbench import hookimpl

from .strategy import Islands


@hookimpl
def register_strategies(register):
    register(Islands)
