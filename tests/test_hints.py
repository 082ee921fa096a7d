"""Usage errors in one style (`error: …` / `hint: …`, exit 2), each hint fitted to the mistake,
and no silent conflicts: every case is the exact command a person types."""

import json
import shlex

import pytest
from click.testing import CliRunner

from gradcli.cli import main


def run(command, input=None):
    """``command`` as a shell line, without the leading ``gradcli``."""
    r = CliRunner().invoke(main, shlex.split(command), input=input, prog_name="gradcli")
    return r.exit_code, r.stdout, r.stderr


def error_of(command, code=2):
    status, out, err = run(command)
    assert status == code, (command, out, err)
    lines = err.splitlines()
    assert lines[0].startswith("error: "), err
    hints = [line[len("hint: ") :] for line in lines if line.startswith("hint: ")]
    assert "Traceback" not in err and "Usage:" not in err
    return lines[0][len("error: ") :], (hints[0] if hints else None)


HINTS = [
    # (command, words in the error, words in the hint)
    ("grad 'sum(x)' x=1 --sead-vector 1", "no such option: --sead-vector", "--seed-vector"),
    ("grad 'sum(x)' x=1 --sead-vector=1", "no such option: --sead-vector", "--seed-vector"),
    ("jvp 'sin(x)' x=1 --tangnt x=1", "no such option: --tangnt", "--tangent"),
    ("check 'sum(x)' x=1 --epss 1e-3", "no such option: --epss", "--eps"),
    ("--bogus", "no such option: --bogus", "gradcli --help"),
    ("grd 'x' x=1", "no such command: grd", "did you mean grad?"),
    ("'sum(x)' x=1", "no such command: sum(x)", "gradcli grad 'sum(x)' x=1"),
    ("grad 'sum(x)' --dtype", "requires an argument", "'gradcli grad --help'"),
    ("jvp 'sin(x)' x=1 --tangent", "requires an argument", "'gradcli jvp --help'"),
    ("batch --jobs", "requires an argument", "'gradcli batch --help'"),
    ("check 'sum(x)' x=1 --eps abc", "'abc' is not a valid float", "gradcli check --help"),
    ("graph 'x' --format svgz", "'svgz' is not one of", "gradcli graph --help"),
    ("grad 'sum(x)' x = 1,2", "expected NAME=VALUE, got 'x'", "no spaces around '=': x=1,2"),
    ("grad 'sum(x)' x=[1, 2]", "expected NAME=VALUE, got '2]'", "quote a VALUE that has spaces"),
    ("grad 'sum(x)' x=1, 2", "expected NAME=VALUE, got '2'", "x=1,2"),
    ("grad 'sum(x)' x=1,2,", "ends with a comma", "drop the trailing comma: x=1,2"),
    ("grad -f /dev/null 'sum(x)' x=1", "expected NAME=VALUE", "give EXPR or -f, not both"),
    ("jvp 'sin(x)' x=1,0 --tangent x 1,0", "--tangent takes NAME=VALUE", "--tangent x=1,0"),
    ("grad 'sum(w)' W=3", "missing input: w", "did you mean W?"),
    ("grad '2x' x=1", "unexpected", "multiplication needs '*': 2*x"),
    ("grad 'x \u2212 1' x=1", "U+2212", "type '-' for '\u2212'"),
    ("grad 'x \u00d7 2' x=1", "U+00D7", "type '*' for '\u00d7'"),
    ("grad 'x\u00b2' x=1", "U+00B2", "type '^2' for '\u00b2'"),
    ("grad 'sum(x, dim=\u20190\u2019)' x=1", "U+2019", "type \"'\" for '\u2019'"),
    ("grad 'sum(x)' x=1,\u22122", "non-ASCII character", "type '-' for '\u2212'"),
    ("grad 'sum(x)' x=1\u00d72", "non-ASCII character", "type '*'"),
    ("grad 'sum(x)' 'x=\u20191\u2019'", "non-ASCII character", 'type "\'"'),
    ("grad", "missing EXPR", "gradcli grad '"),
    ("jvp", "missing EXPR", "gradcli jvp '"),
]


