"""The command line: a thin click layer over gradcli.api. Heavy imports (numpy, lark, rich)
happen inside the commands, so --help and usage errors are instant."""

import sys

import click

from .commands import (
    _NAME_VALUE,
    COLOR,
    GRAD_OPTIONS,
    PROGRAM_OPTIONS,
    Job,
    OutputError,
    _count,
    _discard_stdout,
    _fail,
    _keep_until_exit,
    _max_elements,
    _random_seed,
    _read_text,
    _run,
    _SafeStderr,
    _standard_streams,
    _whole,
    answer,
    ascii_text,
    console,
    frozen,
    grad_command,
    styled,
    terminal_width,
    warn_unused,
)
from .errors import GradcliError, InputError

CONTEXT = {"help_option_names": ["-h", "--help"]}


class Context(click.Context):
    def get_help(self):
        """The help text, in ASCII when stdout cannot encode it (PYTHONIOENCODING=latin-1)."""
        text = super().get_help()
        try:
            text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
        except UnicodeEncodeError:
            return ascii_text(text)
        except LookupError:
            pass
        return text


class Command(click.Command):
    context_class = Context


class Group(click.Group):
    """click's own output (--help, usage errors) goes out as gradcli's does: messages escaped
    on stderr, and a help text that cannot be written is an error, not a traceback."""

    context_class = Context
    command_class = Command

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as e:
            if e.possibilities:
                raise
            import shlex

            words = " ".join(shlex.quote(a) for a in args)
            raise InputError(
                f"no such command: {e.command_name}",
                hint=f"name the command first, e.g. gradcli grad {words}",
            ) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        _standard_streams()
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            _fail(usage_error(e, self._command_of(sys.argv[1:] if args is None else args)), False)
        except GradcliError as e:
            _fail(e, False)
        except click.ClickException as e:
            e.show(file=_SafeStderr())  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
            sys.exit(e.exit_code)
        except click.Abort:
            sys.exit(130)
        except BrokenPipeError:
            _discard_stdout()
            sys.exit(0)
        except OSError as e:  # from click's own output, or a command that let it through
            if getattr(e, "stream", None) == "stdin":
                _fail(InputError("cannot read stdin: it is closed"), False)
            _fail(OutputError(f"cannot write output: {e.strerror or e}"), False)
        sys.exit(code if isinstance(code, int) else 0)

    def _command_of(self, args):
        """`gradcli CMD` for the command named in ``args`` (click's parser reports a missing
        option value without the command's context), else `gradcli`."""
        name = next((a for a in args if not a.startswith("-")), None)
        return f"gradcli {name}" if name in self.commands else "gradcli"


def usage_error(e, path="gradcli"):
    """click's usage errors in gradcli's style: ``error: …`` and ``hint: …`` (exit 2), with a
    did-you-mean for an option or command that is nearly right. ``path``: the command in use,
    where click's error does not say."""
    ctx = e.ctx
    path = ctx.command_path if ctx is not None else path
    message = e.format_message()
    message = message[:1].lower() + message[1:].rstrip(".")
    if isinstance(e, click.NoSuchOption):
        message = f"no such option: {e.option_name}"
    elif isinstance(e, click.exceptions.NoSuchCommand):
        message = f"no such command: {e.command_name}"
    close = getattr(e, "possibilities", None)
    if close:
        hint = "did you mean " + " or ".join(close) + "?"
    else:
        hint = f"'{path} --help' shows the usage"
    return InputError(message, hint=hint)


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(package_name="gradcli", prog_name="gradcli")
def main():
    """gradcli: values, PyTorch grad_fn labels, gradients and VJPs of expressions.

    \b
    gradcli grad 'mean(2*(x+2)^2)' x=-1.0475,0.2038,0.2971
    gradcli grad 'y = x + 2; z = y * y * 2; z' x=1,2,3 --seed-vector 1,0,0
    """


