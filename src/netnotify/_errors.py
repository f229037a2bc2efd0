"""The exceptions of netnotify.

The C extension imports this module by name at initialisation and raises these classes, constructed as
``cls(errno, message)``; on platforms other than Windows it then sets ``winerror`` itself (on Windows,
``OSError`` fills it). The class names here are part of its ABI.
"""

__all__ = [
    "AccessDeniedError",
    "InvalidHandleError",
    "InvalidParameterError",
    "NetioError",
    "NotFoundError",
    "NotSupportedError",
]


class NetioError(OSError):
    """A native network call failed.

    ``winerror`` is the Win32 error code (native on Windows, mapped from ``errno`` elsewhere), ``errno`` the
    POSIX error number (native on Linux, mapped from ``winerror`` on Windows) and the message names the call.
    """

    winerror: int


class InvalidParameterError(NetioError, ValueError):
    """ERROR_INVALID_PARAMETER (87): an argument was out of range, e.g. an unknown address family."""


class InvalidHandleError(NetioError, ValueError):
    """ERROR_INVALID_HANDLE (6): the notification handle was already cancelled."""


class NotFoundError(NetioError):
    """ERROR_NOT_FOUND (1168) or ERROR_FILE_NOT_FOUND (2): no such interface, address or route."""


class NotSupportedError(NetioError):
    """ERROR_NOT_SUPPORTED (50) or ERROR_PROC_NOT_FOUND (127): this platform cannot do that."""


class AccessDeniedError(NetioError, PermissionError):
    """ERROR_ACCESS_DENIED (5): the caller lacks the privilege the call needs."""