@pytest.mark.parametrize("command,error,hint", HINTS, ids=[c for c, _, _ in HINTS])
def test_a_hint_that_fits_the_mistake(command, error, hint):
    message, got = error_of(command)
    assert error in message
    assert got is not None and hint in got, got


@pytest.mark.parametrize(
    "command",
    ["jvp 'sum(w)' W=3 --tangent W=1", "jacobian 'w' W=3", "check 'w' W=3", "graph 'w' W=3"],
)
def test_a_hint_never_names_another_command_or_batch(command):
    _, hint = error_of(command)
    assert "batch" not in hint and "record" not in hint
    status, _, err = run(command.replace("W=3", "V=3").replace("W=1", "V=1"))
    assert status == 2
    assert "batch" not in err and "record" not in err
    assert "gradcli grad" not in error_of("jvp")[1]


def test_an_input_the_program_never_uses_is_a_warning():
    status, out, err = run("grad 'sum(x)' x=1,2 y=3")
    assert status == 0 and out.startswith("tensor(3., grad_fn=<SumBackward0>)")
    assert err == "warning: input y is not used by the program's output\n"
    assert run("grad 'sum(x)' x=1,2")[2] == ""


UNUSED = [  # every command that takes NAME=VALUE inputs, each with y=3 its program never reads
    "grad 'sum(x)' x=1,2 y=3",
    "jvp 'sin(x)' x=1,2 y=3 --tangent x=1,0",
    "jacobian 'x * 2' x=1,2 y=3",
    "hessian 'sum(x^3)' x=1,2 y=3",
    "check 'sum(exp(x))' x=0.1,0.2 y=3",
    "graph 'z = y * 2; x.sum()' x=1,2 y=3",  # y feeds a statement the output does not read
    "explain 'sum(x * x)' x=1,2 y=3",
    "plot 'x^2' --range x=0:1 --points 5 y=3",
]


@pytest.mark.parametrize("command", UNUSED, ids=[c.split()[0] for c in UNUSED])
def test_every_command_warns_of_an_input_it_never_uses(command):
    status, out, err = run(command)
    assert status == 0, err
    assert err == "warning: input y is not used by the program's output\n"
    status, out, err = run(command + " --json")
    assert status == 0 and "warning" not in out
    json.loads(out)  # stdout is the JSON answer alone
    assert err == "warning: input y is not used by the program's output\n"
    status, out, err = run(command.replace(" y=3", ""))
    assert status == 0 and err == ""


def test_an_unused_input_from_an_inputs_file_is_a_warning_too(tmp_path):
    path = tmp_path / "inputs.json"
    path.write_text('{"x": [1, 2], "w": 3}')
    status, _, err = run(f"jacobian 'x * 2' -i {path}")
    assert status == 0 and err == "warning: input w is not used by the program's output\n"


def test_batch_does_not_warn_per_record():
    """A batch record's unused input is answered as usual (its gradient null): a warning per
    record would bury stderr, so batch gives none."""
    records = '{"expr": "sum(x)", "inputs": {"x": [1, 2], "y": 3}}\n' * 3
    status, out, err = run("batch", input=records)
    assert status == 0 and err == ""
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["grad"] for a in answers] == [{"x": [1.0, 1.0], "y": None}] * 3


CONFLICTS = [
    ("grad 'sum(x)' x=1 x=2", "input x is given twice"),
    ("graph 'x * 2' x=1 --json --format dot", "--json and --format dot"),
    ("check 'sum(x)' x=1 --dtype float32", "check always computes in float64"),
    ("jvp 'sin(x) * y' x=1 y=2 --wrt y --tangent x=1", "not in --wrt"),
    ("jvp 'sin(x)' x=1,2", "jvp needs a direction: --tangent NAME=VALUE"),
    ("jvp 'sin(x)' x=1,2 --tangent x=1,0 --tangent x=0,1", "given twice"),
]


@pytest.mark.parametrize("command,error", CONFLICTS, ids=[c for c, _ in CONFLICTS])
def test_no_silent_conflicts(command, error):
    message, hint = error_of(command)
    assert error in message and hint


def test_repeated_wrt_merges():
    status, out, _ = run("grad 'sum(w * x) + b' w=1 x=2 b=3 --wrt w --wrt b --json")
    assert status == 0 and list(json.loads(out)["grad"]) == ["w", "b"]
    assert run("check 'sum(x)' x=1 --dtype float64")[0] == 0


