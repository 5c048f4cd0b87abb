"""The one kind of error a person fixes in their inputs rather than in the code.

A `UserError` names what is wrong and what to do about it in one paragraph; the CLI prints that paragraph
and exits with status 2, keeping the traceback for `--debug`. Everything else is a bug, reported with its
traceback. The stages' own errors (a bad setting, a coder that does not fit the model, an empty corpus, a
judge that does not answer) derive from it.
"""


class UserError(Exception):
    """A problem with the settings, the inputs or the services they name, explained in the message."""


class RunFailedError(Exception):
    """A pipeline run that failed for another reason (a bug, a crash): the CLI exits with status 1."""
