"""Staff tokens that change without a restart: settings plus a JSON file, re-read live.

Every service keeps its staff (coordinators; applications' reviewers too) in
one format (``pearls_shared.tokens.TokenEntry``). The entries of the
environment variable are fixed for the life of the process; a list may also
name a file (``PEARLS_<SERVICE>_COORDINATORS_FILE``) holding a JSON list in the
same format, whose entries join them. The file is read again

- when it changes: each lookup compares the file's ``stat`` (device, inode,
  modification time in ns, size) with the last one seen, one system call and
  no read while nothing changed. File times are coarse (a few ms on Linux), so
  a file modified within the last two seconds is read again on every lookup
  until it is older (as git does with its index): two quick edits of the same
  size are never mistaken for one;
- on ``SIGHUP`` (``reload_on_sighup``), which re-reads every file whatever its
  ``stat`` says.

A file that cannot be read, is not JSON, has an invalid entry or gives an id
or a token twice changes nothing: the last good entries stay in use and an
error is logged (``token_file_invalid``, with the path and what is wrong,
never a token). A file that is missing or invalid at start-up contributes no
entries until it is fixed. So a bad edit neither opens the API nor stops the
service; removing every token is an explicit ``[]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog
from pydantic import TypeAdapter, ValidationError

from pearls_shared.tokens import Principal, TokenBook, TokenEntry, check_distinct

log = structlog.get_logger(__name__)

T = TypeVar("T")

_RECENT_NS = 2_000_000_000  # a stat younger than this may hide a second edit
MAX_FILE_BYTES = 1 << 20  # a list of people, not a database: larger is a mistake
FILE_SETTING_HELP = (
    "JSON file with more entries in the same format, read again when it changes or on"
    " SIGHUP (tokens rotate without a restart); a malformed file keeps the last good"
    " entries and logs token_file_invalid."
)

Stamp = tuple[int, int, int, int]


class TokenFileError(ValueError):
    """A tokens file that cannot be used; the message never holds a token."""


@dataclass(frozen=True)
class TokenList:
    """One kind of token holder: its entry model, its configured entries, its file."""

    kind: str
    model: type[TokenEntry]
    configured: Sequence[TokenEntry] = ()
    file: Path | None = None


def principal(kind: str, entry: TokenEntry) -> Principal:
    """The usual value a book answers: the holder's role (the list's kind) and id."""
    return Principal(kind, entry.id)


def _stamp(path: Path) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _settled(stamp: Stamp | None) -> bool:
    """Whether the file is old enough for its stat to tell every later change."""
    return stamp is None or time.time_ns() - stamp[2] > _RECENT_NS


def read_token_file(path: Path, model: type[TokenEntry]) -> tuple[TokenEntry, ...]:
    """The entries of one tokens file, or ``TokenFileError`` saying what is wrong."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise TokenFileError(f"cannot read it ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise TokenFileError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        # The decoder's message names a position, never the text around it.
        raise TokenFileError(f"not JSON: {type(exc).__name__} at {_where(exc)}") from None
    if not isinstance(data, list):
        raise TokenFileError("must hold a JSON list of entries")
    try:
        entries = TypeAdapter(list[model]).validate_python(data)  # type: ignore[valid-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False, include_context=False)
        )
        raise TokenFileError(f"invalid entries: {problems}") from None
    return tuple(entries)