def test_json_error_for_a_usage_error_in_a_json_command():
    status, out, err = run("graph 'x * 2' x=1 --json --format dot")
    assert status == 2 and json.loads(out)["error"]["type"] == "InputError"


# ---- help, completion, and the texts a student reads ---------------------------------------

EXAMPLE_COMMANDS = ["grad", "jvp", "jacobian", "hessian", "check", "graph", "explain"]


@pytest.mark.parametrize("command", EXAMPLE_COMMANDS + ["ops"])
def test_help_shows_one_usage_line_and_a_runnable_example(command):
    status, out, _ = run(f"{command} --help")
    assert status == 0 and out.count("Usage:") == 1
    if command != "ops":
        assert out.startswith(f"Usage: gradcli {command} [OPTIONS] EXPR [NAME=VALUE ...]\n")
        assert "[ARGS]" not in out
    example = [line.strip() for line in out.splitlines() if line.strip().startswith("Example: ")]
    assert len(example) == 1
    words = shlex.split(example[0][len("Example: ") :])
    assert words[0] == "gradcli" and words[1] == command
    assert run(shlex.join(words[1:]))[0] == 0


def test_batch_help_shows_a_runnable_example():
    status, out, _ = run("batch --help")
    assert status == 0 and out.startswith("Usage: gradcli batch [OPTIONS] [FILE|GLOB|URL|- ...]\n")
    example = next(line.strip() for line in out.splitlines() if "Example: " in line)
    echo, _, command = example[len("Example: ") :].partition(" | ")
    assert command == "gradcli batch"
    status, got, err = run("batch", input=shlex.split(echo)[1] + "\n")
    assert status == 0 and json.loads(got)["grad"] == {"x": [2.0, 4.0]}, err


