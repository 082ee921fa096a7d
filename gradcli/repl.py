"""`gradcli repl`: a program typed line by line, evaluated after each line, with a toolbar
that shows the value and gradient while you type. prompt_toolkit (the repl extra) is
imported here only, so no other command pays for it."""

import os
import re

from .errors import GradcliError, InputError

_ASSIGN = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*(\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*\s*=(?!=)")
_LET = re.compile(r":let\s+([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)$", re.S)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
COMMANDS = {
    ":let": ":let NAME = VALUE   set an input (1,2,3 · [[1,2],[3,4]] · randn(3) · linspace(0,1,5))",
    ":wrt": ":wrt NAMES          the inputs that require grad (no names: every input)",
    ":dtype": ":dtype float32|float64",
    ":seed": ":seed N             makes randn()/rand() inputs reproducible (no N: random)",
    ":json": ":json               JSON answers on or off",
    ":graph": ":graph              the graph of the program so far",
    ":explain": ":explain            the reverse pass, step by step",
    ":clear": ":clear              forget the program's lines (inputs stay)",
    ":help": ":help               this list",
    ":quit": ":quit               leave (or Ctrl-D)",
}


def history_path():
    """$XDG_DATA_HOME/gradcli/history (~/.local/share/gradcli/history by default)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(base, "gradcli", "history")


def names():
    """What Tab offers: operator names (and the method spellings) from the registry."""
    from .ops import OPS, SPELLINGS

    bare = {n for n in SPELLINGS if "." not in n}  # aliases and methods too: clip, A.t()
    return sorted({n for n, o in OPS.items() if o.public} | bare)


class Session:
    """The state the lines build up, without any terminal: the REPL and its tests use it."""

    def __init__(self):
        self.lines = []  # the program's statements so far
        self.expr = None  # the last expression line
        self.inputs = {}
        self.wrt = None
        self.dtype = "float32"
        self.seed = None
        self.as_json = False

    def program(self, extra=None):
        lines = self.lines + [extra if extra is not None else self.expr]
        return "\n".join(line for line in lines if line)

    def evaluate(self, text):
        from .api import evaluate

        return evaluate(text, self.inputs, wrt=self.wrt, dtype=self.dtype, random_seed=self.seed)

    def line(self, text):
        """One line typed: a command, a statement or an expression. Returns the text to
        show (the answer in grad's format, or the error)."""
        text = text.strip()
        if not text:
            return ""
        if text.startswith(":"):
            return self.command(text)
        from .parser import parse

        candidate = self.program(text)
        try:
            parse(candidate)
        except GradcliError as e:
            return error_text(e)
        if _ASSIGN.match(text):
            self.lines.append(text)
            self.expr = None
        else:
            self.expr = text
        return self.answer(candidate)

    def answer(self, program):
        from . import render

        try:
            result = self.evaluate(program)
        except GradcliError as e:
            value = self._value_only(program, e)
            if value is None:
                return error_text(e)
            return value + "\n(not a scalar: no gradient; reduce it to see one, e.g. sum(...))\n"
        if self.as_json:
            return render.dumps(render.result_json(result, nodes=False)) + "\n"
        return render.plain(result)

    def _value_only(self, program, error):
        """A non-scalar output's value (PyTorch has no gradient without a seed), else None."""
        if "only for scalar outputs" not in error.message:
            return None
        from . import graphs
        from .torchrepr import tensor_repr

        g = graphs.build(
            program, self.inputs, wrt=self.wrt, dtype=self.dtype, random_seed=self.seed
        )
        out = next(n for n in g["nodes"] if n["id"] == g["output"])
        return tensor_repr(out["value"], grad_fn=out["grad_fn"])

    def command(self, text):
        head, _, rest = text.partition(" ")
        rest = rest.strip()
        try:
            if head == ":let":
                return self._let(text)
            if head == ":wrt":
                self.wrt = rest or None
                return f"wrt: {self.wrt or 'every input'}\n"
            if head == ":dtype":
                from .inputs import check_dtype

                self.dtype = check_dtype(rest)
                return f"dtype: {self.dtype}\n"
            if head == ":seed":
                from .commands import _random_seed

                self.seed = _random_seed(rest) if rest else None
                return f"random seed: {self.seed if self.seed is not None else 'none'}\n"
            if head == ":json":
                self.as_json = not self.as_json
                return f"json: {'on' if self.as_json else 'off'}\n"
            if head in (":graph", ":explain"):
                return self._picture(head)
            if head == ":clear":
                self.lines, self.expr = [], None
                return "program cleared\n"
            if head == ":help":
                return help_text()
        except GradcliError as e:
            return error_text(e)
        return error_text(InputError(f"unknown command {head}", hint="':help' lists them"))

    def _let(self, text):
        from .inputs import check_names, parse_value

        m = _LET.match(text)
        if not m:
            raise InputError(":let takes NAME = VALUE", hint="e.g. :let x = 1,2,3")
        name, value = m.group(1), m.group(2).strip()
        check_names({name: None})
        parsed = parse_value(value, name)
        from .inputs import to_array

        to_array(parsed, self.dtype, name)  # a bad VALUE fails here, not at the next line
        self.inputs[name] = parsed
        out = f"{name} = {value}\n"
        if self.lines or self.expr:
            out += self.answer(self.program())
        return out

    def _picture(self, head):
        from . import graphs

        program = self.program()
        if not program:
            raise InputError("no program yet: type a line first")
        settings = {"wrt": self.wrt, "dtype": self.dtype, "random_seed": self.seed}
        if head == ":explain":
            out = graphs.explain(program, self.inputs, **settings)
            return out["text"] if not self.as_json else _dumps(out["json"])
        g = graphs.build(program, self.inputs, **settings)
        return graphs.render(g, "json" if self.as_json else "tree") + "\n"

    def toolbar(self, text):
        """One line for the bottom toolbar: the live value and gradient of what is typed."""
        text = text.strip()
        if text.startswith(":"):
            head = text.split(" ", 1)[0]
            hits = [v for k, v in COMMANDS.items() if k.startswith(head)]
            return hits[0] if len(hits) == 1 else "commands: " + " ".join(COMMANDS)
        depth = 0
        for c in text:
            depth += c in "([{"
            depth -= c in ")]}"
        if depth > 0:
            return f"… {depth} open bracket{'s' if depth > 1 else ''}: close to evaluate"
        if not text:
            return "type an expression · :let x = 1,2,3 · :help"
        program = self.program(text)
        try:
            result = self.evaluate(program)
        except GradcliError as e:
            try:
                value = self._value_only(program, e)
            except GradcliError:
                value = None
            return " ".join(value.split()) if value else "… " + e.message.split("\n")[0]
        from .torchrepr import tensor_repr, tensor_str

        parts = [" ".join(tensor_repr(result.value, grad_fn=result.grad_fn).split())]
        for name, grad in result.grad.items():
            if grad is not None:
                parts.append(f"{name}.grad = " + " ".join(tensor_str(grad).split()))
        return "  │  ".join(parts)


def _dumps(obj):
    from .render import dumps

    return dumps(obj) + "\n"


def error_text(e):
    lines = [f"error: {e.message}"]
    if e.position is not None and e.context:
        lines += ["    " + line for line in e.context.split("\n")]
    if e.hint:
        lines.append(f"hint: {e.hint}")
    return "\n".join(lines) + "\n"


def help_text():
    return (
        "Type a program line by line: statements (y = x + 2) are kept, an expression is\n"
        "the output; after each line, the value and gradients as `gradcli grad` prints them.\n"
        + "".join("  " + v + "\n" for v in COMMANDS.values())
    )


def run():
    """The interactive loop (on a terminal)."""
    try:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.completion import Completer, Completion
        from prompt_toolkit.history import FileHistory, History, InMemoryHistory
    except ImportError:
        raise InputError(
            "gradcli repl needs prompt_toolkit, which is not installed",
            hint="pip install 'gradcli[repl]'",
        ) from None
    session = Session()
    operators = names()

    class Words(Completer):
        def get_completions(self, document, complete_event):
            before = document.text_before_cursor
            if before.lstrip().startswith(":") and " " not in before.strip():
                for c in COMMANDS:
                    if c.startswith(before.strip()):
                        yield Completion(c, -len(before.strip()))
                return
            m = _WORD.search(before)
            word = m.group(0) if m else ""
            if not word:
                return
            method = before[: len(before) - len(word)].endswith(".")
            assigned = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)", "\n".join(session.lines))
            pool = operators + ([] if method else sorted(set(session.inputs) | set(assigned)))
            for n in pool:
                if n.startswith(word) and n != word:
                    yield Completion(n, -len(word))

    path = history_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        history: History = FileHistory(path)
    except OSError:
        history = InMemoryHistory()
    prompt: PromptSession[str] = PromptSession(
        history=history,
        completer=Words(),
        complete_while_typing=False,
        bottom_toolbar=lambda: session.toolbar(prompt.default_buffer.text),
    )
    print("gradcli repl: type an expression, ':let x = 1,2,3' to set an input, ':help', ':quit'")
    while True:
        try:
            text = prompt.prompt(">>> ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        if text.strip() in (":quit", ":q", ":exit"):
            return
        out = session.line(text)
        if out:
            print(out, end="" if out.endswith("\n") else "\n", flush=True)


__all__ = ["Session", "history_path", "names", "run"]
