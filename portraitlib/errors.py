"""Errors shared by the profiles and the modules they configure."""


class ProfileError(ValueError):
    """A profile name, key or value that is not valid; the message lists the valid ones."""
