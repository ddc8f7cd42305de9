"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import errno


class WorkbenchError(Exception):
    """A problem with the user's input (path, layout, file, shape, name): shown as one clear line."""


class DataError(WorkbenchError):
    """A data set on disk is missing, malformed or inconsistent; the message names the file."""


# OSErrors that are the machine's state or a path the user gave, not a bug: a full disk, a read-only or
# forbidden place, a name too long, a file where a folder is needed or the other way round.
_PATH_HINTS = {
    errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is too large for this file system",
    errno.EROFS: "choose an --out that can be written", errno.EACCES: "choose an --out that can be written",
    errno.EPERM: "choose an --out that can be written",
    errno.ENAMETOOLONG: "choose a shorter name",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a file is in the way of a folder",
    errno.EISDIR: "a folder is where a file is expected",
}


def path_error(exc: BaseException) -> WorkbenchError | None:
    """A WorkbenchError (one line for the user) for an OSError caused by the machine's state or by a path
    the user gave (see _PATH_HINTS), else None (a bug: it keeps its traceback)."""
    if not isinstance(exc, OSError) or exc.errno not in _PATH_HINTS:
        return None
    where = exc.filename or "output"
    return WorkbenchError(f"{where}: {exc.strerror or 'cannot write'} ({_PATH_HINTS[exc.errno]})")
