"""The command bodies and the hot path, without click: `gradcli grad EXPR NAME=VALUE...`
is the one-liner people type most, and importing click costs a tenth of its run. The click
layer (cli.py) and the fast parser here read the same option table, and the fast parser
hands anything it does not recognise to click, so both give the same answers."""

import os
import re
import sys

from .errors import GradcliError, InputError

_NAME_VALUE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)


def _fail(error, as_json):
    """Report a GradcliError: plain lines on stderr (+ JSON on stdout) and its exit code."""
    lines = [f"error: {error.message}"]
    if error.position is not None and error.context:
        lines.append(f"  at line {error.position[0]}, column {error.position[1]}:")
        lines += ["    " + line for line in error.context.split("\n")]
    if error.hint:
        lines.append(f"hint: {error.hint}")
    print("\n".join(lines), file=sys.stderr, flush=True)
    if as_json:
        from .render import error_json

        print(error_json(error), flush=True)
    sys.exit(error.exit_code)


def _run(as_json, fn):
    """Run a command body, turning every failure into a message and an exit code."""
    try:
        fn()
    except GradcliError as e:
        _fail(e, as_json)
    except MemoryError:
        from .errors import EvaluationError

        _fail(
            EvaluationError("out of memory evaluating the program", hint="use smaller inputs"),
            as_json,
        )
    except BrokenPipeError:
        _quiet_broken_pipe()
    except KeyboardInterrupt:
        sys.exit(130)


def _quiet_broken_pipe():
    # The reader went away (`| head`): stop quietly, and keep Python's own flush at exit
    # from printing a second error.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    sys.exit(0)


def _read_text(path, what):
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as e:
        raise InputError(f"cannot read {what} '{path}': {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{what} '{path}' is not UTF-8 text (byte {e.start})") from None


def _read_inputs(path):
    from .inputs import load_object

    return load_object(_read_text(path, "inputs file"), "inputs")


def _split_args(args, file_):
    """EXPR (unless --file) then NAME=VALUE pairs."""
    args = list(args)
    for a in args:
        if a.startswith("--") and not _NAME_VALUE.match(a):
            raise InputError(
                f"no such option: {a.split('=')[0]}", hint="'gradcli grad --help' lists the options"
            )
    expr = None
    if file_ is None:
        if not args:
            raise InputError("missing EXPR", hint="e.g. gradcli grad 'mean(x^2)' x=1,2,3")
        expr = args.pop(0)
    pairs = {}
    for a in args:
        m = _NAME_VALUE.match(a)
        if not m:
            raise InputError(
                f"expected NAME=VALUE, got '{a}'",
                hint="quote the whole expression: gradcli grad 'x * 2 + 1' x=3",
            )
        pairs[m.group(1)] = m.group(2)
    return expr, pairs


class Job:
    """What the shared options say: the program text, its inputs, and the settings."""

    def __init__(self, args, file_, inputs_path, wrt, dtype, random_seed, max_elements):
        from .inputs import check_dtype, parse_value

        expr, pairs = _split_args(args, file_)
        if file_ == "-" and inputs_path == "-":
            raise InputError("--file and --inputs cannot both read stdin")
        self.random_seed = _random_seed(random_seed)
        self.max_elements = _max_elements(max_elements)
        self.text = expr if file_ is None else _read_text(file_, "program file")
        self.inputs = _read_inputs(inputs_path) if inputs_path is not None else {}
        self.dtype = check_dtype(dtype)
        self.inputs.update({k: parse_value(v, k) for k, v in pairs.items()})
        self.wrt = wrt

    def settings(self):
        return {
            "wrt": self.wrt,
            "dtype": self.dtype,
            "random_seed": self.random_seed,
            "max_elements": self.max_elements,
        }


def _print(text, obj, as_json):
    from .render import dumps

    if as_json:
        print(dumps(obj))
    else:
        sys.stdout.write(text)


def _random_seed(text):
    return None if text is None else _whole(text, "--random-seed")


def _emit(result, as_json):
    from . import render

    if as_json:
        print(render.to_json(result))
    elif sys.stdout.isatty():
        from rich.console import Console

        render.rich_print(result, Console(highlight=False))
    else:
        sys.stdout.write(render.plain(result))
        sys.stdout.flush()


def _max_elements(text):
    return None if text is None else _whole(text.replace("_", ""), "--max-elements", minimum=1)


def _whole(text, flag, minimum=0):
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{flag} takes a whole number, got '{text}'") from None
    if value < minimum:
        raise InputError(f"{flag} must be at least {minimum}")
    return value


# ---- the option table both front-ends read ------------------------------------------------
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
]


def grad_command(
    args,
    file_,
    inputs_path,
    wrt,
    dtype,
    random_seed,
    max_elements,
    as_json,
    seed_vector,
    detect_anomaly,
):
    """The body of `gradcli grad`."""

    def body():
        from .inputs import parse_value

        job = Job(args, file_, inputs_path, wrt, dtype, random_seed, max_elements)
        sv = parse_value(seed_vector, "--seed-vector") if seed_vector is not None else None
        from .api import evaluate

        result = evaluate(
            job.text, job.inputs, seed_vector=sv, detect_anomaly=detect_anomaly, **job.settings()
        )
        _emit(result, as_json)

    _run(as_json, body)


def fast_grad(argv):
    """Keyword arguments for grad_command when ``argv`` is `grad` with only the options in
    GRAD_OPTIONS (as `--name value`, `--name=value` or a flag) and positional arguments;
    otherwise None, and click takes over (help, other commands, anything unusual)."""
    if not argv or argv[0] != "grad":
        return None
    kwargs = {param: default for _, param, _, default, _, _ in GRAD_OPTIONS}
    names = {name: (param, takes) for flags, param, takes, *_ in GRAD_OPTIONS for name in flags}
    args = []
    rest = iter(argv[1:])
    for token in rest:
        if not token.startswith("-") or token == "-":
            args.append(token)
            continue
        name, eq, value = token.partition("=")
        if name not in names or (eq and not name.startswith("--")):
            return None
        param, takes = names[name]
        if not takes:
            if eq:
                return None
            kwargs[param] = True
        elif eq:
            kwargs[param] = value
        else:
            value = next(rest, None)
            if value is None:
                return None
            kwargs[param] = value
    kwargs["args"] = tuple(args)
    return kwargs


def main(argv=None):
    """The console script: the hot path for a plain `gradcli grad ...`, click for the rest."""
    argv = sys.argv[1:] if argv is None else list(argv)
    fast = fast_grad(argv)
    if fast is not None:
        grad_command(**fast)
        return
    from .cli import main as click_main

    click_main(args=argv, prog_name="gradcli")