def color_option(fn):
    """--color, shared by every command."""
    import functools

    @functools.wraps(fn)
    def command(*args, color="auto", **kwargs):
        COLOR[0] = color
        return fn(*args, **kwargs)

    return click.option(
        "--color",
        type=click.Choice(["auto", "always", "never"]),
        default="auto",
        help="Colour and styles: auto (a terminal, unless NO_COLOR; FORCE_COLOR forces "
        "them), always, never.",
    )(command)


def output_options(fn):
    """-o/--output FILE and --color, shared by every command."""
    import functools

    @functools.wraps(fn)
    def command(*args, output=None, **kwargs):
        if output is None:
            return fn(*args, **kwargs)
        try:
            stream = open(output, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
        except OSError as e:
            raise InputError(f"cannot write '{output}': {e.strerror or e}") from None
        saved, sys.stdout = sys.stdout, stream
        try:
            return fn(*args, **kwargs)
        finally:
            sys.stdout = saved
            try:
                stream.close()
            except OSError as e:
                _fail(OutputError(f"cannot write '{output}': {e.strerror or e}"), False)

    return click.option(
        "-o",
        "--output",
        metavar="FILE",
        type=click.Path(dir_okay=False),
        help="Write the answer to FILE instead of stdout.",
    )(color_option(command))


def _given(param):
    """Whether the running command's ``param`` was given (not its default)."""
    source = click.get_current_context().get_parameter_source(param)
    return source is not None and source.name != "DEFAULT"


def _complete_from(*choices):
    """Shell completion of a few words, while the option's own check keeps its message."""

    def complete(ctx, param, incomplete):
        return [c for c in choices if c.startswith(incomplete)]

    return complete


_COMPLETE = {  # shell completion (click's): file names, and the values an option takes
    "file_": {"type": click.Path(allow_dash=True)},
    "inputs_path": {"type": click.Path(allow_dash=True)},
    "dtype": {"shell_complete": _complete_from("float32", "float64")},
}


def _options(table, output=True):
    """click options from the option table in commands.py (with -o/--output and --color, or
    --color alone for a command that writes files of its own)."""

    def decorate(fn):
        for flags, param, takes, default, metavar, help_text in reversed(table):
            if param == "wrt":  # repeatable: --wrt w --wrt b is --wrt w,b
                fn = click.option(*flags, param, multiple=True, metavar=metavar, help=help_text)(fn)
            elif takes:
                fn = click.option(
                    *flags,
                    param,
                    default=default,
                    metavar=metavar,
                    help=help_text,
                    **_COMPLETE.get(param, {}),
                )(fn)
            else:
                fn = click.option(*flags, param, is_flag=True, help=help_text)(fn)
        fn = click.argument("args", nargs=-1, metavar="EXPR [NAME=VALUE ...]")(fn)
        return output_options(fn) if output else color_option(fn)

    return decorate


program_options = _options(PROGRAM_OPTIONS)
program_options_own_output = _options(PROGRAM_OPTIONS, output=False)  # plot: -o is an image


COMMAND = {**CONTEXT, "ignore_unknown_options": True}


@main.command(context_settings=COMMAND)
@_options(GRAD_OPTIONS)
def grad(**kwargs):
    """Value, per-node grad_fn labels, and the gradient (or VJP) of EXPR.

    \b
    Example: gradcli grad 'mean(2*(x+2)^2)' x=-1.0475,0.2038,0.2971
    VALUE: 3 | 1,2,3 | [[1,2],[3,4]] | "nan" | randn(2,3) | rand(n) | zeros(n) | ones(n)
           | arange(n) | linspace(a,b,n)
    Limits: --max-elements (any tensor), --max-input-bytes (program and inputs files).
    Exit status: 0 ok, 1 cannot evaluate or cannot write the answer, 2 bad usage or input.
    """
    grad_command(**kwargs)


@main.command(context_settings=COMMAND)
@program_options
@click.option(
    "--tangent",
    "tangents",
    multiple=True,
    metavar="NAME=VALUE",
    help="The direction for an input (repeatable); inputs without one get 0.",
)
def jvp(tangents, **options):
    """Forward mode: the value and the Jacobian-vector product J·t of EXPR.

    \b
    Example: gradcli jvp 'sin(x) * y' x=1,2 y=3,4 --tangent x=1,0
    Limits: --max-elements (any tensor), --max-input-bytes (program and inputs files).
    """

    def body():
        from . import derivatives, render
        from .inputs import parse_value

        for t in tangents:
            if not _NAME_VALUE.match(t):
                stray = [a for a in options["args"][1:] if not _NAME_VALUE.match(a)]
                hint = f"--tangent {t}={stray[0] if stray else 'VALUE'} (no space after the name)"
                raise InputError(f"--tangent takes NAME=VALUE, got '{t}'", hint=hint)
        job = Job(**options)
        if not tangents:
            raise InputError(
                "jvp needs a direction: --tangent NAME=VALUE",
                hint="e.g. gradcli jvp 'sin(x) * y' x=1,2 y=3,4 --tangent x=1,0",
            )
        pairs = {}
        for t in tangents:
            m = _NAME_VALUE.match(t)
            assert m is not None  # every tangent was checked above
            name, value = m.groups()
            if name in pairs:
                raise InputError(f"--tangent {name} is given twice", hint="give each once")
            pairs[name] = parse_value(value, f"tangent {name}")
        program = job.program()
        out = derivatives.jvp(program, job.inputs, pairs, **job.settings())
        warn_unused(job, program.inputs)
        answer(
            job.as_json,
            lambda: render.jvp_text(out, job.dtype, terminal_width()),
            lambda: render.jvp_json(out, job),
        )

    _run(options["as_json"], body)


@main.command(context_settings=COMMAND)
@program_options
@click.option(
    "--mode",
    type=click.Choice(["auto", "forward", "reverse"]),
    default="auto",
    help="Forward passes (one per input element) or reverse passes (one per "
    "output element); auto takes the fewer.",
)
def jacobian(mode, **options):
    """The full Jacobian of EXPR for each input (shape = output shape + input shape).

    \b
    Example: gradcli jacobian 'A @ x' 'A=[[1,2],[3,4],[5,6]]' x=1,2
    Limits: --max-elements (any tensor, each Jacobian block included, checked before it is
    made), --max-input-bytes (program and inputs files).
    """

    def body():
        from . import derivatives, render

        job = Job(**options)
        program = job.program()
        out = derivatives.jacobian(
            program, job.inputs, mode=None if mode == "auto" else mode, **job.settings()
        )
        warn_unused(job, program.inputs)
        answer(
            job.as_json,
            lambda: render.jacobian_text(out, job.dtype, terminal_width()),
            lambda: render.jacobian_json(out, job),
        )

    _run(options["as_json"], body)


@main.command(context_settings=COMMAND)
@program_options
def hessian(**options):
    """Every block ∂²out/∂a∂b of a scalar EXPR (the gradient, differentiated).

    \b
    Example: gradcli hessian 'sum(x^3 * y)' x=1,2 y=3,4 --dtype float64
    Limits: --max-elements (any tensor, each Hessian block included, checked before it is
    made), --max-input-bytes (program and inputs files).
    """

    def body():
        from . import derivatives, render

        job = Job(**options)
        program = job.program()
        out = derivatives.hessian(program, job.inputs, **job.settings())
        warn_unused(job, program.inputs)
        answer(
            job.as_json,
            lambda: render.hessian_text(out, job.dtype, terminal_width()),
            lambda: render.hessian_json(out, job),
        )

    _run(options["as_json"], body)


@main.command(context_settings=COMMAND)
@program_options
@click.option("--eps", default=1e-6, type=float, help="Finite-difference step (default 1e-6).")
@click.option("--atol", default=1e-5, type=float, help="Absolute tolerance (default 1e-5).")
@click.option("--rtol", default=1e-3, type=float, help="Relative tolerance (default 1e-3).")
@click.option(
    "--sweep",
    is_flag=True,
    help="Also show the finite-difference error as the step shrinks 1e-1 .. 1e-12.",
)
@click.option(
    "--max-evaluations",
    metavar="N",
    help="Refuse a check that would evaluate the program more times (default 100,000).",
)
def check(eps, atol, rtol, sweep, max_evaluations, **options):
    """Reverse and forward mode against central finite differences, in float64 (exit 1 when
    they disagree), like torch.autograd.gradcheck.

    \b
    Example: gradcli check 'sum(exp(x) * sin(y))' x=0.1,0.2 y=0.3,-0.4
    Work: one forward-mode pass per input element, one reverse pass per output element, and
    two evaluations per input element for the finite differences (x13 with --sweep); a check
    that needs more than --max-evaluations (default 100,000) is refused before it starts.
    Limits: --max-evaluations, --max-elements (any tensor, each Jacobian block included),
    --max-input-bytes (program and inputs files).
    """

    def body():
        from . import derivatives, render

        given = _given("dtype")
        if given and options["dtype"] != "float64":
            raise InputError(
                f"check always computes in float64, not {options['dtype']}",
                hint="drop --dtype: finite differences need float64's precision",
            )
        job = Job(**options)
        settings = job.settings()
        settings.pop("dtype")
        cap = None if max_evaluations is None else _count(max_evaluations, "--max-evaluations")
        program = job.program()
        out = derivatives.check(
            program,
            job.inputs,
            eps=eps,
            atol=atol,
            rtol=rtol,
            sweep=sweep,
            max_evaluations=cap,
            **settings,
        )
        warn_unused(job, program.inputs)
        answer(
            job.as_json,
            lambda: render.check_text(
                out, plot=sweep and sys.stdout.isatty(), width=terminal_width()
            ),
            lambda: render.check_json(out, job),
        )
        return 0 if out["ok"] else 1

    _run(options["as_json"], body)


@main.command(context_settings=COMMAND)
@program_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tree", "dot", "mermaid", "json", "svg", "png"]),
    default="tree",
    help="tree (rich on a terminal), Graphviz dot, Mermaid, JSON, SVG or PNG.",
)
@click.option("--seed-vector", metavar="VALUE", help="The seed for a non-scalar output.")
def graph(fmt, seed_vector, **options):
    """The operator DAG of EXPR, shared nodes once; with inputs, values and adjoints too.

    \b
    Example: gradcli graph 'y = x + 2; z = y * y * 2; z.mean()' x=1,2,3
    Limits: --max-elements (any tensor), --max-input-bytes (program and inputs files).
    """

    def body():
        from . import graphs
        from .inputs import parse_value

        explicit = _given("fmt")
        if options["as_json"] and explicit and fmt != "json":
            raise InputError(
                f"--json and --format {fmt} ask for two different outputs",
                hint="give one of them (--format json is --json)",
            )
        job = Job(**options)
        sv = parse_value(seed_vector, "--seed-vector") if seed_vector is not None else None
        g = graphs.build(job.text, job.inputs, seed_vector=sv, **job.settings())
        if g["evaluated"]:  # (the graph is the output's: its input nodes are what it reads)
            warn_unused(job, [n["name"] for n in g["nodes"] if n["op"] == "input"])
        kind = "json" if job.as_json else fmt
        if kind == "png":  # binary, drawn by gradcli.svg
            from .svg import write_png

            return write_png(g)
        if kind == "tree" and styled():
            console().print(graphs.rich_tree(g, terminal_width()))
        else:
            answer(False, lambda: graphs.render(g, kind) + "\n", None)

    _run(options["as_json"], body)


