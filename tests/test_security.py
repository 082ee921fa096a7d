"""No code, symlink or FIFO planted by another local user is followed: the grammar cache
(the old shared $TMPDIR name and the per-user directory), and no escape sequence from an
input's name reaches a terminal."""

import json
import os
import pickle
import subprocess
import sys

import pytest

from gradcli import grammar_cache

ONE_LINER = ["grad", "mean(2*(x+2)^2)", "x=1,2,3"]
ANSWER = "tensor(33.3333, grad_fn=<MeanBackward0>)"


class _Plant:
    """Unpickling this creates ``marker``: proof that a planted file ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def hostile(marker):
    return pickle.dumps(_Plant(marker))


def env_for(tmp_path, xdg=True):
    env = dict(os.environ)
    for k in ("XDG_CACHE_HOME", "HOME", "TMPDIR"):
        env.pop(k, None)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    (tmp_path / "home").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")
    env["HOME"] = str(tmp_path / "home")
    if xdg:
        env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    return env


def gradcli(env, cwd, *args):
    p = subprocess.run(
        [sys.executable, "-m", "gradcli", *(args or ONE_LINER)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,  # a FIFO that blocks the open would hang here
    )
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stdout.startswith(ANSWER)
    return p


def cache_dir(tmp_path, xdg):
    return tmp_path / "xdg" / "gradcli" if xdg else tmp_path / "home" / ".cache" / "gradcli"


def tables_file(tmp_path, xdg=True):
    """Run once with an empty cache; the one tables file it wrote (a regular file, 0600, in
    a 0700 directory)."""
    env = env_for(tmp_path, xdg)
    gradcli(env, tmp_path)
    directory = cache_dir(tmp_path, xdg)
    (path,) = [p for p in directory.iterdir() if b"gradcli ops index" not in p.read_bytes()]
    assert path.is_file() and not path.is_symlink()
    assert directory.stat().st_mode & 0o777 == 0o700 and path.stat().st_mode & 0o777 == 0o600
    return env, path


def test_the_cache_is_used(tmp_path):
    """A second start loads the tables the first one stored, and rewrites nothing."""
    env, path = tables_file(tmp_path)
    before = path.stat()
    gradcli(env, tmp_path)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert len(list(path.parent.iterdir())) == 2  # and the operator index (gradcli.ops)
    assert not any((tmp_path / "tmp").iterdir())  # nothing in the shared temp dir


# ---- the old shared name in $TMPDIR ------------------------------------------------------


# What gradcli <= 0.1 ran: Lark's cache=True, with the options that name the cache file
# (postlex and transformer do not; a failing build does not matter, the load comes first).
LARK_CACHE_CODE = """
import sys
from lark import lark
from gradcli.parser import _grammar_path
if sys.argv[1:] == ["name"]:  # only say which file would be read
    def spy(name, mode="r", **kwargs):
        print(name)
        raise FileNotFoundError(name)
    lark.FS.open = spy
try:
    lark.Lark(open(_grammar_path()).read(), parser="lalr", lexer="basic",
              maybe_placeholders=True, cache=True)
except Exception:
    pass
