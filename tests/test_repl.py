"""`gradcli repl`: the session's logic directly, then the installed console script in a real
terminal (tmux): typed into, and its screen read back."""

import os
import shutil
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from pictures import need, need_module, need_tool

from gradcli.cli import main
from gradcli.repl import Session, history_path, names


def test_lines_build_a_program_and_answer_in_grads_format():
    s = Session()
    assert s.line(":let x = -1.0475,0.2038,0.2971") == "x = -1.0475,0.2038,0.2971\n"
    out = s.line("y = 2*(x+2)^2")
    assert out.startswith("tensor([ 1.8145,  9.7135, 10.5533], grad_fn=<MulBackward0>)")
    assert "not a scalar" in out
    out = s.line("mean(y)")
    assert out.startswith("tensor(7.3604, grad_fn=<MeanBackward0>)")
    assert "x.grad\ntensor([1.2700, 2.9384, 3.0628])" in out
    assert s.program() == "y = 2*(x+2)^2\nmean(y)"
    # :let re-evaluates; any VALUE form works
    assert "tensor(8., grad_fn=<MeanBackward0>)" in s.line(":let x = zeros(3)")  # 2*(0+2)^2
    assert "x = linspace(0,1,3)" in s.line(":let x = linspace(0,1,3)")


def test_commands():
    s = Session()
    s.line(":let x = 1,2")
    s.line(":let w = 3")
    s.line("sum(x * w)")
    assert s.line(":wrt w") == "wrt: w\n"
    out = s.line("sum(x * w)")
    assert "w.grad\ntensor(3.)" in out and "x.grad" not in out
    assert s.line(":dtype float64") == "dtype: float64\n"
    assert "dtype=torch.float64" in s.line("sum(x * w)")
    assert s.line(":json") == "json: on\n"
    assert '"grad": {"w": 3.0}' in s.line("sum(x * w)")
    s.line(":json")
    assert "SumBackward0" in s.line(":graph") and "MulBackward0" in s.line(":graph")
    assert "the reverse pass" in s.line(":explain")
    assert s.line(":seed 3") == "random seed: 3\n"
    s.line(":let r = randn(2)")
    assert s.line("sum(r * x)") == s.line("sum(r * x)")
    assert ":quit" in s.line(":help") and ":let NAME = VALUE" in s.line(":help")
    assert s.line(":nope").startswith("error: unknown command :nope")
    assert s.line(":let x").startswith("error: :let takes NAME = VALUE")
    assert s.line(":let x = [1,").startswith("error: x: malformed")
    assert s.line(":dtype int8").startswith("error:")
    assert s.line("sum(x +)").startswith("error:")
    assert s.line(":clear") == "program cleared\n" and s.program() == ""


def test_toolbar_is_live():
    s = Session()
    s.line(":let x = 1,2,3")
    assert s.toolbar("sum(x^2)") == "tensor(14., grad_fn=<SumBackward0>)  │  x.grad = [2., 4., 6.]"
    assert s.toolbar("sum(x^2") == "… 1 open bracket: close to evaluate"
    assert s.toolbar("[x[0], (x") == "… 2 open brackets: close to evaluate"
    assert s.toolbar("x * 2") == "tensor([2., 4., 6.], grad_fn=<MulBackward0>)"
    assert s.toolbar("sum(q)").startswith("… missing input: q")
    assert s.toolbar(":wr").startswith(":wrt NAMES")
    assert "tanh" in names() and "logsumexp" in names() and "t" in names()


def test_history_lives_in_the_data_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert history_path() == str(tmp_path / "gradcli" / "history")
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert history_path() == str(tmp_path / ".local" / "share" / "gradcli" / "history")


def test_repl_needs_a_terminal():
    r = CliRunner().invoke(main, ["repl"], input=":quit\n")
    assert r.exit_code == 2 and "needs a terminal" in r.stderr


# ---- in a real terminal ----------------------------------------------------------------


