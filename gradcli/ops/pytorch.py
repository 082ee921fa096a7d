"""PyTorch 2.13's public names, shipped as data (pytorch_names.txt), so that a name PyTorch
has and gradcli does not is reported as such (``torch.fft.fft is not supported``) rather than
answered with an unrelated suggestion. Read only when a name does not resolve.

The file is made from an installed torch by ``render(collect(torch))``; a test checks that
it still matches the installed torch."""

import math
import os

SECTIONS = (
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.special",
    "torch.linalg",
    "Tensor",
)
_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pytorch_names.txt")
_names = None


def collect(torch):
    """{section: sorted public names} from an installed torch: every attribute not starting
    with '_', and every public submodule on disk (whether imported yet or not); modules a
    section merely imports (torch.special.torch) are not its names."""
    import importlib
    import pkgutil
    import types

    out = {}
    for section in SECTIONS:
        obj = torch.Tensor if section == "Tensor" else importlib.import_module(section)
        names = []
        for name in dir(obj):
            if name.startswith("_"):
                continue
            try:
                value = getattr(obj, name)
            except Exception:  # noqa: BLE001 - a lazy attribute that fails still exists
                value = None
            if not isinstance(value, types.ModuleType):
                names.append(name)
        for sub in pkgutil.iter_modules(getattr(obj, "__path__", [])):
            if not sub.name.startswith("_"):
                names.append(sub.name)
        out[section] = sorted(set(names))
    return out


def render(names):
    lines = ["# PyTorch 2.13's public names, one per line, by section (gradcli/ops/pytorch.py)"]
    for section in SECTIONS:
        lines.append(f"[{section}]")
        lines.extend(names[section])
    return "\n".join(lines) + "\n"


def names():
    """{section: set of names}, read once; ``math`` is Python's own module."""
    global _names
    if _names is None:
        out: dict[str, set[str]] = {}
        current: set[str] | None = None
        with open(_FILE, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith("["):
                    current = out.setdefault(line[1:-1], set())
                else:
                    assert current is not None, "the names file starts with a [section]"
                    current.add(line)
        out["math"] = {n for n in dir(math) if not n.startswith("_")}
        _names = out
    return _names


def has(qualified):
    """Whether PyTorch (or Python's math) has this dotted name, or a module on its way
    (``torch.fft.fft``: torch has ``fft``)."""
    known = names()
    parts = qualified.split(".")
    for k in range(len(parts) - 1, 0, -1):
        section = ".".join(parts[:k])
        if section in known:
            return parts[k] in known[section]
    return False


def bare(name):
    """PyTorch's spelling of a bare function name, if it has one (torch.f, F.f or x.f())."""
    known = names()
    for section, spelled in (
        ("torch", f"torch.{name}"),
        ("torch.nn.functional", f"F.{name}"),
        ("Tensor", f"Tensor.{name}"),
    ):
        if name in known[section]:
            return spelled
    return None
