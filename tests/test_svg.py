"""`gradcli graph --format svg|png`: gradcli's own layout, checked as XML and as a picture
drawn by a real renderer (rsvg-convert)."""

import subprocess
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner
from pictures import decode_png, decode_png_zlib, need_module, need_tool, rgb

from gradcli import graphs, svg
from gradcli.cli import main
from gradcli.errors import InputError

NS = {"s": "http://www.w3.org/2000/svg"}
SEED = ("mean(2*(x+2)^2)", {"x": "-1.0475,0.2038,0.2971"})


def _boxes(text):
    root = ET.fromstring(text)
    out = []
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        if g.get("id", "").startswith("n"):
            rects = g.findall("s:rect", NS)
            assert len(rects) == 1, "one box per node"
            r = rects[0]
            out.append(
                {
                    "id": int(g.get("id")[1:]),
                    "kind": g.get("class"),
                    "x": int(r.get("x")),
                    "y": int(r.get("y")),
                    "w": int(r.get("width")),
                    "h": int(r.get("height")),
                    "stroke": r.get("stroke"),
                    "fill": r.get("fill"),
                    "texts": [t.text for t in g.findall("s:text", NS)],
                }
            )
    return root, out


def _no_overlap(boxes):
    # boxes sit on a grid: sorting by row then column, each box must clear its neighbours
    seen = {}
    for b in boxes:
        for o in seen.get(b["y"], []):
            assert b["x"] >= o["x"] + o["w"] or o["x"] >= b["x"] + b["w"], (b["id"], o["id"])
        seen.setdefault(b["y"], []).append(b)
    ys = sorted(seen)
    h = boxes[0]["h"]
    assert all(b - a >= h for a, b in zip(ys, ys[1:], strict=False)), "rows overlap"