@main.command(context_settings=COMMAND)
@program_options
@click.option("--seed-vector", metavar="VALUE", help="The seed for a non-scalar output.")
def explain(seed_vector, **options):
    """The reverse pass step by step: each node's rule, the adjoint arriving, and what it
    sends to each input; then the gradient.

    \b
    Example: gradcli explain 'y = x + 2; z = y * y * 2; z.mean()' x=1,2,3
    Limits: --max-elements (any tensor), --max-input-bytes (program and inputs files).
    """

    def body():
        from . import graphs
        from .inputs import parse_value

        job = Job(**options)
        sv = parse_value(seed_vector, "--seed-vector") if seed_vector is not None else None
        program = job.program()
        out = graphs.explain(
            program, job.inputs, seed_vector=sv, width=terminal_width(), **job.settings()
        )
        out["json"]["expr"] = job.text  # (explain names the expression it was given)
        warn_unused(job, program.inputs)
        answer(job.as_json, lambda: out["text"], lambda: out["json"])

    _run(options["as_json"], body)


@main.command(context_settings=CONTEXT)
@color_option
@click.argument("sources", nargs=-1, metavar="[FILE|GLOB|URL|- ...]")
@click.option(
    "-o",
    "--output",
    metavar="FILE|DIR",
    help="Write the answers to FILE (.gz: compressed), or to DIR (one that exists, or a "
    "name ending in /): one output per input, with its name.",
)
@click.option("--expr", metavar="PROGRAM", help='The program for records without "expr".')
@click.option(
    "-f", "--file", "file_", metavar="PATH", help="Read that program from PATH instead of --expr."
)
@click.option(
    "--dtype",
    default="float32",
    metavar="float32|float64",
    help='Default dtype for records without "dtype".',
)
@click.option("--wrt", metavar="NAMES", help="Default inputs that require grad.")
@click.option("--nodes", is_flag=True, help="Include every node in each answer.")
@click.option(
    "--jobs",
    "-j",
    default="auto",
    metavar="N|auto",
    help="Evaluate on N processes (output identical to --jobs 1; at most 4 per core, "
    "more are clamped to that). auto: every core for a file of 256 KiB or more, one "
    "process otherwise.",
)
@click.option(
    "--random-seed",
    metavar="N",
    help="Makes randn()/rand() inputs reproducible (per record, whatever --jobs).",
)
@click.option(
    "--first-line",
    default="1",
    metavar="N",
    help="Number the lines from N (ids and random seeds): for a block split from a file.",
)
@click.option(
    "--max-elements",
    default=None,
    metavar="N",
    help="Refuse any tensor with more elements (default 50,000,000).",
)
@click.option(
    "--max-line-bytes",
    default=None,
    metavar="N",
    help="Answer a longer line with an error, unread (default 67,108,864: 64 MiB); a line "
    "with no end stops the run after 16 times N bytes (at least 1 GiB).",
)
@click.option(
    "--detect-anomaly",
    is_flag=True,
    help="A record whose values or gradients go nan/inf fails, naming the node.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    help="local: this machine's processes (--jobs), the default. dask: blocks of the "
    "inputs on a Dask cluster (pip install 'gradcli[dask]').",
)
@click.option("--scheduler", metavar="ADDRESS", help="dask: join this scheduler (tcp://host:8786).")
@click.option("--workers", metavar="N", help="dask: start a local cluster of N worker processes.")
@click.option(
    "--blocksize",
    metavar="SIZE",
    help="dask: bytes per block (1048576, 256KiB, 64MiB); default: the inputs spread "
    "over 16 blocks per worker, 64 KiB to 64 MiB each.",
)
def batch(
    sources,
    output,
    expr,
    file_,
    dtype,
    wrt,
    nodes,
    jobs,
    random_seed,
    first_line,
    max_elements,
    max_line_bytes,
    detect_anomaly,
    engine,
    scheduler,
    workers,
    blocksize,
):
    """JSON Lines in, JSON Lines out: one answer per non-blank line, in order.

    \b
    Example: echo '{"expr": "sum(x^2)", "inputs": {"x": [1, 2]}}' | gradcli batch
    Inputs: files, globs ('data/*.jsonl', expanded here when the shell did not),
    - (stdin, the default) and fsspec URLs (s3://, gs://, memory://, file://;
    pip install 'gradcli[cloud]'); a .gz input is decompressed. Each input's
    lines are numbered from 1 (or --first-line), so each answer is what that
    input alone gives; without -o, the answers to every input go to stdout in order.
    Each line: {"id"?, "task"?, "expr"?, "inputs"?, "wrt"?, "dtype"?, ...}
    "task": grad (the default; with "seed_vector"), jvp ("tangents"), jacobian
    ("mode"), hessian, or check ("eps", "atol", "rtol").
    Each answer: that command's --json keys plus "id" (the record's, or its line
    number), or {"id": ..., "error": {"type", "message", "line"}}.
    A line over 64 MiB (--max-line-bytes) is answered with an error and skipped unread.
    Every line is answered exactly once, in order, and written whole; if the output
    cannot be written (a full disk) or the input cannot be read, the error says
    how many answers were complete.
    Exit status: 0 every record succeeded, 1 some failed or the output could not be
    written, 2 bad usage or an unreadable input, 130 interrupted (143 SIGTERM,
    129 SIGHUP).
    """

    def body():
        from . import batch as b
        from .inputs import check_dtype

        check_dtype(dtype)
        if expr is not None and file_ is not None:
            raise InputError("give the program with --expr or -f, not both")
        inputs = b.expand_inputs(sources or ("-",))
        if file_ == "-" and "-" in inputs:
            raise InputError("-f - and the records cannot both come from stdin")
        n_jobs = None if jobs == "auto" else _whole(jobs, "--jobs", minimum=1)
        first = _whole(first_line, "--first-line", minimum=1)
        cluster = _dask_options(engine, scheduler, workers, blocksize, jobs)
        program = _read_text(file_, "program file") if file_ is not None else expr
        defaults = b.Defaults(
            program,
            dtype,
            wrt,
            nodes,
            _random_seed(random_seed),
            _max_elements(max_elements),
            detect_anomaly,
            None if max_line_bytes is None else _count(max_line_bytes, "--max-line-bytes"),
        )
        if program is not None:
            from .parser import paused_gc

            with paused_gc():  # a bad default program is a usage error, not 10,000 bad records
                defaults.program()
                frozen()  # (it lives as long as the run: never walked by the collector)
        plan = b.plan_outputs(inputs, output)
        _answer_batch(b, plan, inputs, defaults, n_jobs, first, cluster)
        _keep_until_exit(defaults)

    _run(False, body)


