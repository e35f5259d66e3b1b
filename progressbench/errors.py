"""Errors the CLI turns into one clear line and a non-zero exit instead of a traceback."""


class UserError(Exception):
    """A mistake in the user's input (config, arguments, URLs): exit code 2."""

    exit_code = 2


class PluginError(UserError):
    """A plugin is broken or collides with another one."""


class EditError(ValueError):
    """An agent's reply could not be applied as edits; the message goes back to the agent."""