def _where(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return f"byte {exc.start}"
    return "?"


@dataclass
class _State(Generic[T]):
    from_file: dict[str, tuple[TokenEntry, ...]]
    book: TokenBook[T]
    stamps: dict[str, Stamp | None] = field(default_factory=dict)
    # The last refusal logged per kind (stat, error), so a bad file is reported once.
    refused: dict[str, tuple[Stamp | None, str]] = field(default_factory=dict)


class TokenFiles(Generic[T]):
    """The staff's tokens from settings and files, kept current; ``book`` looks them up.

    ``value(kind, entry)`` is what the book answers for a matching token
    (``principal`` by default gives ``Principal(kind, id)``).
    """

    def __init__(
        self,
        lists: Sequence[TokenList],
        value: Callable[[str, TokenEntry], T],
        *,
        service: str = "",
    ) -> None:
        self._lists = {item.kind: item for item in lists}
        self._value = value
        self._service = service
        self._state: _State[T] = _State({kind: () for kind in self._lists}, TokenBook(()))
        self._state.book = self._build(self._state.from_file)
        self.book: TokenBook[T] = _LiveBook(self)
        self.refresh(force=True)

    @property
    def watches_files(self) -> bool:
        return any(item.file is not None for item in self._lists.values())

    def entries(self, kind: str) -> tuple[TokenEntry, ...]:
        """The current entries of one kind: configured ones, then the file's."""
        self.refresh()
        return tuple(self._lists[kind].configured) + self._state.from_file[kind]

    def current_book(self) -> TokenBook[T]:
        """The book as it stands after looking at the files."""
        self.refresh()
        return self._state.book

    def refresh(self, *, force: bool = False) -> bool:
        """Read the files that changed (all of them with ``force``); True if tokens changed."""
        state = self._state
        candidate = dict(state.from_file)
        stamps = dict(state.stamps)
        changed: list[str] = []
        for kind, item in self._lists.items():
            if item.file is None:
                continue
            stamp = _stamp(item.file)
            if not force and kind in state.stamps and stamp == state.stamps[kind]:
                continue
            # Remembered even when the file is bad (it is read again when it changes);
            # not while it is recent, as its stat may not show the next edit.
            if _settled(stamp):
                stamps[kind] = stamp
            else:
                stamps.pop(kind, None)
            try:
                candidate[kind] = read_token_file(item.file, item.model)
            except TokenFileError as exc:
                self._refuse(kind, item.file, str(exc), stamp)
                continue
            changed.append(kind)
        if not changed:
            state.stamps = stamps
            return False
        try:
            check_distinct(
                {kind: [*item.configured, *candidate[kind]] for kind, item in self._lists.items()}
            )
            book = self._build(candidate)
        except ValueError as exc:
            for kind in changed:
                self._refuse(kind, self._lists[kind].file, str(exc), stamps.get(kind))
            state.stamps = stamps
            return False
        if candidate == state.from_file:
            state.stamps = stamps
            return False
        self._state = _State(candidate, book, stamps, state.refused)
        log.info(
            "tokens_reloaded",
            service=self._service,
            kinds=changed,
            entries={kind: len(candidate[kind]) for kind in changed},
        )
        return True

    def _refuse(self, kind: str, path: Path | None, why: str, stamp: Stamp | None) -> None:
        if self._state.refused.get(kind) == (stamp, why):
            return  # read again while recent: already said
        self._state.refused[kind] = (stamp, why)
        log.error(
            "token_file_invalid",
            service=self._service,
            kind=kind,
            path=str(path),
            error=why,
            effect="the last good tokens stay in use",
        )

    def _build(self, from_file: Mapping[str, Sequence[TokenEntry]]) -> TokenBook[T]:
        return TokenBook(
            (entry.digest, self._value(kind, entry))
            for kind, item in self._lists.items()
            for entry in (*item.configured, *from_file[kind])
        )


class _LiveBook(TokenBook[T]):
    """A book that looks at the files before every lookup."""

    def __init__(self, files: TokenFiles[T]) -> None:
        super().__init__(())
        self._files = files

    def identify(self, token: str) -> T | None:
        return self._files.current_book().identify(token)


def staff_tokens(lists: Sequence[TokenList], *, service: str = "") -> TokenFiles[Principal]:
    """``TokenFiles`` answering ``Principal(kind, id)``: what most services need."""
    return TokenFiles(lists, principal, service=service)


# -- SIGHUP --------------------------------------------------------------------------

_watched: weakref.WeakSet[TokenFiles[Any]] = weakref.WeakSet()
_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _reload_all() -> None:
    log.info("sighup_received", effect="tokens files read again")
    for files in list(_watched):
        files.refresh(force=True)


@contextmanager
def reload_on_sighup(files: TokenFiles[Any]) -> Iterator[None]:
    """While inside, ``SIGHUP`` makes ``files`` read every tokens file again.

    Call it from the running event loop (a service's lifespan). Several
    services in one process share the one handler. Where signals cannot be
    handled (not the main thread, not Unix), the files are still watched on use.
    """
    _watched.add(files)
    loop = asyncio.get_running_loop()
    if loop not in _loops:
        try:
            loop.add_signal_handler(signal.SIGHUP, _reload_all)
            _loops.add(loop)
        except (NotImplementedError, RuntimeError, ValueError, AttributeError):
            log.info("sighup_unavailable", effect="tokens files are still read when they change")
    try:
        yield
    finally:
        _watched.discard(files)
