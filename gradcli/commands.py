"""The command bodies, the output path and the option table that cli.py turns into click
options; click (cli.py) is the one front end."""

import errno
import os
import re
import sys
from typing import Any

from .errors import GradcliError, InputError, OutputError

_NAME_VALUE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)

MAX_INPUT_BYTES = 64 << 20  # program and inputs files, unless --max-input-bytes says otherwise


# ---- the streams: everything gradcli prints goes through Output (stdout) or _stderr -------


class Output:
    """stdout for every command's answer. A failed write (a full disk, a closed stdout)
    becomes one OutputError instead of a traceback or a silent exit 0, and text the stream's
    encoding cannot hold (latin-1, ascii) falls back to ASCII spellings of gradcli's own
    characters (∂ d, … ~, │ |)."""

    def __init__(self, stream=None):
        self.stream = sys.stdout if stream is None else stream

    @property
    def encoding(self):
        return getattr(self.stream, "encoding", None) or "utf-8"

    def isatty(self):
        return self.stream.isatty()

    def fileno(self):
        return self.stream.fileno()

    def write(self, text):
        try:
            buffer = getattr(self.stream, "buffer", None)
            if buffer is None:
                try:
                    self.stream.write(text)
                except UnicodeEncodeError:
                    self.stream.write(ascii_text(text))
            else:
                self._write_bytes(buffer, self._encode(text))
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputError(f"cannot write output: {e.strerror or e}") from None
        return len(text)

    def _encode(self, text):
        errors = getattr(self.stream, "errors", None) or "strict"
        try:
            return text.encode(self.encoding, errors)
        except UnicodeEncodeError:
            return ascii_text(text).encode(self.encoding, errors)

    def _write_bytes(self, buffer, data):
        """All of ``data``: a write larger than the buffer may be short (a disk that fills up
        midway), and TextIOWrapper drops the rest silently; the next write reports ENOSPC."""
        self.stream.flush()  # anything print() left in the text layer goes first
        view = memoryview(data)
        while view:
            n = buffer.write(view)
            if not n:
                raise OSError(errno.EIO, "the output stream accepted nothing")
            view = view[n:]

    def flush(self):
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputError(f"cannot write output: {e.strerror or e}") from None

    def pieces(self, pieces, size=1 << 16):
        """Write an iterable of strings, joined into writes of about ``size`` characters."""
        batch, n = [], 0
        for piece in pieces:
            batch.append(piece)
            n += len(piece)
            if n >= size:
                self.write("".join(batch))
                batch, n = [], 0
        self.write("".join(batch))


class _Closed:
    """Stands in for a standard stream whose descriptor was closed when gradcli started
    (`>&-`, `<&-`): Python makes it None, and print() to None silently writes nothing."""

    encoding, errors = "utf-8", "strict"

    def __init__(self, name):
        self.name = name

    @property
    def buffer(self):
        return self

    def isatty(self):
        return False

    def flush(self):
        pass

    def _closed(self, *args, **kwargs):
        error = OSError(errno.EBADF, f"{self.name} is closed")
        error.stream = self.name  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]  # noqa: E501
        raise error

    write = read = readline = fileno = _closed


_ASCII = {
    "∂": "d",
    "…": "~",  # one character, as "…" is: tables and carets stay aligned
    "│": "|",
    "├": "|",
    "└": "`",
    "┌": ",",
    "─": "-",
    "█": "#",
    "·": "*",
    "×": "x",
    "→": "->",
    "←": "<-",
    "≤": "<=",
    "≥": ">=",
    "≠": "!=",
    "≈": "~",
    "√": "sqrt",
    "‖": "||",
    "⊙": "(*)",
    "—": "--",
    "–": "-",
    "½": "1/2",
    "Σ": "sum ",
    "Π": "prod",
}


