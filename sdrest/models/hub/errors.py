"""The one error type of model downloads: a stable ``code`` and a message naming the problem and
its fix. Messages never hold a token: they are built from our own words, URLs without credentials
and the hub's status, never from a request's headers."""

from __future__ import annotations

from sdrest.errors import SdrestError

__all__ = ["HubError"]

#: The codes a HubError carries (stable: the API and the UI show them).
CODES = (
    "not_found",  # the hub has no such repository, revision, file or model version
    "gated",  # a gated or private repository, and no token (or one without access)
    "unauthorized",  # the hub refused the token, or the file needs sign-in
    "host_not_allowed",  # a plain URL (or a redirect) to a host the download host policy refuses
    "too_large",  # over --max-download-gb
    "hash_mismatch",  # the bytes' sha256 is not the expected one
    "invalid_sha256",  # the sha256 asked for is not 64 hexadecimal digits
    "not_a_model",  # an HTML page or other bytes that are no model file
    "wrong_type",  # a model file of another type than asked, or an extension the type does not take
    "invalid_name",  # a file name that would leave its folder
    "disk_full",  # not enough free space, or the disk filled up
    "unreachable",  # the hub did not answer (after the retries)
    "bad_response",  # the hub answered something we cannot use
    "exists",  # another file of that name is already in the folder
    "cancelled",  # the caller stopped the download
)


class HubError(SdrestError):
    """A download or hub lookup that failed; ``code`` is one of :data:`CODES`."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:
            raise ValueError(f"unknown HubError code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
