"""jvp, jacobian, hessian and check against torch.autograd.functional (float64, 1e-8) and
finite differences; graph and explain."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import sample, table_examples, torch_function

import gradcli
from gradcli import derivatives as D
from gradcli.cli import main


def _inputs(specs, seed=5):
    rng = np.random.default_rng(seed)
    return {k: sample(shape, domain, rng) for k, (shape, domain) in specs.items()}


def _close(ours, theirs, what):
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10, err_msg=what)


@pytest.mark.parametrize("program,specs", table_examples())
def test_jvp_and_jacobian_match_pytorch(torch, program, specs):
    from torch.autograd.functional import jacobian, jvp

    inputs = _inputs(specs)
    names = list(inputs)
    f = torch_function(torch, program, names)
    args = tuple(torch.tensor(v) for v in inputs.values())
    rng = np.random.default_rng(6)
    tangents = {k: rng.standard_normal(np.shape(v)) for k, v in inputs.items()}
    ours = D.jvp(program, inputs, tangents, dtype="float64")
    value, theirs = jvp(f, args, tuple(torch.tensor(t) for t in tangents.values()))
    _close(ours["value"], value.numpy(), "value")
    _close(ours["jvp"], theirs.numpy(), "jvp")
    tj = jacobian(f, args)
    for mode in ("forward", "reverse"):
        J = D.jacobian(program, inputs, dtype="float64", mode=mode)
        for k, name in enumerate(names):
            _close(J["jacobian"][name], tj[k].numpy(), f"{mode} d/d{name}")


@pytest.mark.parametrize("program,specs", table_examples())
def test_hessian_matches_pytorch(torch, program, specs):
    from torch.autograd.functional import hessian

    inputs = _inputs(specs)
    names = list(inputs)
    scalar = program if _is_scalar(program, inputs) else f"sum(sin({program}))"
    f = torch_function(torch, scalar, names)
    args = tuple(torch.tensor(v) for v in inputs.values())
    ours = D.hessian(scalar, inputs, dtype="float64")
    theirs = hessian(f, args)
    for i, a in enumerate(names):
        for k, b in enumerate(names):
            _close(ours["hessian"][a][b], theirs[i][k].numpy(), f"d2/d{a}d{b} of {scalar}")


def _is_scalar(program, inputs):
    from gradcli import engine
    from gradcli.parser import parse

    p = parse(program)
    nodes, out = engine.forward(p, {k: np.asarray(v) for k, v in inputs.items()}, set(), "float64")
    return nodes[out].shape == ()


PROGRAMS = [
    ("sum(exp(x) * sin(y))", {"x": [0.1, 0.2], "y": [0.3, -0.4]}),
    ("y = x + 2; z = y * y * 2; z.mean()", {"x": [-1.0475, 0.2038, 0.2971]}),
    ("sum(100*(x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)", {"x": [1.5, -0.5, 0.3, 2.0]}),
    (
        "sum((A @ x) ^ 2) + dot(x, x) * s",
        {"A": [[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]], "x": [0.5, -1.5], "s": 2.0},
    ),
    (
        "cross_entropy(W @ x + b, 1)",
        {"W": [[0.2, -0.1], [0.4, 0.3], [-0.5, 0.1]], "x": [1.0, 2.0], "b": [0.1, 0.0, -0.1]},
    ),
    ("sum(sigmoid(x) * tanh(y)) / sum(x ^ 2)", {"x": [0.3, -0.7, 1.1], "y": [0.2, 0.4, -0.6]}),
]


@pytest.mark.parametrize("program,inputs", PROGRAMS)
def test_programs_against_pytorch_functional(torch, program, inputs):
    from torch.autograd.functional import hessian, jacobian

    names = list(inputs)
    f = torch_function(torch, program, names)
    args = tuple(torch.tensor(np.asarray(v, dtype=float)) for v in inputs.values())
    H = D.hessian(program, inputs, dtype="float64")["hessian"]
    TH = hessian(f, args)
    J = D.jacobian(program, inputs, dtype="float64")["jacobian"]
    TJ = jacobian(f, args)
    for i, a in enumerate(names):
        _close(J[a], TJ[i].numpy(), a)
        for k, b in enumerate(names):
            _close(H[a][b], TH[i][k].numpy(), a + b)


def test_constant_derivative_gives_a_zero_block():
    """PyTorch's autograd.grad fails here (pytorch#32304); a zero block is the answer."""
    H = D.hessian("sum(x * 2) + sum(y)", {"x": [1.0, 2.0], "y": [3.0]}, dtype="float64")["hessian"]
    assert not H["x"]["x"].any() and H["x"]["y"].shape == (2, 1) and not H["y"]["y"].any()


def test_jacobian_picks_the_cheaper_mode():
    wide = D.jacobian("sum(x)", {"x": "ones(5)"}, dtype="float64")
    tall = D.jacobian("x * 2", {"x": [1.0]}, dtype="float64")
    assert (wide["mode"], wide["passes"]) == ("reverse", 1)
    assert (tall["mode"], tall["passes"]) == ("forward", 1)


