"""Safe opening of ZIP containers (3MF, .gcode.3mf) uploaded by students and staff.

A 3MF file is a ZIP archive (3MF Consortium, "3MF Core Specification", part 2: OPC
package). Uploads are untrusted, so :func:`check_zip` reads only the archive's directory
and refuses, before a single entry is decompressed, anything that could exhaust memory,
disk or time (ZIP bombs, millions of entries) or that names a path outside the archive.
:class:`SafeZip` then reads entries while counting the bytes actually produced, so an
entry whose header lies about its size is refused as well.

Every refusal is a :class:`printcore.errors.UnsupportedFileError` whose message says
what to do instead.
"""

from __future__ import annotations

import lzma
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Generator
from pathlib import Path
from types import TracebackType
from typing import Self

import attrs

from printcore.errors import UnsupportedFileError

__all__ = ["DEFAULT_LIMITS", "ArchiveLimits", "SafeZip", "check_zip"]

#: What a refusal suggests when the caller gives no advice of its own.
DEFAULT_ADVICE = "export the file again from the program that made it"

#: Bytes of central directory allowed per permitted entry (names are rarely > 200 chars).
_DIRECTORY_BYTES_PER_ENTRY = 1024

# End of central directory record (PKWARE APPNOTE 4.3.16) and its ZIP64 variants.
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"

#: Exceptions the standard library raises on damaged or hostile archives.
_ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    ValueError,
    EOFError,
    struct.error,
    NotImplementedError,
    RuntimeError,  # encrypted entries
    zlib.error,
    lzma.LZMAError,
)


@attrs.frozen
class ArchiveLimits:
    """Limits applied to a ZIP container before anything in it is decompressed.

    ``max_entries``: most entries (files and folders) the archive may list.
    ``max_uncompressed_bytes``: most bytes all entries may declare together, uncompressed.
    ``max_ratio``: highest uncompressed/compressed size ratio allowed for one entry,
    checked only for entries larger than ``ratio_min_bytes`` (bytes, uncompressed), so
    small, very regular files such as XML settings are not refused.
    """

    max_entries: int = 10_000
    max_uncompressed_bytes: int = 2_000_000_000
    max_ratio: float = 200.0
    ratio_min_bytes: int = 1_000_000


#: The limits used when a caller gives none.
DEFAULT_LIMITS = ArchiveLimits()


def check_zip(
    path: Path,
    limits: ArchiveLimits,
    *,
    kind: str = "ZIP",
    advice: str = DEFAULT_ADVICE,
) -> SafeZip:
    """Open the ZIP archive at ``path`` after checking its directory against ``limits``.

    Only the archive's directory is read: no entry is decompressed here. ``kind`` names
    the format in messages (``"3MF"``), ``advice`` says what the user should do instead.

    Raises :class:`UnsupportedFileError` when the file is not a ZIP archive, lists more
    than ``limits.max_entries`` entries, declares more than
    ``limits.max_uncompressed_bytes`` bytes uncompressed in total, has an entry
    compressed more than ``limits.max_ratio`` times (entries over
    ``limits.ratio_min_bytes``), or has an entry name that is absolute or contains
    ``..``. ``FileNotFoundError`` when ``path`` does not exist (a caller's mistake).
    The returned :class:`SafeZip` must be closed (it is a context manager).
    """

    def refuse(reason: str) -> UnsupportedFileError:
        return UnsupportedFileError(f"The file is not a valid {kind} file: {reason}; {advice}.")

    declared = _declared_directory(path)
    if declared is None:
        raise refuse("it is not a ZIP archive or it is damaged")
    declared_entries, directory_bytes = declared
    if declared_entries > limits.max_entries:
        raise refuse(
            f"it lists {declared_entries:,} files, more than the {limits.max_entries:,} allowed"
        )
    if directory_bytes > limits.max_entries * _DIRECTORY_BYTES_PER_ENTRY:
        raise refuse(f"its table of contents is {directory_bytes:,} bytes, far too large")

    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise refuse(f"it is not a ZIP archive or it is damaged ({exc})") from exc
    try:
        _check_directory(archive.infolist(), limits, refuse)
    except BaseException:
        archive.close()
        raise
    return SafeZip(archive, kind=kind, advice=advice)


