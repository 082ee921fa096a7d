"""The picture commands, `plot` and `repl`, registered on gradcli's click group (cli.py
imports this module last). Heavy imports stay inside the command bodies."""

import sys

import click

from .cli import COMMAND, CONTEXT, main, program_options_own_output
from .commands import Job, _run, _whole, answer, styled, warn_unused
from .errors import InputError


@main.command(context_settings=COMMAND)
@program_options_own_output
@click.option(
    "--range",
    "ranges",
    multiple=True,
    metavar="NAME=A:B",
    help="The input to sweep and its range (twice: a heat map of f and |∇f|, as an image).",
)
@click.option("--points", metavar="N", help="Points per swept input (default 200; 64 for two).")
@click.option("--derivative/--no-derivative", default=True, help="Draw f′ too (default: yes).")
@click.option("--fd", is_flag=True, help="Overlay central finite differences (float64).")
@click.option("--log-y", is_flag=True, help="A logarithmic y axis (positive values only).")
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Write the plot there: .png, .svg or .pdf an image (pip install 'gradcli[plot]'); "
    "any other name gets the text (or the --json answer).",
)
def plot(ranges, points, derivative, fd, log_y, output, **options):
    """f and its derivative over a range of one input, the others fixed by NAME=VALUE.

    \b
    gradcli plot 'tanh(x)' --range x=-3:3
    gradcli plot 'sin(x) * a' --range x=-6:6 a=2 --fd -o plot.png
    gradcli plot 'x^2 + y^2' --range x=-1:1 --range y=-1:1 -o heat.png
    The grid goes through one forward and one reverse pass (a VJP with a seed of ones) when
    the program is elementwise in the swept input; otherwise one pass per point.
    """

    def body():
        from . import plot as p

        if options["wrt"]:
            raise InputError("plot differentiates with respect to the --range inputs: no --wrt")
        if not ranges:
            raise InputError("plot needs --range NAME=A:B", hint="e.g. --range x=-3:3")
        if len(ranges) > 2:
            raise InputError("plot sweeps one or two inputs: at most two --range")
        job = Job(**options)
        parsed = [p.parse_range(r) for r in ranges]
        n = _whole(points, "--points") if points is not None else (200 if len(parsed) == 1 else 64)
        image = output is not None and output.lower().endswith(p.IMAGE_SUFFIXES)
        if len(parsed) == 2 and not image and not job.as_json:
            raise InputError(
                "a heat map over two inputs is an image", hint="write it with -o heat.png"
            )
        program = job.program()
        data = p.sweep(
            program,
            job.inputs,
            parsed,
            n,
            dtype=job.dtype,
            random_seed=job.random_seed,
            max_elements=job.max_elements,
            fd=fd,
        )
        warn_unused(job, program.inputs)
        style = {"derivative": derivative, "log_y": log_y}
        if image:
            return p.save(data, job.text, output, **style)

        def text(colour):
            import shutil

            size = shutil.get_terminal_size((80, 24))
            return p.terminal(
                data,
                job.text,
                width=max(size.columns, 40),
                height=min(max(size.lines - 6, 8), 24),
                colour=colour,
                **style,
            )

        def as_json():
            return p.to_json(data, job.text, job.dtype, n, parsed)

        if output is None:
            return answer(job.as_json, lambda: text(styled()), as_json)
        from .render import dumps

        body_text = dumps(as_json()) + "\n" if job.as_json else text(False)
        try:
            with open(output, "w", encoding="utf-8") as f:
                f.write(body_text)
        except OSError as e:
            raise InputError(f"cannot write '{output}': {e.strerror or e}") from None

    _run(options["as_json"], body)


__all__ = ["plot", "repl"]


@main.command(context_settings=CONTEXT)
def repl():
    """An interactive session: type a program line by line; after each line, the value and
    gradients as `gradcli grad` prints them, and live in the toolbar while you type.

    \b
    :let x = 1,2,3   set an input (any VALUE)      :wrt NAMES · :dtype · :seed N · :json
    :graph · :explain · :clear · :help · :quit     Tab completes operators and names
    History: $XDG_DATA_HOME/gradcli/history. Needs pip install 'gradcli[repl]'.
    """

    def body():
        from . import repl as r

        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise InputError(
                "gradcli repl needs a terminal",
                hint="for lines from a file or a pipe, use gradcli grad -f FILE or gradcli batch",
            )
        r.run()

    _run(False, body)