def complete(words, shell="bash"):
    """What click's shell completion offers for the last of ``words``."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "_GRADCLI_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": " ".join(words),
        "COMP_CWORD": words[-1] if shell == "fish" else str(len(words) - 1),
    }
    p = subprocess.run(
        [sys.executable, "-m", "gradcli"], capture_output=True, text=True, env=env, cwd=CWD
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


CWD = str(__import__("pathlib").Path(__file__).parent)


@pytest.mark.parametrize("flag", ["-f", "--file", "-i", "--inputs", "-o", "--output"])
def test_completion_offers_file_names(flag):
    assert complete(["gradcli", "grad", "x", flag, "test_"]).splitlines() == ["file,test_"]


@pytest.mark.parametrize(
    "words,offered",
    [
        (["gradcli", "grad", "x", "--dtype", "f"], ["float32", "float64"]),
        (["gradcli", "grad", "x", "--color", ""], ["auto", "always", "never"]),
        (
            ["gradcli", "graph", "x", "--format", ""],
            ["tree", "dot", "mermaid", "json", "svg", "png"],
        ),
        (["gradcli", "jacobian", "x", "--mode", ""], ["auto", "forward", "reverse"]),
        (["gradcli", "gr"], ["grad", "graph"]),
    ],
)
def test_completion_offers_values(words, offered):
    assert complete(words).splitlines() == [f"plain,{w}" for w in offered]
    assert complete(words, "zsh").split("\n")[1::3] == offered


def test_dot_labels_are_left_aligned_with_matrix_rows_lined_up():
    status, out, _ = run("graph 'A @ x' 'A=[[1,2],[3,4]]' x=1,2 --format dot")
    assert status == 0
    assert (
        'n0 [label="A\\lAccumulateGrad\\l[2, 2]\\lvalue [[1., 2.],\\l       [3., 4.]]\\l"];' in out
    )


@pytest.mark.parametrize("value,word", [("x=-1,2", "nan"), ("x=0,2", "inf")])
def test_check_says_when_the_function_is_not_finite(value, word):
    status, out, _ = run(f"check 'sum(log(x))' {value}")
    assert status == 1
    assert out.startswith(f"FAILED: the function is {word} at this input")
    assert " NO" not in out
    status, out, _ = run(f"check 'sum(log(x))' {value} --json")
    assert status == 1 and json.loads(out)["not_finite"] == word


def test_jvp_prints_the_value_as_torch_func_jvp_does():
    status, out, _ = run("jvp 'sin(x) * y' x=1,2 y=3,4 --tangent x=1,0")
    assert status == 0
    assert out.startswith("tensor([2.5244, 3.6372])\n\njvp (J·t, forward mode)\n")
    assert "grad_fn" not in out


# ---- gradcli ops [NAME] ----------------------------------------------------------------------


def test_ops_table_has_a_header_and_aligned_columns():
    status, out, _ = run("ops")
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["call", "PyTorch", "grad_fn", "derivative"]
    start = lines[0].index("PyTorch")
    add = next(line for line in lines if line.startswith("add(a, b)"))
    assert add[start:].startswith("a + b ")


def test_ops_card_and_its_example_runs():
    status, out, _ = run("ops sin")
    assert status == 0
    assert out.splitlines()[0] == "sin(input)"  # PyTorch's argument names
    assert "  PyTorch:    torch.sin(a)" in out and "  grad_fn:    SinBackward0" in out
    assert "  derivative: ∂sin(a)/∂a = cos(a)" in out
    example = next(line for line in out.splitlines() if "example:" in line).split("example:")[1]
    words = shlex.split(example)
    status, got, _ = run(shlex.join(words[1:]))
    assert status == 0 and got.startswith("tensor(") and "SinBackward0" in got
    status, out, _ = run("ops sin --json")
    card = json.loads(out)
    assert card["name"] == "sin" and card["labels"] == "SinBackward0"
    assert card["example"] == shlex.join(words)


def test_every_operator_card_example_runs():
    from gradcli.cli import operator_example
    from gradcli.ops import operator_rows

    for row in operator_rows():
        example = operator_example(row["name"])
        if example is None:  # a row with no table example (floor_divide, detach)
            continue
        words = shlex.split(example)
        assert run(shlex.join(words[1:]))[0] == 0, words


def test_ops_unknown_name_and_completion():
    message, hint = error_of("ops sinn")
    assert message == "no operator named sinn" and "sin" in hint
    offered = complete(["gradcli", "ops", "sin"]).splitlines()
    assert offered == ["plain,sin", "plain,sinh"] or {"plain,sin", "plain,sinh"} <= set(offered)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_readme_completion_setup_lines_work(shell):
    import os
    import pathlib
    import subprocess
    import sys

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert f"_GRADCLI_COMPLETE={shell}_source gradcli" in readme
    env = {**os.environ, "_GRADCLI_COMPLETE": f"{shell}_source"}
    exe = str(pathlib.Path(sys.executable).parent / "gradcli")
    p = subprocess.run([exe], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "_GRADCLI_COMPLETE" in p.stdout


@pytest.mark.parametrize(
    "command,row",
    [
        ("grad 'sum(2/x)' x=1,2", " 1  1/x       ReciprocalBackward0  [2]"),
        ("grad 'sum(3/(x+1))' x=1,2", " 3  1/(x+1)       ReciprocalBackward0  [2]"),
        (
            "grad 'v @ A' v=1,2 'A=[[1,2],[3,4]]' --seed-vector 1,1",
            " 2  v.unsqueeze(0)      UnsqueezeBackward0  [1, 2]",
        ),
    ],
)
def test_decomposition_nodes_are_named_for_what_they_compute(command, row):
    status, out, _ = run(command)
    assert status == 0 and any(line.startswith(row) for line in out.splitlines())


def test_float64_hessian_of_a_polynomial_is_what_double_backward_gives():
    torch = pytest.importorskip("torch")
    status, out, _ = run(
        "hessian 'sum(100*(y-x^2)^2 + (1-x)^2)' x=1 y=1 --dtype float64 --wrt x --json"
    )
    assert status == 0
    x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    f = 100 * (1 - x**2) ** 2 + (1 - x) ** 2
    (g,) = torch.autograd.grad(f, x, create_graph=True)
    (h,) = torch.autograd.grad(g, x)
    assert json.loads(out)["hessian"]["x"]["x"] == h.item() == 802.0
    status, out, _ = run("hessian 'sum(100*(y-x^2)^2 + (1-x)^2)' x=1 y=1 --dtype float64")
    assert "tensor(802., dtype=torch.float64)" in out
