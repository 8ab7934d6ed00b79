"""The one exception type a user sees: printed as a single line by the CLI, exit code 2."""


class UserError(Exception):
    """Bad input (params, paths, models, hardware requests). The message is one line."""