def test_jvp_errors():
    with pytest.raises(gradcli.InputError, match="--tangent names q"):
        D.jvp("x * 2", {"x": [1.0]}, {"q": [1.0]})
    with pytest.raises(gradcli.EvaluationError, match="tangent for x has shape"):
        D.jvp("x * 2", {"x": [1.0, 2.0]}, {"x": [1.0]})
    with pytest.raises(gradcli.EvaluationError, match="scalar output"):
        D.hessian("x * 2", {"x": [1.0, 2.0]})


def test_check_passes_and_fails():
    ok = D.check("sum(exp(x) * sin(y))", {"x": [0.1, 0.2], "y": [0.3, -0.4]}, sweep=True)
    assert ok["ok"] and set(ok["inputs"]["x"]) == {"reverse", "forward"}
    errors = [r["max_abs_error"] for r in ok["sweep"]]
    best = int(np.argmin(errors))
    assert 2 < best < 9 and errors[0] > errors[best] < errors[-1]  # truncation vs rounding
    bad = D.check("sum(relu(x))", {"x": [0.0, 1.0]})  # at the kink: FD says 1/2, PyTorch 0
    assert not bad["ok"]


# ---- the commands ------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_cli_json_keys():
    j = json.loads(
        run("jvp", "sin(x) * y", "x=1,2", "y=3,4", "--tangent", "x=1,0", "--json").output
    )
    assert j["jvp"][1] == 0.0 and "value" in j
    j = json.loads(run("jacobian", "A @ x", "A=[[1,2],[3,4]]", "x=1,2", "--json").output)
    assert j["jacobian"]["x"] == [[1.0, 2.0], [3.0, 4.0]] and j["mode"] in ("forward", "reverse")
    j = json.loads(run("hessian", "sum(x^3)", "x=1,2", "--json", "--dtype", "float64").output)
    assert j["hessian"]["x"]["x"] == [[6.0, 0.0], [0.0, 12.0]]
    r = run("check", "sum(exp(x) * sin(y))", "x=0.1,0.2", "y=0.3,-0.4", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["ok"] is True
    r = run("check", "sum(relu(x))", "x=0,1")
    assert r.exit_code == 1 and r.output.startswith("FAILED")


def test_check_sweep_text_and_plot():
    from gradcli.render import check_text

    out = D.check("sum(x ^ 3)", {"x": [0.5]}, sweep=True)
    text = check_text(out, plot=True)
    assert "1e-12" in text and "█" in text


WALK = "y = x + 2; z = y * y * 2; z.mean()"


def test_graph_formats():
    dot = run("graph", WALK, "--format", "dot").output
    assert dot.startswith("digraph") and dot.count("[label=") == 5  # y shared: once
    mermaid = run("graph", WALK, "--format", "mermaid", "x=1,2").output
    assert (
        mermaid.startswith("flowchart") and "AddBackward0" in mermaid and "grad [6., 8.]" in mermaid
    )
    g = json.loads(run("graph", WALK, "--format", "json", "x=1,2").output)
    assert g["evaluated"] and [n["grad_fn"] for n in g["nodes"]] == [
        "AccumulateGrad",
        "AddBackward0",
        "MulBackward0",
        "MulBackward0",
        "MeanBackward0",
    ]
    tree = run("graph", WALK).output
    assert tree.splitlines()[0].startswith("[6] z.mean()") and "shared: shown above" in tree


def test_dot_renders_with_graphviz(tmp_path):
    if shutil.which("dot") is None:
        if os.environ.get("GRADCLI_REQUIRE_DOT") == "1":
            pytest.fail("GRADCLI_REQUIRE_DOT=1 but Graphviz dot is not installed")
        pytest.skip("Graphviz dot is not installed")
    dot = run("graph", WALK, "--format", "dot", "x=1,2").output
    p = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.count('class="node"') == 5


def test_explain_walks_the_reverse_pass():
    r = run("explain", WALK, "x=-1.0475,0.2038,0.2971")
    text = r.output
    assert "[6] MeanBackward0  z.mean()" in text and "∂mean(a)/∂aᵢ = 1/n" in text
    assert text.index("MeanBackward0  z.mean()") < text.index("AddBackward0  y = x + 2")
    assert text.rstrip().endswith("x.grad = tensor([1.2700, 2.9384, 3.0628])")
    j = json.loads(run("explain", WALK, "x=1,2", "--json").output)
    assert [s["grad_fn"] for s in j["steps"]] == [
        "MeanBackward0",
        "MulBackward0",
        "MulBackward0",
        "AddBackward0",
    ]
    assert j["grad"]["x"] == [6.0, 8.0]
    assert j["steps"][2]["sends"][0]["to"] == 2 and len(j["steps"][2]["sends"]) == 2
