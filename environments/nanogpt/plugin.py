"""Entry point of the nanogpt environment plugin (group ``progressbench``)."""

from progressbench import hookimpl

from .env import NanoGPT


@hookimpl
def register_environments(register):
    register(NanoGPT())