def _ascii_char(c):
    import unicodedata

    if c in _ASCII:
        return _ASCII[c]
    name = unicodedata.name(c, "")
    plain = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
    if plain and ("SUPERSCRIPT" in name or "MODIFIER LETTER" in name):
        return "^" + plain
    if plain and "SUBSCRIPT" in name:
        return "_" + plain
    if plain:
        return plain
    if name.startswith("GREEK"):
        return name.split()[-1].lower()
    return c.encode("ascii", "backslashreplace").decode()


def ascii_text(text):
    """``text`` in ASCII: gradcli's own symbols spelled out (x² x^2, ∂ d, … ~, └─ `-,
    Greek letters by name), anything else as a backslash escape."""
    return _NON_ASCII.sub(lambda m: "".join(_ascii_char(c) for c in m.group()), text)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_UNPRINTABLE = re.compile(r"[^\n\x20-\x7e]")


def _escape(m):
    import unicodedata

    c = m.group()
    if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        return c.encode("unicode_escape").decode("ascii")
    return c


def safe_text(text):
    """Text for a terminal with every control, format or unassigned character (an escape
    sequence, a bidi override, a zero-width space) shown as its code, never acted on."""
    return _UNPRINTABLE.sub(_escape, text)


class _SafeStderr:
    """stderr as a file for click's own messages: escaped, and quiet when it cannot write."""

    def write(self, text):
        _stderr(text, end="")

    def flush(self):
        pass

    def isatty(self):
        return False


def _stderr(text, end="\n"):
    """Write a message to stderr, escaped (names, values and file names in messages come from
    the user); a closed or failing stderr loses the message but never the exit status."""
    stream = sys.stderr
    if stream is None:
        return
    text = safe_text(text) + end
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except UnicodeEncodeError:  # (stderr would write "\u2026"; "~" reads better)
        text = ascii_text(text)
    except LookupError:
        pass
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass


def _fail(error, as_json):
    """Report a GradcliError: plain lines on stderr (+ JSON on stdout) and its exit code."""
    lines = [f"error: {error.message}"]
    if error.position is not None and error.context:
        lines.append(f"  at line {error.position[0]}, column {error.position[1]}:")
        lines += ["    " + line for line in error.context.split("\n")]
    if error.hint:
        lines.append(f"hint: {error.hint}")
    _stderr("\n".join(lines))
    if isinstance(error, OutputError):
        _discard_stdout()
    elif as_json:
        from .render import error_json

        try:
            out = Output()
            out.write(error_json(error) + "\n")
            out.flush()
        except (OutputError, BrokenPipeError):
            _discard_stdout()
    sys.exit(error.exit_code)


# Characters that look like ASCII operators, and what to type instead.
LOOKALIKES = {
    "\u2212": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u00d7": "*",
    "\u22c5": "*",
    "\u00b7": "*",
    "\u00f7": "/",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00a0": " ",
}


def _lookalike_hint(text):
    found = [c for c in dict.fromkeys(text) if c in LOOKALIKES]
    if not found:
        return None
    return "; ".join(
        f"type {LOOKALIKES[c]!r} for {c!r} (U+{ord(c):04X})".replace("' '", "a space")
        for c in found
    )


_LAST_JOB: list[Any] = []  # the Job of the running command, for hints about the mistake in it


