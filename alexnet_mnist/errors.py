"""Errors a user causes and can fix from the message alone."""


class UserError(Exception):
    """A bad setting, file or dataset; the command line reports it as one line and exits non-zero."""


class PeerLost(UserError):
    """Another worker of a multi-worker job died or stopped answering: this one cannot go on."""


class RunStopped(UserError):
    """A run that had to stop after doing some work: its directory, log included, is kept."""
