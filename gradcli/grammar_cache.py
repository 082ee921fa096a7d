"""The grammar's LALR tables, cached per user.

Building the tables from grammars/gradcli.lark costs tens of milliseconds on every start;
loading them costs two or three. Lark's own ``cache=True`` keeps them in a file with a
predictable name in the shared temporary directory and unpickles whatever is there, so any
local user could plant code, a symlink or a FIFO in it. This cache instead lives in the
user's own directory (``$XDG_CACHE_HOME/gradcli``, else ``~/.cache/gradcli``), is used only
when that directory and the file are the user's own, not writable by anyone else, and not
symlinks, and is read by an unpickler that refuses every global: the tables are plain
dicts, lists, strings and numbers, so no stored byte can name a function to call. Anything
unexpected means no cache: the tables are built from the grammar, as without one.

One file holds both Lark's tables and the lean loop's (gradcli.lalr): a program that parses
needs only the latter, and so no import of Lark at all.
"""

import contextlib
import io
import os
import pickle
import stat
import zlib

FORMAT = b"gradcli lark tables 2"
MAX_BYTES = 16 << 20  # the tables are ~30 KB; a bigger file is not ours
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO opens at once (and is then refused)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# Relative opens and renames inside an open directory keep every later step in the
# directory that was checked, even if its path is swapped meanwhile.
_SUPPORTED = (
    bool(_NOFOLLOW and _DIRECTORY)
    and os.open in os.supports_dir_fd
    and os.rename in os.supports_dir_fd
    and os.unlink in os.supports_dir_fd
)


def cache_dir():
    """The per-user cache directory's path (not created), or None without a home."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is to be ignored
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "gradcli")


def file_name(key):
    """The cache file's name for ``key``: a checksum (the whole key is kept in the file and
    compared, so a clash only costs a rebuild)."""
    return f"tables-{zlib.crc32(key.encode('utf-8')):08x}.pickle"


def load(key):
    """The plain data (a dict) stored for ``key`` -- a string of everything the data
    depends on -- or None."""
    name = file_name(key)
    directory = _open_dir()
    if directory is None:
        return None
    try:
        data = _read(directory, name)
    finally:
        os.close(directory)
    if data is None or data.get("key") != key or not isinstance(data.get("value"), dict):
        return None
    return data["value"]


def store(key, value):
    """Keep ``value`` (a dict of plain data: dicts, lists, strings, numbers, None) for
    ``key``; nothing happens without a private cache directory."""
    directory = _open_dir()
    if directory is None:
        return
    try:
        body = pickle.dumps({"key": key, "value": value}, protocol=4)
    except Exception:  # noqa: BLE001 - not plain data: nothing to cache
        os.close(directory)
        return
    try:
        _write(directory, file_name(key), body)
    finally:
        os.close(directory)


def lark_data(parser):
    """A Lark parser's tables as a pickle of plain data (kept as bytes, so that a start that
    needs only the lean loop's tables does not unpickle them), or None. Its runtime options
    -- postlex, transformer -- are objects: they are given again at each load, never stored."""
    from lark import lark as lark_module

    buffer = io.BytesIO()
    try:
        parser.save(buffer, lark_module._LOAD_ALLOWED_OPTIONS)
    except Exception:  # noqa: BLE001 - a cache is optional
        return None
    return buffer.getvalue()


def lark_from(blob, *, postlex=None, transformer=None):
    """The Lark parser lark_data() described, or None for damaged data."""
    from lark import Lark

    try:
        data = _PlainUnpickler(io.BytesIO(blob)).load()
        return Lark._load_from_dict(
            data["data"], data["memo"], postlex=postlex, transformer=transformer
        )
    except Exception:  # noqa: BLE001 - a damaged cache only costs a rebuild
        return None


def _private(st):
    """Owned by whoever runs us, and writable by no one else."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _open_dir():
    """The cache directory, created with mode 0700, opened without following a symlink;
    None when there is none or it is not private to this user."""
    path = cache_dir()
    if not _SUPPORTED or path is None:
        return None
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        st = None
    if st is None or not stat.S_ISDIR(st.st_mode) or not _private(st):
        os.close(fd)
        return None
    return fd


class _PlainUnpickler(pickle.Unpickler):
    """Builds only plain data: a reference to any class or function is refused, so loading
    can call nothing."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused: {module}.{name}")


def _read(directory, name):
    """The stored data, or None (missing, not a private regular file, damaged)."""
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC, dir_fd=directory)
    except OSError:  # missing, or a symlink (ELOOP)
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _private(st) or st.st_size > MAX_BYTES:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    header, _, body = raw.partition(b"\n")
    if header != FORMAT + b" " + name.encode():
        return None
    try:
        data = _PlainUnpickler(io.BytesIO(body)).load()
    except Exception:  # noqa: BLE001 - damaged or hostile: not our tables
        return None
    return data if isinstance(data, dict) else None


def _write(directory, name, body):
    """Store ``body`` (a pickle) atomically: a new private file in the directory, renamed
    over the name (which replaces a symlink or FIFO there, never writes through it)."""
    buffer = io.BytesIO()
    buffer.write(FORMAT + b" " + name.encode() + b"\n")
    buffer.write(body)
    tmp = f".{name}.{os.urandom(8).hex()}.tmp"
    try:
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC,
            0o600,
            dir_fd=directory,
        )
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
        os.replace(tmp, name, src_dir_fd=directory, dst_dir_fd=directory)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=directory)