def refine(error):
    """A hint fitted to the mistake, where the CLI knows more than the library did: a
    look-alike Unicode operator, `max(x, y)`, `2x`, a misspelt input name."""
    job = _LAST_JOB[-1] if _LAST_JOB else None
    text = job.text if job is not None and job.text is not None else ""
    msg = error.message
    if "(U+" in msg and (hint := _lookalike_hint(text)):
        error.hint = hint
    elif re.match(r"(max|min)\(\): 'dim' must be a constant, not a tensor", msg):
        f = msg[:3]
        error.hint = (
            f"{f}(x) reduces one tensor; the elementwise {f} of two tensors is "
            f"{f}imum(x, y), as torch.{f}imum"
        )
    elif msg.startswith("unexpected") and error.position is not None and text:
        line = text.split("\n")[error.position[0] - 1]
        col = error.position[1] - 1
        if 0 < col <= len(line) and line[col - 1].isdigit() and line[col : col + 1].isalpha():
            j = col - 1
            while j > 0 and (line[j - 1].isdigit() or line[j - 1] == "."):
                j -= 1
            error.hint = f"multiplication needs '*': {line[j:col]}*{line[col:].split()[0]}"
    elif msg.startswith("missing input") and job is not None:
        import difflib

        missing = [m.strip() for m in msg.split(":", 1)[1].split(" and ")[0].split(",")]
        given = list(job.inputs)
        near = []
        for m in missing:
            close = [g for g in given if g.lower() == m.lower()] or difflib.get_close_matches(
                m, given, n=1
            )
            if close:
                near.append(
                    f"did you mean {close[0]}? {close[0]}={job.raw.get(close[0], '...')} was "
                    f"given (names are case-sensitive)"
                )
        error.hint = (
            near[0]
            if near
            else (
                "give each a value: NAME=VALUE on the command line (e.g. x=1,2,3), or in an "
                "-i/--inputs file"
            )
        )
    return error


def warn_unused(job, used):
    """A supplied input (NAME=VALUE or -i) that the program's output never reads is most
    often a typo: say so on stderr, one line each (never in the JSON on stdout). ``used``:
    the names the output reads (a Program's ``inputs``)."""
    used = set(used)
    for name in job.inputs:
        if name not in used:
            _stderr(f"warning: input {name} is not used by the program's output")


def _run(as_json, fn):
    """Run a command body, turning every failure into a message and an exit code. The body
    writes through Output; its last flush happens here, so a full disk is reported."""
    _LAST_JOB.clear()  # hints look only at this command's Job
    try:
        code = fn()
        Output().flush()
    except GradcliError as e:
        _fail(refine(e), as_json)
    except MemoryError:
        _fail(out_of_memory("evaluating the program"), as_json)
    except BrokenPipeError:
        _discard_stdout()
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
    if code:
        sys.exit(code)


def _discard_stdout():
    """After a failed write (a reader gone with `| head`, a full disk) point stdout at
    /dev/null, so that Python's own flush at exit does not fail a second time, loudly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _standard_streams():
    """A stream closed at start (`>&-`, `<&-`) fails when used, as a closed stream should."""
    if sys.stdout is None:
        sys.stdout = _Closed("stdout")
    if sys.stdin is None:
        sys.stdin = _Closed("stdin")


def _read_text(path, what, limit=None, flag="--max-input-bytes"):
    """A UTF-8 file (a byte-order mark allowed) or stdin ('-'), refused past ``limit`` bytes
    (default MAX_INPUT_BYTES) without reading further: /dev/zero is an error, not a hang."""
    limit = MAX_INPUT_BYTES if limit is None else limit
    try:
        if path == "-":
            data = _read_at_most(sys.stdin.buffer, limit)
        else:
            with open(path, "rb") as f:
                data = _read_at_most(f, limit)
    except OSError as e:
        raise InputError(f"cannot read {what} '{path}': {e.strerror or e}") from None
    except MemoryError:
        raise out_of_memory(f"reading {what} '{path}'") from None
    if data is None:
        raise InputError(
            f"{what} '{path}' is larger than the limit of {limit:,} bytes",
            hint=f"raise the limit with {flag} N",
        )
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark, as some editors write
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{what} '{path}' is not UTF-8 text (byte {e.start})") from None
    except MemoryError:
        raise out_of_memory(f"decoding {what} '{path}' ({len(data):,} bytes)") from None


def _read_at_most(f, limit):
    """The bytes of ``f``, or None when there are more than ``limit``."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = f.read(min(1 << 20, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return None