class SafeZip:
    """A checked ZIP archive whose entries are read with their sizes verified.

    Made by :func:`check_zip`; use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, archive: zipfile.ZipFile, *, kind: str, advice: str) -> None:
        self.zipfile = archive
        self.kind = kind
        self.advice = advice

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying archive and its file."""
        self.zipfile.close()

    def infolist(self) -> list[zipfile.ZipInfo]:
        """The entries, as listed (and checked) in the archive's directory."""
        return self.zipfile.infolist()

    def find(self, name: str) -> zipfile.ZipInfo | None:
        """The entry called ``name``, compared case-insensitively, ignoring a leading ``/``."""
        wanted = name.lstrip("/").casefold()
        for info in self.zipfile.infolist():
            if info.filename.lstrip("/").casefold() == wanted:
                return info
        return None

    def find_all(self, pattern: str) -> list[zipfile.ZipInfo]:
        """Entries whose whole name matches the regular expression ``pattern``, ignoring case."""
        regex = re.compile(pattern, re.IGNORECASE)
        return [info for info in self.zipfile.infolist() if regex.fullmatch(info.filename)]

    def iter_chunks(
        self, info: zipfile.ZipInfo, chunk_size: int = 1 << 20
    ) -> Generator[bytes, None, None]:
        """Yield the uncompressed bytes of ``info`` in chunks of at most ``chunk_size`` bytes.

        Counts the bytes actually produced and raises :class:`UnsupportedFileError` as soon
        as they exceed the size the entry declares (a lying header), or when the entry is
        shorter than declared, encrypted, uses an unknown compression or fails its CRC.
        """
        declared = info.file_size
        produced = 0
        try:
            with self.zipfile.open(info) as stream:
                while chunk := stream.read(chunk_size):
                    produced += len(chunk)
                    if produced > declared:
                        raise self._refuse(
                            f"'{info.filename}' holds more data than its header declares "
                            f"({declared:,} bytes)"
                        )
                    yield chunk
        except _ZIP_ERRORS as exc:
            raise self._refuse(f"'{info.filename}' cannot be read ({exc})") from exc
        if produced != declared:
            raise self._refuse(
                f"'{info.filename}' holds {produced:,} bytes, not the {declared:,} its header "
                "declares"
            )

    def read(self, info: zipfile.ZipInfo, max_bytes: int | None = None) -> bytes:
        """Return the whole uncompressed content of ``info``, size-checked as in :meth:`iter_chunks`.

        ``max_bytes`` (bytes): refuse entries declaring more than this, without reading them.
        """
        if max_bytes is not None and info.file_size > max_bytes:
            raise self._refuse(
                f"'{info.filename}' is {info.file_size:,} bytes, more than the {max_bytes:,} "
                "expected for it"
            )
        return b"".join(self.iter_chunks(info))

    def _refuse(self, reason: str) -> UnsupportedFileError:
        return UnsupportedFileError(
            f"The file is not a valid {self.kind} file: {reason}; {self.advice}."
        )


def _declared_directory(path: Path) -> tuple[int, int] | None:
    """(entry count, central directory bytes) from the end record, or None if not a ZIP.

    Read straight from the file so a hostile archive is refused before ``zipfile``
    parses (and allocates for) every entry of its directory.
    """
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        tail_size = min(size, _EOCD.size + 0xFFFF)
        handle.seek(size - tail_size)
        tail = handle.read(tail_size)
        at = tail.rfind(_EOCD_SIGNATURE)
        if at < 0 or len(tail) - at < _EOCD.size:
            return None
        fields = _EOCD.unpack_from(tail, at)
        entries, directory_bytes = int(fields[4]), int(fields[5])
        locator_at = at - _ZIP64_LOCATOR.size
        if locator_at >= 0 and tail[locator_at : locator_at + 4] == _ZIP64_LOCATOR_SIGNATURE:
            record_offset = _ZIP64_LOCATOR.unpack_from(tail, locator_at)[2]
            if record_offset + _ZIP64_EOCD.size <= size:
                handle.seek(record_offset)
                record = handle.read(_ZIP64_EOCD.size)
                if record[:4] == _ZIP64_EOCD_SIGNATURE:
                    fields64 = _ZIP64_EOCD.unpack(record)
                    entries, directory_bytes = int(fields64[7]), int(fields64[8])
        return entries, directory_bytes


def _check_directory(
    infos: list[zipfile.ZipInfo],
    limits: ArchiveLimits,
    refuse: Callable[[str], UnsupportedFileError],
) -> None:
    if len(infos) > limits.max_entries:
        raise refuse(f"it lists {len(infos):,} files, more than the {limits.max_entries:,} allowed")
    total = 0
    for info in infos:
        problem = _unsafe_name(info.filename)
        if problem:
            raise refuse(f"it contains an entry named {info.filename!r} that {problem}")
        total += info.file_size
        if info.file_size > limits.ratio_min_bytes and (
            info.file_size > limits.max_ratio * info.compress_size
        ):
            ratio = info.file_size / max(info.compress_size, 1)
            raise refuse(
                f"'{info.filename}' would expand {ratio:,.0f} times to {info.file_size:,} bytes "
                f"(more than {limits.max_ratio:g} times is refused as a ZIP bomb)"
            )
    if total > limits.max_uncompressed_bytes:
        raise refuse(
            f"it would expand to {total:,} bytes, more than the "
            f"{limits.max_uncompressed_bytes:,} allowed"
        )


def _unsafe_name(name: str) -> str | None:
    """Why an entry name could escape the archive when extracted, or None when it is safe."""
    normalised = name.replace("\\", "/")
    if "\x00" in normalised:
        return "contains a NUL character"
    if normalised.startswith("/") or re.match(r"[A-Za-z]:", normalised):
        return "is an absolute path"
    if ".." in normalised.split("/"):
        return "points outside the archive with '..'"
    return None
