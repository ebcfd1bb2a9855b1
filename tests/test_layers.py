"""The package's layers: each module imports only its own layer and the ones under it."""

import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parent.parent / "mirage_viz"

# low to high: a module may import its own layer and those before it (mirage_viz/__init__.py says the same)
LAYERS = [
    {"checks", "image", "inputs", "metrics", "options"},
    {"geometry"},
    {"memories", "models", "consistency"},
    {"backbone", "scenes"},
    {"rollout"},
    {"viz", "training"},
    {"outputs", "bench", "sweep"},
    {"ui", "cli", "__main__"},
]
LAYER_OF = {part: index for index, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    """``mirage_viz.rollout.engine`` -> ``rollout``."""
    return module.split(".")[1]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "assets" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every ``mirage_viz.*`` module ``path`` imports (at module level or inside functions), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("mirage_viz."):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("mirage_viz.")]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append((node.lineno, "(relative)"))
    return found


def test_every_module_sits_in_a_layer():
    parts = {part_of(name) for name in modules() if name != "mirage_viz"}
    assert parts <= set(LAYER_OF), f"modules outside every layer: {sorted(parts - set(LAYER_OF))}"


def test_no_layer_imports_a_higher_one():
    wrong = []
    for name, path in modules().items():
        if name == "mirage_viz":
            continue  # the package's front door names things from every layer, lazily
        layer = LAYER_OF[part_of(name)]
        for line, target in imports_of(path):
            if target == "(relative)":
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} uses a relative import; write it absolute")
            elif LAYER_OF.get(part_of(target), -1) > layer:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({part_of(name)}, layer {layer}) imports "
                             f"{target} (layer {LAYER_OF[part_of(target)]})")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The test above can fail: a geometry module importing the app is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from mirage_viz.ui.app import build_demo\n")
    (line, target), = imports_of(bad)
    assert line == 2 and LAYER_OF[part_of(target)] > LAYER_OF["geometry"]


def import_lines(source: str) -> set[int]:
    """The line numbers of ``source``'s import statements (their shared blocks are not code written twice)."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def repeated_runs(files: dict[str, list[str]], length: int = 6) -> list[str]:
    """Places where ``length`` consecutive significant lines (stripped; blank, comment and import lines skipped)
    stand again elsewhere, the same to the letter."""
    seen: dict[tuple[str, ...], str] = {}
    repeats = []
    for name, lines in files.items():
        imports = import_lines("\n".join(lines))
        kept = [(number, line.strip()) for number, line in enumerate(lines, 1)
                if line.strip() and not line.strip().startswith("#") and number not in imports]
        for start in range(len(kept) - length + 1):
            window = tuple(text for _, text in kept[start:start + length])
            if all(len(text) < 4 for text in window):
                continue  # closing brackets and the like
            where = f"{name}:{kept[start][0]}"
            if window in seen and not seen[window].startswith(f"{name}:"):
                repeats.append(f"{where} repeats {seen[window]}")
            seen.setdefault(window, where)
    return repeats


def test_no_run_of_six_lines_is_written_twice_in_the_package():
    files = {str(path.relative_to(PACKAGE.parent)): path.read_text().splitlines() for path in modules().values()}
    assert not repeated_runs(files), "\n".join(repeated_runs(files)[:10])
    assert repeated_runs({"a.py": ["x = 1", "y = 2", "z = 3", "u = 4", "v = 5", "w = 6"],
                          "b.py": ["pass", "x = 1", "y = 2", "z = 3", "u = 4", "v = 5", "w = 6"]}) == ["b.py:2 repeats a.py:1"]