def _read_inputs(path, limit=None):
    from .inputs import load_object

    text = _read_text(path, "inputs file", limit)
    try:
        return load_object(text, "inputs")
    except MemoryError:
        size = f"{len(text):,} characters"
        raise out_of_memory(f"reading the JSON of inputs file '{path}' ({size})") from None


def out_of_memory(doing):
    """The error for a MemoryError, naming what was being done (and how large it was)."""
    from .errors import EvaluationError

    return EvaluationError(f"out of memory {doing}", hint="use smaller inputs or allow more memory")


def _command():
    """(`gradcli CMD`, its option names) for hints that name the command in use."""
    import click

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return "gradcli grad", []
    return ctx.command_path, [n for p in ctx.command.params for n in p.opts if n.startswith("-")]


def _unknown_option(token, command, names):
    import difflib

    name = token.split("=")[0]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]}?" if close else f"'{command} --help' lists the options"
    return InputError(f"no such option: {name}", hint=hint)


def _stray_hint(a, args, i, file_, command):
    """Why a token that is not NAME=VALUE is there: the common slips, each named."""
    before = args[i - 1] if i else None
    after = args[i + 1] if i + 1 < len(args) else None
    if a.startswith("=") or (after is not None and after.startswith("=")):
        name, value = (before or "NAME", a[1:]) if a.startswith("=") else (a, (after or "")[1:])
        if not value and i + 2 < len(args) and not a.startswith("="):
            value = args[i + 2]
        return f"no spaces around '=': {name}={value or 'VALUE'}"
    if before is not None and _NAME_VALUE.match(before) and before.count("[") > before.count("]"):
        return f"quote a VALUE that has spaces: '{before} {a}'"
    if before is not None and before.endswith(",") and _NAME_VALUE.match(before):
        return f"no spaces in a VALUE (or quote it): {before}{a}"
    if file_ is not None and i == 0:
        return "the program comes from -f/--file: give EXPR or -f, not both"
    return f"quote the whole expression: {command} 'x * 2 + 1' x=3"


def _split_args(args, file_):
    """EXPR (unless --file) then NAME=VALUE pairs; a NAME given twice is an error."""
    command, names = _command()
    args = list(args)
    for i, a in enumerate(args):
        if a.startswith("--") and not _NAME_VALUE.match(a):
            raise _unknown_option(a, command, names)
        if (i > 0 or file_ is not None) and re.match(r"-[A-Za-z]", a):
            raise _unknown_option(a, command, names)
    expr = None
    if file_ is None:
        if not args:
            raise InputError("missing EXPR", hint=f"e.g. {command} 'mean(x^2)' x=1,2,3")
        expr = args.pop(0)
    pairs: dict[str, str] = {}
    for i, a in enumerate(args):
        m = _NAME_VALUE.match(a)
        if not m:
            hint = _stray_hint(a, args, i, file_, command)
            raise InputError(f"expected NAME=VALUE, got '{a}'", hint=hint)
        name, value = m.groups()
        if name in pairs:
            raise InputError(
                f"input {name} is given twice ({name}={pairs[name]} and {a})",
                hint="give each input once",
            )
        list_end = value.endswith(",") and not value.lstrip().startswith(("[", "{", '"'))
        if list_end and not (i + 1 < len(args) and not _NAME_VALUE.match(args[i + 1])):
            raise InputError(
                f"the VALUE of {name} ends with a comma: {a}",
                hint=f"drop the trailing comma: {name}={value.rstrip(',')}",
            )
        pairs[name] = value
    return expr, pairs


