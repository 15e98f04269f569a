"""Credential redaction for every string that leaves the process (log lines, JSON Lines, error lines,
the summary, stream labels and file names).

    redact("rtsp://admin:p@ss/w0rd@cam:554/live?token=abc")  ->  "rtsp://***@cam:554/live?token=***"

:func:`redact` hides

* the user-info of every ``scheme://user:password@host`` URL anywhere in the text (a bare URL or one
  quoted inside an FFmpeg error message), up to the *last* ``@`` of the URL, so passwords holding
  ``@`` or ``/`` are hidden whole;
* the values of secret-looking query / option parameters (``password=``, ``passwd=``, ``pwd=``,
  ``token=``, ``key=``, ``secret=``, ``auth=``, ``signature=``, ``sig=``, ``credential=`` and names
  containing them, e.g. ``access_token=``, ``api_key=``, ``X-Amz-Signature=``);
* every secret registered with :func:`remember` (the user-info and secret parameter values of each
  input URL, registered when a source opens it), wherever it appears, e.g. in text FFmpeg rewrote.

:class:`RedactFilter` applies it to log records; the package's loggers carry one.
"""
from __future__ import annotations

import logging
import re
import threading
from urllib.parse import unquote

MASK = "***"

# scheme://  then the URL up to whitespace, a quote or a bracket (how URLs end inside messages)
_URL = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<rest>[^\s'\"<>`]*)")
_SECRET_NAMES = r"[\w.-]*(?:pass(?:word|wd)?|pwd|token|key|secret|auth|signature|sig|credential|session)[\w.-]*"
_PARAM = re.compile(rf"(?P<name>(?:^|(?<=[?&;\s,]))(?:{_SECRET_NAMES})=)(?P<value>[^&;#\s'\"<>]*)", re.IGNORECASE)

_known: set[str] = set()
_lock = threading.Lock()


def _userinfo_end(rest: str) -> int:
    """Index of the last '@' of the URL's authority (-1: none). A password may hold '@', '/', '?' or '#', so
    the authority is taken to run to the last '@' before the host (an '@' in the path is rare; hiding too much
    is the safe side)."""
    return rest.rfind("@")


def _url_sub(m: re.Match) -> str:
    rest = m.group("rest")
    at = _userinfo_end(rest)
    if at >= 0:
        rest = MASK + rest[at:]
    return m.group("scheme") + rest


def redact(text: object) -> str:
    """``text`` (any object, as str) with credentials hidden; see the module docstring."""
    s = str(text)
    if not s:
        return s
    s = _URL.sub(_url_sub, s)
    s = _PARAM.sub(lambda m: m.group("name") + MASK, s)
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:  # longest first, so a secret holding another is hidden whole
        if secret in s:
            s = s.replace(secret, MASK)
    return s


def secrets_of(uri: str) -> list[str]:
    """The secrets in a URI: its user-info (and the password alone, raw and %-decoded) and secret
    parameter values."""
    found: list[str] = []
    m = _URL.search(uri)
    if m:
        rest = m.group("rest")
        at = _userinfo_end(rest)
        if at > 0:
            userinfo = rest[:at]
            found.append(userinfo)
            if ":" in userinfo:
                found.append(userinfo.split(":", 1)[1])
    for p in _PARAM.finditer(uri):
        found.append(p.group("value"))
    out = []
    for value in found:
        for v in (value, unquote(value)):
            if len(v) >= 3 and v not in out:  # very short values would mask unrelated text
                out.append(v)
    return out


def remember(uri: str) -> None:
    """Register the secrets of an input URI, so :func:`redact` hides them wherever they appear."""
    values = secrets_of(str(uri))
    if values:
        with _lock:
            _known.update(values)


class RedactFilter(logging.Filter):
    """A logging filter that redacts the formatted message (and exception text) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - leave a broken record to logging's own error handling
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
        return True


def protect(logger: logging.Logger) -> logging.Logger:
    """Add a RedactFilter to `logger` (once) and return it."""
    if not any(isinstance(f, RedactFilter) for f in logger.filters):
        logger.addFilter(RedactFilter())
    return logger
