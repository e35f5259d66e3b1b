"""Errors the CLI turns into one clear line and a non-zero exit instead of a traceback."""


class UserError(Exception):
    """A mistake in the user's input (config, arguments, URLs): exit code 2."""

    exit_code = 2


class PluginError(UserError):
    """A plugin is broken or collides with another one."""


class ReferenceInvalid(UserError):
    """The program a run starts from is not valid here (a baseline, harness or task bug, or
    the user's own program): the run never began, and a fresh one is not kept."""


class RunFailed(UserError):
    """The run cannot go on (an agent that no request can reach): it is marked ``failed``
    with this message, and ``--resume`` continues it once the cause is fixed: exit code 1."""

    exit_code = 1


class EnvironmentFault(RunFailed):
    """An environment plugin raised while judging a candidate's result: a bug in the plugin,
    not a failure of the candidate. Its child is stored as ``env-error``; a run stops after
    a few (``ENV_ERROR_LIMIT``), naming the plugin."""


class EditError(ValueError):
    """An agent's reply could not be applied as edits; the message goes back to the agent."""