def _dask_options(engine, scheduler, workers, blocksize, jobs):
    """--engine dask's options checked (None for the local engine)."""
    if engine == "local":
        for flag, value in (("--scheduler", scheduler), ("--workers", workers)):
            if value is not None:
                raise InputError(f"{flag} is for --engine dask")
        if blocksize is not None:
            raise InputError("--blocksize is for --engine dask")
        return None
    if jobs != "auto":
        raise InputError("--jobs is for --engine local; with dask, give --workers N")
    if scheduler is not None and workers is not None:
        raise InputError("give --scheduler ADDRESS or --workers N, not both")
    n = None if workers is None else _whole(workers, "--workers", minimum=1)
    return {"scheduler": scheduler, "workers": n, "blocksize": blocksize}


def _answer_batch(b, plan, inputs, defaults, n_jobs, first_line, cluster):
    bar, progress = None, None
    to_terminal = any(target is None for target, _ in plan) and _is_tty(sys.stdout)
    if _is_tty(sys.stderr) and not to_terminal and not ("-" in inputs and _is_tty(sys.stdin)):
        bar, progress = b.progress_bar(size=b.inputs_size(inputs))  # (answers would tear it)
        bar.start()
    try:
        if cluster is None:
            summary = b.run_all(
                plan, defaults, jobs=n_jobs, first_line=first_line, progress=progress
            )
        else:
            from . import dask_engine

            summary = dask_engine.run_all(
                plan, defaults, first_line=first_line, progress=progress, **cluster
            )
    finally:
        if bar is not None:
            bar.stop()
    n = summary.records
    if summary.stopped_by is not None:
        import signal

        how = (
            "interrupted"
            if summary.stopped_by == signal.SIGINT
            else f"stopped by {signal.Signals(summary.stopped_by).name}"
        )
        _say(f"{how} after {n} record{'s' if n != 1 else ''}")
        sys.exit(128 + summary.stopped_by)
    if summary.failed:
        _say(f"{summary.failed} of {n} records failed")
        sys.exit(1)