def test_seed_example_svg_has_every_node_with_its_texts():
    g = graphs.build(SEED[0], SEED[1])
    root, boxes = _boxes(graphs.render(g, "svg"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert [b["id"] for b in sorted(boxes, key=lambda b: b["id"])] == [n["id"] for n in g["nodes"]]
    by_id = {b["id"]: b for b in boxes}
    out = by_id[g["output"]]
    assert out["kind"] == "output" and "MeanBackward0" in out["texts"]
    assert out["texts"][2] == "shape []" and out["texts"][3] == "value 7.3604"
    x = by_id[0]
    assert x["kind"] == "leaf" and x["texts"][:2] == ["[0] x", "AccumulateGrad"]
    assert x["texts"][4] == "grad [1.2700, 2.9384, 3.0628]"
    labels = [b["texts"][1] for b in sorted(boxes, key=lambda b: b["id"])]
    assert labels == [n["grad_fn"] for n in g["nodes"]]
    # leaves on the top row, the output alone on the bottom one, one row per depth
    assert x["y"] < min(b["y"] for b in boxes if b["kind"] != "leaf")
    assert out["y"] == max(b["y"] for b in boxes)
    assert len({b["y"] for b in boxes}) == len(g["nodes"])  # a chain: one node per layer
    # one edge per input, each a path
    paths = root.findall(".//s:path[@marker-end]", NS)
    assert len(paths) == sum(len(n["inputs"]) for n in g["nodes"])
    _no_overlap(boxes)


def test_unevaluated_graph_and_long_texts_are_elided():
    name = "a_very_long_input_name_" * 4
    g = graphs.build(f"sin({name}) * 2")
    _, boxes = _boxes(graphs.render(g, "svg"))
    assert all(len(t) <= svg.CHARS for b in boxes for t in b["texts"])
    assert any(t.endswith("…") for b in boxes for t in b["texts"])
    assert {b["texts"][1] for b in boxes} >= {"AccumulateGrad", "SinBackward0"}


def _edges_clear_of_boxes(g, boxes):
    """No edge passes behind a box: every point along it is outside every box but its own
    two ends' boxes' borders."""
    lay = svg.layout(g)
    assert len(lay["edges"]) == sum(len(n["inputs"]) for n in g["nodes"])
    for a, t, kind, points in lay["edges"]:
        if kind == "curve":
            along = [svg._bezier(points, u / 50) for u in range(51)]
        else:
            along = [
                (p[0] + (q[0] - p[0]) * u / 50, p[1] + (q[1] - p[1]) * u / 50)
                for p, q in zip(points, points[1:], strict=False)
                for u in range(51)
            ]
        for x, y in along:
            for b in boxes:
                inside = b["x"] < x < b["x"] + b["w"] and b["y"] < y < b["y"] + b["h"]
                assert not inside, (a, t, b["id"], x, y)


def _big_program(n):
    lines = [f"a{i} = sin(x * {i + 1})" for i in range(n)]
    chain = ["c0 = x"] + [f"c{i + 1} = tanh(c{i})" for i in range(n // 4)]
    return "; ".join(lines + chain + [" + ".join(f"a{i}" for i in range(n)) + f" + c{n // 4}"])


def _png_bytes(text, tmp_path):
    rsvg = need_tool("rsvg-convert", "librsvg2-bin")
    path = tmp_path / "g.svg"
    path.write_text(text, encoding="utf-8")
    return subprocess.run([rsvg, str(path)], capture_output=True, check=True).stdout


def _render_png(text, tmp_path):
    return decode_png(_png_bytes(text, tmp_path))


PROGRAMS = {
    "seed": SEED,
    "skips": ("y = x + 2; z = y * y * 2; sum(z) + mean(y) * w", {"x": "1,2,3", "w": "0.5"}),
    "big": (_big_program(80), {"x": "0.5,1"}),
}


@pytest.mark.parametrize("program", list(PROGRAMS))
def test_rendered_picture_has_every_box_where_the_svg_says(program, tmp_path):
    expr, inputs = PROGRAMS[program]
    g = graphs.build(expr, inputs)
    text = graphs.render(g, "svg")
    root, boxes = _boxes(text)
    assert len(boxes) == len(g["nodes"])
    if program == "big":
        assert len(boxes) > 200
    _no_overlap(boxes)
    _edges_clear_of_boxes(g, boxes)
    image = _render_png(text, tmp_path)
    if program == "seed":  # the pure decoder agrees with Pillow's (when it is there)
        assert (decode_png_zlib(_png_bytes(text, tmp_path)) == image).all()
    assert image.shape[:2] == (int(root.get("height")), int(root.get("width")))
    for b in boxes:
        stroke, fill = rgb(b["stroke"]), rgb(b["fill"])
        x, y, w, h = b["x"], b["y"], b["w"], b["h"]
        for px, py in [(x, y + h // 2), (x + w - 1, y + h // 2), (x + 5, y), (x + 5, y + h - 1)]:
            assert tuple(image[py, px]) == stroke, (b["id"], px, py)
        assert tuple(image[y + h - 5, x + w - 5]) == fill, b["id"]
    # between two boxes of a row: the white page
    b0 = min(boxes, key=lambda b: (b["y"], b["x"]))
    assert tuple(image[b0["y"] + 5, b0["x"] + b0["w"] + 5]) == (255, 255, 255)


def test_cli_svg_and_png(tmp_path):
    r = CliRunner().invoke(main, ["graph", SEED[0], "x=" + SEED[1]["x"], "--format", "svg"])
    assert r.exit_code == 0, r.output
    _, boxes = _boxes(r.stdout)
    assert len(boxes) == 5  # x, x+2, ^2, 2*, mean
    need_tool("rsvg-convert", "librsvg2-bin")
    r = CliRunner().invoke(main, ["graph", SEED[0], "x=1,2,3", "--format", "png"])
    assert r.exit_code == 0, r.output
    image = decode_png(r.stdout_bytes)
    assert image.shape[1] == svg.layout(graphs.build(SEED[0], {"x": "1,2,3"}))["width"]


def test_png_without_rsvg_uses_matplotlib(monkeypatch):
    need_module("matplotlib", "plot")
    monkeypatch.setattr(svg.shutil, "which", lambda name: None)
    g = graphs.build(SEED[0], SEED[1])
    image = decode_png(svg.to_png(g))
    lay = svg.layout(g)
    assert image.shape[:2] == (lay["height"], lay["width"])
    # the output box's border colour is on its left side
    b = next(b for b in lay["boxes"] if b["kind"] == "output")
    column = image[b["y"] + 10 : b["y"] + svg.BOX_H - 10, b["x"] - 1 : b["x"] + 2]
    target = rgb(svg.COLOURS["output"])
    assert any(
        tuple(p) == target or sum(abs(int(a) - c) for a, c in zip(p, target, strict=False)) < 40
        for row in column
        for p in row
    )


def test_png_without_rsvg_or_matplotlib_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(svg.shutil, "which", lambda name: None)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(InputError) as e:
        svg.to_png(graphs.build("x * 2", {"x": "1"}))
    assert "pip install 'gradcli[plot]'" in e.value.hint
    r = CliRunner().invoke(main, ["graph", "x * 2", "x=1", "--format", "png"])
    assert r.exit_code == 2 and "gradcli[plot]" in r.stderr
