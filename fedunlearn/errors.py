"""The one error type the command line turns into a one-line message and exit code 2."""


class FedunlearnError(Exception):
    """A user-facing problem: the message names the problem and the fix, on one line."""
