"""Errors users can fix themselves: `run.py` prints them as one line and exits with status 2."""


class UserError(Exception):
    """Bad input (config, data file, environment). The message names the field or file and the fix."""


class ConfigError(UserError):
    """The run configuration is invalid."""


class DataError(UserError):
    """A data source is missing, unreadable or has the wrong shape."""