"""


def old_lark_cache_name(tmp_path):
    """The file Lark's cache=True reads for our grammar: Lark itself names it."""
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    out = subprocess.run(
        [sys.executable, "-c", LARK_CACHE_CODE, "name"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    path = out[0]
    assert os.path.dirname(path) == str(tmp_path / "tmp")
    name = os.path.basename(path)
    assert name.startswith(".lark_cache_") and name.endswith(".tmp")
    return name


def test_old_tmpdir_cache_is_not_read(tmp_path):
    env = env_for(tmp_path)
    name = old_lark_cache_name(tmp_path)
    tmp = tmp_path / "tmp"
    marker = tmp_path / "ran-code"
    (tmp / name).write_bytes(b"x\n" + hostile(marker))
    # The control: Lark's own cache=True runs the planted pickle (the bug this fixes).
    subprocess.run(
        [sys.executable, "-c", LARK_CACHE_CODE], env=env, timeout=60, capture_output=True
    )
    assert marker.exists()
    marker.unlink()
    (tmp / name).write_bytes(b"x\n" + hostile(marker))  # Lark rewrote it: plant again
    gradcli(env, tmp_path)
    assert not marker.exists()


def test_old_tmpdir_symlink_and_fifo_are_not_followed(tmp_path):
    env = env_for(tmp_path)
    name = old_lark_cache_name(tmp_path)
    tmp = tmp_path / "tmp"
    precious = tmp_path / "precious"
    precious.write_text("keep me")
    (tmp / name).symlink_to(precious)
    gradcli(env, tmp_path)
    assert precious.read_text() == "keep me"
    (tmp / name).unlink()
    os.mkfifo(tmp / name)
    gradcli(env, tmp_path)  # returns: the FIFO is never opened
    assert sorted(p.name for p in tmp.iterdir()) == [name]


# ---- the per-user cache ------------------------------------------------------------------


@pytest.mark.parametrize("xdg", [True, False], ids=["XDG_CACHE_HOME", "HOME"])
def test_planted_pickle_runs_nothing(tmp_path, xdg):
    env, path = tables_file(tmp_path, xdg)
    marker = tmp_path / "ran-code"
    header = grammar_cache.FORMAT + b" " + path.name.encode() + b"\n"
    path.write_bytes(header + hostile(marker))
    gradcli(env, tmp_path)
    assert not marker.exists()
    assert path.read_bytes().startswith(header) and b"ran-code" not in path.read_bytes()


@pytest.mark.parametrize("xdg", [True, False], ids=["XDG_CACHE_HOME", "HOME"])
def test_planted_symlink_is_replaced_not_followed(tmp_path, xdg):
    env, path = tables_file(tmp_path, xdg)
    precious = tmp_path / "precious"
    precious.write_text("keep me")
    path.unlink()
    path.symlink_to(precious)
    gradcli(env, tmp_path)
    assert precious.read_text() == "keep me"
    assert path.is_file() and not path.is_symlink()


@pytest.mark.parametrize("xdg", [True, False], ids=["XDG_CACHE_HOME", "HOME"])
def test_planted_fifo_does_not_block(tmp_path, xdg):
    env, path = tables_file(tmp_path, xdg)
    path.unlink()
    os.mkfifo(path)
    gradcli(env, tmp_path)
    assert path.is_file()


def test_symlinked_cache_directory_is_not_used(tmp_path):
    env = env_for(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "xdg").mkdir()
    (tmp_path / "xdg" / "gradcli").symlink_to(elsewhere)
    gradcli(env, tmp_path)
    assert not any(elsewhere.iterdir())


def planted_file_is_untouched(tmp_path, directory, owner=None):
    """Plant a file under the tables' name in ``directory``; a run neither reads-and-replaces
    it nor writes anything beside it."""
    (tmp_path / "probe").mkdir()
    _, path = tables_file(tmp_path / "probe")  # the real file name, from a clean run
    planted = directory / path.name
    planted.write_bytes(b"not tables")
    if owner is not None:
        os.chown(planted, owner, owner)
        os.chown(directory, owner, owner)
    before = planted.stat()
    gradcli(env_for(tmp_path), tmp_path)
    after = planted.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in directory.iterdir()] == [path.name]


def test_cache_directory_writable_by_others_is_not_used(tmp_path):
    directory = tmp_path / "xdg" / "gradcli"
    directory.mkdir(parents=True)
    directory.chmod(0o777)
    planted_file_is_untouched(tmp_path, directory)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_cache_directory_of_another_user_is_not_used(tmp_path):
    directory = tmp_path / "xdg" / "gradcli"
    directory.mkdir(parents=True, mode=0o700)
    planted_file_is_untouched(tmp_path, directory, owner=54321)


def test_tables_file_writable_by_others_is_replaced(tmp_path):
    env, path = tables_file(tmp_path)
    path.chmod(0o666)
    before = path.stat()
    gradcli(env, tmp_path)
    assert path.stat().st_ino != before.st_ino and path.stat().st_mode & 0o777 == 0o600


def test_unusable_cache_locations_cost_only_the_cache(tmp_path):
    """A directory where the tables should be, a cache path under a regular file: the
    command still answers (building the tables), and nothing is written anywhere else."""
    env, path = tables_file(tmp_path)
    path.unlink()
    path.mkdir()
    names = sorted(p.name for p in path.parent.iterdir())
    gradcli(env, tmp_path)
    assert path.is_dir() and sorted(p.name for p in path.parent.iterdir()) == names
    (tmp_path / "file").write_text("")
    gradcli({**env, "XDG_CACHE_HOME": str(tmp_path / "file" / "cache")}, tmp_path)
    assert (tmp_path / "file").read_text() == ""


def test_unpickler_refuses_every_global():
    import io

    with pytest.raises(pickle.UnpicklingError):
        grammar_cache._PlainUnpickler(io.BytesIO(hostile("/nonexistent/x"))).load()
    plain = {"data": [1, "a", (2, None)], "memo": {0: True}}
    assert grammar_cache._PlainUnpickler(io.BytesIO(pickle.dumps(plain))).load() == plain


def test_no_home_means_no_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", "relative/home")
    assert grammar_cache.cache_dir() is None
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path))
    assert grammar_cache.cache_dir() == str(tmp_path / ".cache" / "gradcli")


