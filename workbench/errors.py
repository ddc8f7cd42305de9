"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class WorkbenchError(Exception):
    """A problem with the user's input (path, layout, file, shape, name): shown as one clear line."""


class DataError(WorkbenchError):
    """A data set on disk is missing, malformed or inconsistent; the message names the file."""
