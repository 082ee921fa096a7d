"""The command line, through click's CliRunner and as an installed command."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from gradcli.cli import main

X = "x=-1.0475,0.2038,0.2971"


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input)


def test_one_liner_text():
    r = run("grad", "mean(2*(x+2)^2)", X)
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0] == "tensor(7.3604, grad_fn=<MeanBackward0>)"
    labels = [
        w
        for line in lines
        for w in line.split()
        if w.endswith("Backward0") or w == "AccumulateGrad"
    ]
    assert labels == [
        "AccumulateGrad",
        "AddBackward0",
        "PowBackward0",
        "MulBackward0",
        "MeanBackward0",
    ]
    assert lines[-2:] == ["x.grad", "tensor([1.2700, 2.9384, 3.0628])"]
    assert "\x1b" not in r.output  # piped: no escape codes


def test_program_and_vjp():
    r = run("grad", "y = x + 2; z = y * y * 2; z.mean()", X)
    assert r.exit_code == 0 and r.output.startswith("tensor(7.3604, grad_fn=<MeanBackward0>)")
    r = run("grad", "y = x + 2; z = y * y * 2; z", X)
    assert r.exit_code == 1
    assert "grad can be implicitly created only for scalar outputs" in r.output
    assert "--seed-vector" in r.output
    r = run("grad", "y = x + 2; z = y * y * 2; z", X, "--seed-vector", "1,0,0")
    assert r.exit_code == 0 and r.output.rstrip().endswith("tensor([3.8100, 0.0000, 0.0000])")


def test_json_object():
    r = run("grad", "mean(2*(x+2)^2)", X, "--json")
    assert r.exit_code == 0
    obj = json.loads(r.output)
    assert list(obj) == ["expr", "dtype", "value", "shape", "grad_fn", "grad", "nodes"]
    assert obj["value"] == 7.360439300537109 and obj["shape"] == [] and obj["dtype"] == "float32"
    assert obj["grad_fn"] == "MeanBackward0"
    assert obj["grad"]["x"] == [1.2699999809265137, 2.9384000301361084, 3.062800168991089]
    x = obj["nodes"][0]
    assert {k: x[k] for k in ("id", "name", "text", "op", "grad_fn", "inputs", "shape")} == {
        "id": 0,
        "name": "x",
        "text": "x",
        "op": "input",
        "grad_fn": "AccumulateGrad",
        "inputs": [],
        "shape": [3],
    }
    for node in obj["nodes"]:
        assert set(node) == {
            "id",
            "name",
            "text",
            "op",
            "grad_fn",
            "inputs",
            "shape",
            "value",
            "grad",
        }
        assert all(i < node["id"] for i in node["inputs"])


def test_json_is_strict_with_non_finite_values():
    r = run("grad", "sum(log(x))", "x=0,1", "--json")
    obj = json.loads(r.output, parse_constant=lambda c: pytest.fail(f"non-strict {c}"))
    assert obj["value"] == "-inf" and obj["grad"]["x"] == ["inf", 1.0]


def test_inputs_file_and_override(tmp_path):
    r = run(
        "grad",
        "mean(2*(x+2)^2)",
        "--inputs",
        "-",
        "--json",
        input='{"x": [-1.0475, 0.2038, 0.2971]}',
    )
    assert json.loads(r.output)["grad_fn"] == "MeanBackward0"
    path = tmp_path / "in.json"
    path.write_text('{"x": [1, 2], "y": 3}')
    r = run("grad", "sum(x * y)", "-i", str(path), "y=10", "--json")
    assert json.loads(r.output)["value"] == 30


def test_program_file_and_stdin(tmp_path):
    path = tmp_path / "prog.gc"
    path.write_text("# the walk-through\ny = x + 2\nz = y * y * 2\nz.mean()\n")
    r = run("grad", "-f", str(path), X)
    assert r.exit_code == 0 and r.output.startswith("tensor(7.3604")
    r = run("grad", "-f", "-", X, input="y = x + 2; z = y * y * 2; z.mean()")
    assert r.exit_code == 0 and r.output.startswith("tensor(7.3604")


def test_wrt_dtype_and_random_seed():
    r = run("grad", "sum(x * y)", "x=1,2", "y=3,4", "--wrt", "x", "--json", "--dtype", "float64")
    obj = json.loads(r.output)
    assert obj["grad"] == {"x": [3.0, 4.0]} and obj["dtype"] == "float64"
    a = run("grad", "sum(x)", "x=randn(4)", "--random-seed", "3", "--json").output
    b = run("grad", "sum(x)", "x=randn(4)", "--random-seed", "3", "--json").output
    assert a == b
    r = run("grad", "sum(x)", "x=1,2", "--dtype", "float64")
    assert "dtype=torch.float64" in r.output


def test_unused_input_has_no_grad():
    r = run("grad", "sum(x)", "x=1,2", "y=3")
    assert r.exit_code == 0 and r.output.rstrip().endswith("y.grad\nNone")


@pytest.mark.parametrize(
    "args,code,fragment",
    [
        (["grad", "mean(x", "x=1"], 2, "unexpected end of program"),
        (["grad", "meen(x)", "x=1"], 2, "did you mean 'mean'"),
        (["grad", "x + y", "x=1"], 2, "missing input: y"),
        (["grad", "sum(x)", "x=abc"], 2, "'abc' is not a number"),
        (["grad", "sum(x)", "x=[1,"], 2, "malformed JSON"),
        (["grad", "sum(x)", "--dtype", "float16", "x=1"], 2, "unknown dtype"),
        (["grad", "sum(x)", "--bogus", "x=1"], 2, "no such option: --bogus"),
        (["grad", "x", "+", "1"], 2, "expected NAME=VALUE"),
        (["grad", "x + y", "x=1,2", "y=1,2,3"], 1, "cannot be broadcast"),
        (["grad", "x", "x=1,2", "--seed-vector", "1,2,3"], 1, "shape [3]"),
        (["grad", "2 + 3"], 1, "does not require grad"),
        (["grad", "sum(x)", "-i", "/nonexistent.json"], 2, "cannot read inputs file"),
        (["grad", "sum(x)", "--wrt", "q", "x=1"], 2, "--wrt names q"),
        (["grad"], 2, "missing EXPR"),
    ],
)
def test_errors(args, code, fragment):
    r = run(*args)
    assert r.exit_code == code, r.output
    assert fragment in r.output
    assert "Traceback" not in r.output
    j = run(*args, "--json")
    obj = json.loads(j.output.strip().splitlines()[-1])
    assert set(obj["error"]) == {"type", "message", "position"} and j.exit_code == code


def test_parse_error_has_caret_and_json_position():
    r = run("grad", "x +* 2", "x=1")
    assert "x +* 2\n" in r.output and "       ^" in r.output
    obj = json.loads(run("grad", "x +* 2", "x=1", "--json").output.splitlines()[-1])
    assert obj["error"]["position"] == {"line": 1, "column": 4}
    assert obj["error"]["type"] == "ParseError"


def test_ops_lists_the_table():
    r = run("ops", "--json")
    rows = [json.loads(line) for line in r.output.splitlines()]
    names = {row["name"] for row in rows}
    assert {"add", "pow", "matmul", "exp", "sum", "mean", "max", "maximum", "dot"} <= names
    assert next(r for r in rows if r["name"] == "sub")["labels"].startswith("SubBackward0")


def test_help_is_fast_and_does_not_import_numpy():
    code = (
        "import sys; from gradcli.cli import main\n"
        "try:\n    main(['grad', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'numpy' not in sys.modules and 'lark' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def _installed():
    exe = shutil.which("gradcli", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("the gradcli console script is not installed beside this Python")
    return exe


def test_installed_command_from_another_directory(tmp_path):
    exe = _installed()
    p = subprocess.run(
        [exe, "grad", "mean(2*(x+2)^2)", X],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "tensor(7.3604, grad_fn=<MeanBackward0>)"
    assert p.stdout.rstrip().endswith("tensor([1.2700, 2.9384, 3.0628])")
    assert "\x1b" not in p.stdout and p.stderr == ""
    p = subprocess.run(
        [exe, "grad", "mean(2*(x+2)^2)", "--inputs", "-"],
        cwd=tmp_path,
        input='{"x": [-1.0475, 0.2038, 0.2971]}',
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0 and p.stdout.startswith("tensor(7.3604")
    p = subprocess.run(
        [sys.executable, "-m", "gradcli", "grad", "x", "x=1,2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 1 and "scalar outputs" in p.stderr and "Traceback" not in p.stderr


def test_readme_operator_list_matches_the_table():
    import pathlib

    from gradcli.cli import markdown_table
    from gradcli.ops import operator_rows

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    listed = readme.split("<!-- operators:start -->\n")[1].split("\n<!-- operators:end -->")[0]
    assert listed == markdown_table(operator_rows())


def test_readme_examples_run():
    """The README's one-liners print what the README says they print, piped (the terminal's
    layout is checked in test_terminal_layout)."""
    import pathlib

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ gradcli grad 'mean(2*(x+2)^2)' x=-1.0475,0.2038,0.2971 | cat\n")[1]
    expected = block.split("```")[0]
    assert run("grad", "mean(2*(x+2)^2)", X).output == expected


def test_the_console_script_goes_through_click():
    """One front end: the console script is click's, for `grad` as for every command."""
    code = (
        "import sys; from gradcli.commands import main\n"
        "try:\n    main(['grad', 'x * 2', 'x=1', '--json'])\n"
        "except SystemExit as e:\n    assert not e.code\n"
        "assert 'click' in sys.modules"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert '"grad_fn": "MulBackward0"' in p.stdout


RECORD = '{"expr": "sum(x)", "inputs": {"x": [1, 2]}}\n'
WHOLE_NUMBER_OPTIONS = [  # (command line before the option, the option, stdin)
    (["grad", "sum(x)", "x=1,2"], "--max-elements", None),
    (["grad", "sum(x)", "x=1,2"], "--max-input-bytes", None),
    (["grad", "sum(x)", "x=randn(2)"], "--random-seed", None),
    (["jacobian", "x * 2", "x=1,2"], "--max-elements", None),
    (["check", "sum(x)", "x=1,2"], "--max-evaluations", None),
    (["plot", "x^2", "--range", "x=0:1"], "--points", None),
    (["batch"], "--first-line", RECORD),
    (["batch"], "--jobs", RECORD),
    (["batch"], "--max-elements", RECORD),
    (["batch"], "--random-seed", RECORD),
]


@pytest.mark.parametrize("before,option,stdin", WHOLE_NUMBER_OPTIONS)
def test_whole_number_options_take_scientific_notation(before, option, stdin):
    """`--max-elements 1e24`: an integral number in any notation, read exactly (a Decimal:
    1e24 is 10**24, not the float 1e24 = 999999999999999983222784)."""
    small = option in ("--jobs", "--random-seed", "--points")  # a count of processes, a seed
    good = ("1e1", "1E1", "0.4e1", "4000e-3", "1_0") if small else ("1e24", "1E6", "2.5e3")
    for text in (*good, "12000e-3", "1_000"):
        r = run(*before, option, text, input=stdin)
        assert r.exit_code == 0, (option, text, r.output)
    for text in ("1.5", "1e-3", "nan", "inf", "-inf", "0x10", "ten", ""):
        r = run(*before, option, text, input=stdin)
        assert r.exit_code == 2, (option, text, r.output)
        assert f"error: {option} takes a whole number, got '{text}'" in r.stderr
        assert "Traceback" not in r.output
    r = run(*before, option, "-3", input=stdin)
    assert r.exit_code == 2 and f"error: {option} must be at least" in r.stderr
    r = run(*before, option, "1e5000", input=stdin)
    assert r.exit_code == 2 and f"error: {option} is too large: 1e5000" in r.stderr


def test_whole_numbers_are_exact():
    from gradcli.commands import _count, _whole

    assert _count("1e24", "--max-elements") == 10**24
    assert _whole("2.5e3", "--jobs") == 2500
    # past a float's 17 digits and the decimal module's default precision of 28
    assert _count("123456789012345678901234567890e-1", "--max-elements") == (
        12345678901234567890123456789
    )
    assert _count("1.0000000000000000000000000000001e31", "--max-elements") == 10**31 + 1


# ---- gradcli ops NAME: PyTorch's signature --------------------------------------------------

SIGNATURES = {  # the card's first line: PyTorch's argument names, not the table's a, b
    "add": "add(input, other, *, alpha=1)",
    "sum": "sum(input, dim=None, keepdim=False, *, dtype=None)",
    "conv2d": "conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)",
    "view": "Tensor.view(*shape)",
    "where": "where(condition, input, other)",
    "cross_entropy": "cross_entropy(input, target, weight=None, size_average=None, "
    "ignore_index=-100, reduce=None, reduction='mean', label_smoothing=0.0)",
}


@pytest.mark.parametrize("name", SIGNATURES)
def test_ops_name_shows_pytorchs_signature(name):
    r = run("ops", name)
    assert r.exit_code == 0 and r.output.splitlines()[0] == SIGNATURES[name]
    card = json.loads(run("ops", name, "--json").output)
    assert card["signature"] == SIGNATURES[name]


def test_ops_card_says_which_of_pytorchs_arguments_it_does_not_take():
    card = json.loads(run("ops", "add", "--json").output)
    assert card["not_taken"] == ["alpha"] and card["positional_only"] == []
    assert "  not taken:  alpha (always PyTorch's default)" in run("ops", "add").output
    card = json.loads(run("ops", "conv2d", "--json").output)
    assert card["not_taken"] == [] and card["positional_only"] == []  # weight= is taken
    r = run("grad", "sum(torch.add(x, x, alpha=2))", "x=1")  # what "not taken" means
    assert r.exit_code == 2 and "alpha" in r.output
    # every name the card does not list as not taken is one a program may pass
    card = json.loads(run("ops", "cross_entropy", "--json").output)
    assert "ignore_index" not in card["not_taken"] and "size_average" in card["not_taken"]
    r = run("grad", "cross_entropy(z, 2, ignore_index=1, label_smoothing=0.1)", "z=1,2,3")
    assert r.exit_code == 0, r.output


def test_ops_json_table_carries_the_signatures():
    rows = [json.loads(line) for line in run("ops", "--json").output.splitlines()]
    by_name = {r["name"]: r for r in rows}
    assert by_name["add"]["signature"] == SIGNATURES["add"]
    assert by_name["index"]["signature"].startswith("a[i], a[i:j:k]")  # spelt, not called


def test_every_signature_is_pytorchs_own():
    """Each line of ops/signatures.txt against the installed torch: the names, their order,
    keyword-only markers and defaults of an overload its docstring (or inspect) documents."""
    torch = pytest.importorskip("torch")
    from gradcli import signatures

    wrong = []
    for name, line in signatures.load().items():
        qualified, params = signatures.parse(line)
        if not signatures.matches(params, signatures.torch_signatures(torch, qualified)):
            wrong.append(f"{name} {line}")
    assert not wrong, "not PyTorch's signatures:\n" + "\n".join(wrong)


def test_every_operator_pytorch_documents_has_its_signature():
    torch = pytest.importorskip("torch")
    from gradcli import signatures
    from gradcli.ops import TABLE

    made = signatures.collect(torch, [op for op in TABLE if op.public])
    missing = [f"{name} {line}" for name, line in made.items() if name not in signatures.load()]
    assert not missing, (
        "operators without a signature in gradcli/ops/signatures.txt; `python -m "
        "gradcli.signatures` prints these lines to review and append:\n" + "\n".join(missing)
    )


def test_a_signature_that_is_not_pytorchs_is_caught():
    torch = pytest.importorskip("torch")
    from gradcli.signatures import matches, parse, torch_signatures

    def ok(text):
        qualified, params = parse(text)
        return matches(params, torch_signatures(torch, qualified))

    assert ok("torch.add(input, other, *, alpha=1)")
    assert not ok("torch.add(a, b, *, alpha=1)")  # the table's names
    assert not ok("torch.add(input, other, alpha=1)")  # alpha is keyword-only
    assert not ok("torch.add(input, other, *, alpha=2)")  # the wrong default
    assert not ok("torch.add(input, other)")  # an argument left out
    assert ok("torch.sum(input, dim=None, keepdim=False, *, dtype=None)")  # two overloads
    assert not ok("torch.transpose(input, dim0=None, dim1)")  # no overload without dim0
    assert not ok("torch.nn.functional.conv2d(input, weight, bias=None, stride=2)")