def _is_tty(stream):
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def _say(message):
    """A summary line on stderr; a stderr gone with the terminal (SIGHUP) loses only it."""
    import contextlib

    with contextlib.suppress(OSError):
        click.echo(message, err=True)


def _operator_names(ctx, param, incomplete):
    from .ops import operator_rows

    return [r["name"] for r in operator_rows() if r["name"].startswith(incomplete)]


@main.command(context_settings=CONTEXT)
@output_options
@click.argument("name", required=False, shell_complete=_operator_names)
@click.option("--json", "as_json", is_flag=True, help="The table (or the card) as JSON Lines.")
@click.option("--markdown", is_flag=True, help="The table as Markdown (the README's list).")
def ops(name, as_json, markdown):
    """The operator table: call, PyTorch mirror, grad_fn labels, local derivative; with
    NAME, that operator's card, with an example to run.

    \b
    Example: gradcli ops sin
    """

    def body():
        from .ops import OPS, operator_rows
        from .render import dumps, operator_card, operator_table
        from .signatures import not_taken, signature

        rows = operator_rows()
        if name is not None:
            found = [r for r in rows if r["name"] == name]
            if not found:
                import difflib

                close = difflib.get_close_matches(name, [r["name"] for r in rows], n=3)
                hint = (
                    f"did you mean {' or '.join(close)}?" if close else "'gradcli ops' lists them"
                )
                raise InputError(f"no operator named {name}", hint=hint)
            op = OPS[name]
            absent, positional = not_taken(op)
            card = {
                **found[0],
                "signature": signature(op),  # PyTorch's argument names
                "not_taken": absent,
                "positional_only": positional,
                "example": operator_example(name),
            }
            text = dumps(card) + "\n" if as_json else operator_card(card, terminal_width())
        elif as_json:
            text = "".join(
                dumps({**row, "signature": signature(OPS[row["name"]])}) + "\n" for row in rows
            )
        elif markdown:
            text = markdown_table(rows) + "\n"
        else:
            text = operator_table(rows, terminal_width())
        answer(False, lambda: text, None)

    _run(False, body)