class Job:
    """What the shared options say: the program text, its inputs, and the settings."""

    def __init__(
        self,
        args,
        file_,
        inputs_path,
        wrt,
        dtype,
        random_seed,
        max_elements,
        max_input_bytes=None,
        as_json=False,
    ):
        from .inputs import check_dtype, parse_value

        expr, pairs = _split_args(args, file_)
        _LAST_JOB.append(self)
        self.text: Any = None
        self.inputs: dict[str, Any] = {}
        self.raw = pairs
        if file_ == "-" and inputs_path == "-":
            raise InputError("--file and --inputs cannot both read stdin")
        self.as_json = as_json
        self.random_seed = _random_seed(random_seed)
        self.max_elements = _max_elements(max_elements)
        limit = None if max_input_bytes is None else _count(max_input_bytes, "--max-input-bytes")
        self.text = expr if file_ is None else _read_text(file_, "program file", limit)
        self.inputs = _read_inputs(inputs_path, limit) if inputs_path is not None else {}
        self.dtype = check_dtype(dtype)
        for k, v in pairs.items():
            if hint := _lookalike_hint(v):
                raise InputError(f"the VALUE of {k} has a non-ASCII character: {k}={v}", hint=hint)
        self.inputs.update({k: parse_value(v, k) for k, v in pairs.items()})
        if isinstance(wrt, (tuple, list)):  # --wrt given several times: every name counts
            wrt = ",".join(wrt) if wrt else None
        self.wrt = wrt

    def program(self):
        """The program, parsed once here and handed to the library as a Program."""
        from .parser import parse

        return parse(self.text)

    def settings(self):
        return {
            "wrt": self.wrt,
            "dtype": self.dtype,
            "random_seed": self.random_seed,
            "max_elements": self.max_elements,
        }


def answer(as_json, text, obj):
    """Write a command's answer: ``obj()`` as JSON (arrays streamed in pieces, so a large
    tensor costs little more than itself), or the ``text()``. Only the one asked for is built."""
    from . import render

    out = Output()
    try:
        if as_json:
            out.pieces(render.json_pieces(obj()))
            out.write("\n")
        else:
            for piece in [text] if isinstance(text := text(), str) else text:  # or pieces
                out.write(piece)
    except MemoryError:
        raise out_of_memory(f"writing the answer{' as JSON' if as_json else ''}") from None


def _random_seed(text):
    return None if text is None else _whole(text, "--random-seed")


COLOR = ["auto"]  # --color of the running command: auto, always or never


def styled(stream=None):
    """Whether to print to ``stream`` (stdout) with rich's colour and styles: --color
    always|never decides; auto leaves all styling out under NO_COLOR (bold and dim too),
    forces it under FORCE_COLOR (piped too), and otherwise styles a terminal that is not
    TERM=dumb."""
    if COLOR[0] != "auto":
        return COLOR[0] == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    stream = sys.stdout if stream is None else stream
    try:
        tty = stream is not None and stream.isatty()
    except (OSError, ValueError, AttributeError):
        tty = False
    return tty and os.environ.get("TERM") != "dumb"


def terminal_width():
    """The terminal's columns when stdout is one (COLUMNS first, as rich reads it), else None:
    piped text keeps one stable layout. A width it cannot use (COLUMNS=0) is taken as 80."""
    if not sys.stdout.isatty():
        return None
    import shutil

    columns = shutil.get_terminal_size((80, 24)).columns
    # (Python 3.10 returns 0 for a terminal that reports no width, 3.11 the fallback)
    return columns if columns > 0 else 80


def console(out=None):
    """A rich console on stdout, through Output: the terminal's width, or (FORCE_COLOR into a
    pipe) room for the piped layout."""
    from rich.console import Console

    return Console(
        file=out or Output(),  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
        highlight=False,
        width=terminal_width() or 10_000,
        force_terminal=True,
        no_color=False,
    )


def _emit(result, as_json, nodes=True):
    from . import render

    if not as_json and styled():
        render.rich_print(result, console())
    else:
        answer(
            as_json,
            lambda: render.plain_pieces(result, terminal_width()),
            lambda: render.result_json(result, nodes=nodes),
        )


def _max_elements(text):
    return None if text is None else _count(text, "--max-elements")