# ---- input names: names, as in the program; whatever a user typed is shown escaped ----

TITLE = "\x1b]0;TITLE\x07\x1b[2J"  # sets the terminal's title, then clears the screen


def no_control_characters(text):
    return all(c.isprintable() or c == "\n" for c in text)


def cli(*args, input=None):
    from click.testing import CliRunner

    from gradcli.cli import main

    r = CliRunner().invoke(main, list(args), input=input)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r


def test_escape_sequence_as_an_input_name_is_refused_and_shown_escaped():
    r = cli("grad", "sum(x)", "-i", "-", input=json.dumps({"x": [1, 2], TITLE: 1}))
    assert r.exit_code == 2 and no_control_characters(r.output), repr(r.output)
    assert "error: input name '\\x1b]0;TITLE\\x07\\x1b[2J' is not a name" in r.output
    j = cli("grad", "sum(x)", "-i", "-", "--json", input=json.dumps({"x": 1, TITLE: 1}))
    assert json.loads(j.output.splitlines()[-1])["error"]["type"] == "InputError"


def test_batch_record_with_a_bad_name():
    line = json.dumps({"expr": "sum(x)", "inputs": {"x": 1, TITLE: 2}})
    r = cli("batch", input=line + "\n")
    answer = json.loads(r.output.splitlines()[0])
    assert answer["error"]["type"] == "InputError"
    assert no_control_characters(answer["error"]["message"])
    assert "\\x1b]0;TITLE" in answer["error"]["message"]


@pytest.mark.parametrize(
    "name", ["1x", "a b", "x-y", "é", "\u0445", "", "x\n", "x\u202e", "λ", "_" * 50 + "\x00"]
)
def test_api_names_must_be_identifiers(name):
    import gradcli

    with pytest.raises(gradcli.InputError, match="is not a name") as info:
        gradcli.evaluate("sum(x)", {"x": 1.0, name: 1.0})
    message = info.value.message  # every character of the name escaped; long ones elided
    assert all(c.isascii() or c == "…" for c in message) and no_control_characters(message)


def test_good_names_still_work_and_non_strings_are_refused():
    import gradcli

    r = gradcli.evaluate("sum(_x1 * X_2)", {"_x1": [1.0, 2.0], "X_2": 3.0, "unused_9": 1.0})
    assert float(r.value) == 9 and r.grad["unused_9"] is None
    with pytest.raises(gradcli.InputError, match="input name 1 is not a name"):
        gradcli.evaluate("x", {"x": 1.0, 1: 2.0})


def test_other_user_text_in_messages_is_escaped():
    for args in (
        ["grad", "sum(x)", "x=1", "--wrt", TITLE],
        ["grad", "sum(x)", "-i", "-"],
        ["grad", "sum(x)", "x=zeros(\x1b[2J)"],
        ["batch", "--dtype", "float32"],
    ):
        stdin = {
            "-i": json.dumps({"x": TITLE}),
            "batch": json.dumps({"expr": "sum(x)", "inputs": {"x": 1}, "dtype": TITLE}) + "\n",
        }
        r = cli(*args, input=stdin["batch" if args[0] == "batch" else "-i"])
        assert r.exit_code in (1, 2) and no_control_characters(r.output), (args, r.output)
        assert "\\x1b" in r.output or "\\u001b" in r.output