_EXAMPLE_VALUES = {  # inside each test domain, away from kinks and ties, short to type
    "real": [0.5, -1.25, 2, 0.75, -0.5, 1.5],
    "positive": [0.5, 1.25, 2, 0.75, 1.5, 1],
    "nonzero": [0.5, -1.25, 2, -0.75, 1.5, -1],
    "away": [0.5, -1.25, 2, -0.75, 1.5, -1],
    "distinct": [0.3, -1.1, 2.2, 0.9, -0.4, 1.6],
    "prob": [0.2, 0.7, 0.4, 0.8, 0.1, 0.6],
    "unit": [0.5, -0.25, 0.75, -0.5, 0.1, 0.3],
}


def operator_example(name):
    """A command that runs the operator's first table example, with typed-in values."""
    import json
    import shlex

    from .ops import OPS

    op = OPS.get(name)
    if op is None or not op.examples:
        return None
    program, inputs = op.examples[0]
    words = ["gradcli", "grad", f"sum({program})"]
    for input_name, (shape, domain) in inputs.items():
        values = _EXAMPLE_VALUES.get(domain, _EXAMPLE_VALUES["real"])
        count = 1
        for d in shape:
            count *= d
        flat = [values[i % len(values)] for i in range(count)]
        if not shape:
            text = json.dumps(flat[0])
        elif len(shape) == 1:
            text = ",".join(json.dumps(v) for v in flat)
        else:
            import numpy as np

            text = json.dumps(np.array(flat).reshape(shape).tolist()).replace(" ", "")
        words.append(f"{input_name}={text}")
    return shlex.join(words)


def markdown_table(rows):
    lines = ["| call | PyTorch | grad_fn | derivative |", "|---|---|---|---|"]
    for r in rows:
        cells = [f"`{r['call']}`", f"`{r['mirror']}`", r["labels"], r["rule"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


from . import cli_pictures  # noqa: F401,E402  (registers plot and repl)