def _count(text, flag):
    """A limit: a whole number >= 1."""
    return _whole(text, flag, minimum=1)


_DIGITS = r"[0-9](?:_?[0-9])*"  # with optional _ separators: 50_000_000
_NUMBER = re.compile(rf"[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?")
MAX_DIGITS = 1000  # a longer whole number is no limit anyone means, and slow to make


def _whole(text, flag, minimum=0):
    """A whole number as people write one: 1000, 50_000_000, 1e24, 1E6, 2.5e3 (exactly, as a
    Decimal: no float rounding); 1.5, 1e-3, nan and inf are refused, naming the option."""
    from decimal import Decimal

    number = _NUMBER.fullmatch(text.strip())
    value = Decimal(number.group()) if number else None
    if value is not None and value.adjusted() >= MAX_DIGITS:
        raise InputError(f"{flag} is too large: {text}", hint=f"at most {MAX_DIGITS} digits")
    if value is None or value != value.to_integral_value():
        raise InputError(
            f"{flag} takes a whole number, got '{text}'", hint=f"e.g. {flag} 1000 or {flag} 1e6"
        )
    if value < minimum:
        raise InputError(f"{flag} must be at least {minimum}, got '{text}'")
    return int(value)


# ---- the option table of the program commands ------------------------------------------------
# (flag names, parameter, takes a value, default, metavar, help)
PROGRAM_OPTIONS = [
    (
        ("-f", "--file"),
        "file_",
        True,
        None,
        "PATH",
        "Read the program from PATH ('-' = stdin) instead of EXPR.",
    ),
    (
        ("-i", "--inputs"),
        "inputs_path",
        True,
        None,
        "PATH",
        "A JSON object of inputs ('-' = stdin); NAME=VALUE arguments override it.",
    ),
    (
        ("--wrt",),
        "wrt",
        True,
        None,
        "NAMES",
        "Comma-separated inputs that require grad (default: every input).",
    ),
    (
        ("--dtype",),
        "dtype",
        True,
        "float32",
        "float32|float64",
        "Floating-point type (default float32, as in PyTorch).",
    ),
    (
        ("--random-seed",),
        "random_seed",
        True,
        None,
        "N",
        "Makes randn()/rand() inputs reproducible.",
    ),
    (
        ("--max-elements",),
        "max_elements",
        True,
        None,
        "N",
        "Refuse any tensor with more elements (default 50,000,000).",
    ),
    (
        ("--max-input-bytes",),
        "max_input_bytes",
        True,
        None,
        "N",
        "Refuse a program or inputs file of more bytes (default 67,108,864: 64 MiB).",
    ),
    (("--json",), "as_json", False, False, None, "One JSON object on stdout instead of text."),
]
GRAD_OPTIONS = PROGRAM_OPTIONS + [
    (
        ("--seed-vector",),
        "seed_vector",
        True,
        None,
        "VALUE",
        "The seed (cotangent) for a non-scalar output: backward(gradient=VALUE).",
    ),
    (
        ("--detect-anomaly",),
        "detect_anomaly",
        False,
        False,
        None,
        "Fail (exit 1) naming the first node whose value or gradient is nan/inf.",
    ),
    (
        ("--no-nodes",),
        "no_nodes",
        False,
        False,
        None,
        'With --json: leave out "nodes" (the answer stays the size of inputs and gradients).',
    ),
]


def grad_command(seed_vector, detect_anomaly, no_nodes=False, **options):
    """The body of `gradcli grad`."""

    def body():
        from .inputs import parse_value
        from .parser import paused_gc

        with paused_gc():  # the whole command (see _keep_until_exit)
            job = Job(**options)
            sv = parse_value(seed_vector, "--seed-vector") if seed_vector is not None else None
            from .api import evaluate

            lean = no_nodes and job.as_json  # no node values wanted: only what backward needs
            result = evaluate(
                job.text,
                job.inputs,
                seed_vector=sv,
                detect_anomaly=detect_anomaly,
                keep="inputs" if lean else "all",
                **job.settings(),
            )
            warn_unused(job, result.program.inputs)
            _emit(result, job.as_json, nodes=not no_nodes)
            _keep_until_exit(result)

    _run(options["as_json"], body)