class Screen:
    """A tmux session of its own (private socket) running one command. Each session gets a
    socket of its own: the server of a session that just ended may still be going away."""

    def __init__(self, tmp_path, command, env, number=0):
        self.tmux = need_tool("tmux", "tmux")
        self.sock = str(tmp_path / f"tmux{number}.sock")
        environment = " ".join(f"{k}={v}" for k, v in env.items())
        self.run(
            "new-session", "-d", "-x", "100", "-y", "30", "-s", "t", f"env {environment} {command}"
        )

    def run(self, *args):
        return subprocess.run(
            [self.tmux, "-S", self.sock, *args], capture_output=True, text=True, check=True
        ).stdout

    def keys(self, *keys):
        self.run("send-keys", "-t", "t", *keys)

    def text(self):
        return self.run("capture-pane", "-p", "-t", "t")

    def wait(self, predicate, what, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            screen = self.text()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{what} never appeared; the screen:\n{self.text()}")

    def close(self):
        subprocess.run([self.tmux, "-S", self.sock, "kill-server"], capture_output=True)


@pytest.fixture
def repl(tmp_path):
    need_module("prompt_toolkit", "repl")
    script = shutil.which("gradcli") or os.path.join(os.path.dirname(sys.executable), "gradcli")
    need(os.path.exists(script), "the gradcli console script")
    screens = []

    def start():
        env = {"XDG_DATA_HOME": str(tmp_path / "data"), "TERM": "xterm-256color"}
        screen = Screen(tmp_path, script + " repl", env, len(screens))
        screens.append(screen)
        screen.wait(lambda s: ">>>" in s, "the prompt")
        return screen

    yield start
    for s in screens:
        s.close()


def test_repl_in_tmux_values_toolbar_completion_and_history(repl, tmp_path):
    screen = repl()
    screen.keys(":let x = 1,2,3", "Enter")
    screen.wait(lambda s: "x = 1,2,3\n>>>" in s, "the :let answer")
    screen.keys("sum(x^2)", "Enter")
    s = screen.wait(lambda s: "tensor([2., 4., 6.])" in s, "x.grad")
    assert "tensor(14., grad_fn=<SumBackward0>)" in s and "PowBackward0" in s
    # the toolbar, live while typing: a hint with a bracket open, the value once it closes
    screen.keys("mean(x")
    screen.wait(lambda s: s.rstrip().endswith("… 1 open bracket: close to evaluate"), "hint")
    screen.keys(")")
    s = screen.wait(lambda s: "x.grad = [0.3333, 0.3333, 0.3333]" in s, "the live toolbar")
    assert s.rstrip().split("\n")[-1].startswith("tensor(2., grad_fn=<MeanBackward0>)")
    screen.keys("C-u")
    # Tab: a unique operator name completes; a method after a dot; an input name
    screen.keys("logsumex", "Tab")
    screen.wait(lambda s: ">>> logsumexp" in s, "the completed operator")
    screen.keys("C-u", "x.tan", "Tab")
    screen.wait(lambda s: ">>> x.tan" in s and "tanh" in s, "the method's completions")
    screen.keys("C-u")
    screen.keys(":let longname = 2", "Enter")
    screen.wait(lambda s: "longname.grad\nNone\n>>>" in s, "the second input")
    screen.keys("sum(x) * longn", "Tab")
    screen.wait(lambda s: ">>> sum(x) * longname" in s, "the completed input name")
    screen.keys("Enter")
    screen.wait(lambda s: "tensor(12., grad_fn=<MulBackward0>)" in s, "the answer")
    screen.keys(":quit", "Enter")
    time.sleep(0.5)
    history = (tmp_path / "data" / "gradcli" / "history").read_text()
    assert "+sum(x) * longname" in history and "+:let x = 1,2,3" in history
    # a second session: the arrow key brings back the last session's lines
    screen = repl()
    screen.keys("Up")
    screen.wait(lambda s: ">>> :quit" in s, "the last line of the first session")
    screen.keys("Up")
    screen.wait(lambda s: ">>> sum(x) * longname" in s, "the line before it")


def test_prompt_toolkit_is_imported_by_repl_only():
    code = (
        "import sys; from gradcli.commands import main\n"
        "try:\n    main(['plot', 'x^2', '--range', 'x=0:1', '--points', '5'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('prompt_toolkit', 'matplotlib')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]")


def test_missing_prompt_toolkit_names_the_extra(monkeypatch):
    import builtins

    from gradcli import repl
    from gradcli.errors import InputError

    real = builtins.__import__

    def no_prompt_toolkit(name, *args, **kwargs):
        if name.startswith("prompt_toolkit"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_prompt_toolkit)
    with pytest.raises(InputError) as e:
        repl.run()
    assert e.value.hint == "pip install 'gradcli[repl]'"