# ---- the collector and the end of the process around a big graph ---------------------------


_KEPT: list[Any] = []  # the finished command's graph, alive until the process ends
_SCRIPT = [False]  # main() runs as the console script (sys.argv, nothing after it)


def frozen():
    """Call with the collector paused, once a big graph is built that lives on: moves every
    object alive into the collector's permanent generation (gc.freeze), never walked. A
    graph built with the collector paused is all young objects, and the first collection
    after the pause would walk all of it (10^6 objects, 0.15 s at 200,000 terms), the older
    generations' collections again later. Only when nothing is frozen yet (gc.freeze is
    the process's own; batch freezes what it keeps): whether it froze."""
    import gc

    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True


def _keep_until_exit(graph):
    """Call with the collector paused, the command's answer written: the console script
    keeps the graph alive (frozen, unless something is already) for _quick_exit, which ends
    the process without walking it or freeing it object by object (as much again as a
    walk); anything else frees it as it goes."""
    if _SCRIPT[0]:
        _KEPT.append((graph, frozen()))


def _let_go():
    """The kept graph freed by reference counting after all, and its freeze undone."""
    while _KEPT:
        _, froze = _KEPT.pop()
        if froze:
            import gc

            gc.unfreeze()


def _quick_exit(code):
    """End the console script at once, skipping the interpreter's teardown of a graph kept
    by _keep_until_exit, when nothing else is pending: a success (exit status 0), no atexit
    handler, no other thread, no interactive prompt or warnings options (a teardown's
    ResourceWarning) after it, and stdout and stderr flushed without error. Otherwise it
    returns and the process ends as Python ends it."""
    import _thread
    import atexit

    if not _KEPT or code not in (None, 0) or atexit._ncallbacks() or _thread._count():
        return
    if sys.flags.inspect or os.environ.get("PYTHONINSPECT") or sys.flags.dev_mode:
        return
    if sys.warnoptions:
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(0)


def _outermost(frame):
    """Whether ``frame`` (main()'s caller) is a script's top level with nothing after the
    call: the console script's, or gradcli/__main__.py's under `python -m` (only runpy's
    frames above it); not a function's, not inside a try or with block (whose finally
    would run), not under another tool (cProfile prints after it, pdb, a test)."""
    if frame is None or frame.f_code.co_name != "<module>" or _handles_exceptions(frame.f_code):
        return False
    runpy = sys.modules.get("runpy")
    frame = frame.f_back
    while frame is not None:
        if runpy is None or frame.f_globals is not runpy.__dict__:
            return False
        frame = frame.f_back
    return True


def _handles_exceptions(code):
    """Whether a code object has a try, with or async with block anywhere."""
    table = getattr(code, "co_exceptiontable", None)  # (CPython 3.11 on)
    if table is not None:
        return bool(table)
    import opcode

    setup = {opcode.opmap.get(n) for n in ("SETUP_FINALLY", "SETUP_WITH", "SETUP_ASYNC_WITH")}
    return any(op in setup for op in code.co_code[::2])


def main(argv=None):
    """The console script: click parses every command (cli.py)."""
    from .cli import main as click_main

    if argv is not None:
        click_main(args=list(argv), prog_name="gradcli")
        return
    _SCRIPT[0] = _outermost(sys._getframe(1))
    try:
        click_main(args=sys.argv[1:], prog_name="gradcli")
    except SystemExit as e:
        _quick_exit(e.code)
        _let_go()  # (before the interpreter's own teardown, as a graph not kept is)
        raise
