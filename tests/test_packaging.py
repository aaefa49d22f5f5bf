"""What a user gets from installing the package: fast lazy imports, one version, typed wheel,
no CUDA download."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import textwrap
import types
import zipfile

import numpy as np
import pytest
from helpers import ROOT, run_python

import sktelescope

DOCS = ROOT / "docs"
# Pages whose Python blocks form one runnable script each (blocks marked ``:class: no-test``,
# such as cluster commands, are left out).
GUIDE_PAGES = ["index.rst", "user_guide/estimators.rst", "user_guide/lens.rst",
               "user_guide/trees.rst"]  # fmt: skip
CLASSES = ("Stage", "TelescopingMLPClassifier", "TelescopingMLPRegressor")
SUBPACKAGES = ("bench", "datasets", "exceptions", "lens", "trees")


def test_import_does_not_import_torch():
    result = run_python("-c", "import sktelescope, sys; assert 'torch' not in sys.modules")
    assert result.returncode == 0, result.stderr


def test_cli_help_does_not_import_torch():
    # -X importtime lists every module the command imported, one per line on stderr.
    result = run_python("-X", "importtime", "-m", "sktelescope", "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bench" in result.stdout
    imported = re.findall(r"\|\s+([\w.]+)\s*$", result.stderr, flags=re.M)
    assert "sktelescope" in imported
    assert not [name for name in imported if name.split(".")[0] == "torch"]


def test_public_names_resolve_on_first_access():
    code = (
        "import sys, sktelescope\n"
        "assert 'sktelescope._mlp' not in sys.modules\n"
        "from sktelescope import TelescopingMLPRegressor\n"
        "assert 'torch' in sys.modules\n"
        "assert TelescopingMLPRegressor.__module__.startswith('sktelescope._mlp')\n"
        "assert 'TelescopingMLPRegressor' in vars(sktelescope)\n"  # cached after first use
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr


def test_dir_and_all_list_the_public_names():
    names = set(dir(sktelescope))
    assert set(sktelescope.__all__) <= names
    assert set(CLASSES) | set(SUBPACKAGES) | {"__version__"} <= set(sktelescope.__all__)
    for name in SUBPACKAGES:
        module = getattr(sktelescope, name)
        assert isinstance(module, types.ModuleType)
        assert module.__name__ == f"sktelescope.{name}"
    for name in CLASSES:
        assert isinstance(getattr(sktelescope, name), type)


def test_stage_is_the_class_of_fitted_stages():
    from sktelescope import Stage, TelescopingMLPRegressor

    X = np.random.default_rng(0).normal(size=(40, 3))
    est = TelescopingMLPRegressor((4,), max_iter=2, random_state=0).fit(X, X[:, 0])
    assert all(isinstance(stage, Stage) for stage in est.stages_)


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'TelescopingMLP'"):
        sktelescope.TelescopingMLP  # noqa: B018
    assert not hasattr(sktelescope, "_not_a_name")


def test_version_is_the_installed_distributions():
    try:
        installed = importlib.metadata.version("sktelescope")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("sktelescope is not installed (pip install -e .)")
    from sktelescope._version import __version__

    assert sktelescope.__version__ == __version__ == installed


@pytest.mark.skipif(
    importlib.util.find_spec("setuptools") is None, reason="building a wheel needs setuptools"
)
def test_wheel_carries_version_license_and_type_marker(tmp_path):
    import setuptools

    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("the license expression needs setuptools>=77")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "sktelescope", src / "sktelescope",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("sktelescope-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        files = zf.namelist()
        (metadata,) = [f for f in files if f.endswith(".dist-info/METADATA")]
        meta = zf.read(metadata).decode()
    assert f"\nVersion: {sktelescope.__version__}\n" in meta
    assert "\nLicense-Expression: BSD-3-Clause\n" in meta
    for label in ("Homepage", "Documentation", "Source", "Changelog"):
        assert f"\nProject-URL: {label}, " in meta
    assert "sktelescope/py.typed" in files
    assert any(f.endswith(".dist-info/licenses/LICENSE") for f in files)


def test_math_labels_that_docstrings_point_at_exist():
    labels = set(re.findall(r"^\.\. _(math-[\w-]+):", (ROOT / "docs" / "math.rst").read_text(),
                            flags=re.M))  # fmt: skip
    expected = {
        "math-telescoping", "math-optimizers", "math-smoother", "math-effective-parameters",
        "math-gbt-smoother", "math-extremity", "math-relative-gap", "math-irregularity",
        "math-lmc", "math-gradient-stability",
    }  # fmt: skip
    assert expected <= labels


def _python_blocks(text: str) -> list[str]:
    """The bodies of the page's ``.. code-block:: python`` directives, in order."""
    pattern = r"^\.\. code-block:: python\n((?:[ \t]+:.*\n)*)\n((?:(?:[ \t]+.*)?\n)+)"
    return [
        textwrap.dedent(body)
        for options, body in re.findall(pattern, text, flags=re.M)
        if "no-test" not in options
    ]


@pytest.mark.slow
@pytest.mark.parametrize("page", GUIDE_PAGES)
def test_documented_python_runs(page, tmp_path, monkeypatch):
    blocks = _python_blocks((DOCS / page).read_text())
    assert blocks, f"{page} should show runnable Python"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOCS / page), "exec"), namespace)  # noqa: S102


def _readme_torch_pin() -> str:
    """The torch requirement the README's set-up installs first (``torch==2.13.0``)."""
    (pin,) = set(re.findall(r"pip install (torch==[\w.+]+)", (ROOT / "README.md").read_text()))
    return pin


def _extras_requirements() -> list[str]:
    """The package's dependencies and every extra's, as requirement strings."""
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [*project["dependencies"], *(req for name in sorted(extras) for req in extras[name])]


def _pip(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def _skip_without_an_index() -> None:
    probe = _pip("index", "versions", "pip", timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"no package index reachable (pip index versions pip: "
                    f"{probe.stderr.strip().splitlines()[-1:]}); the check resolves the extras "
                    "against the index")  # fmt: skip


@pytest.mark.slow
def test_no_extra_resolves_to_a_cuda_package():
    # The README's set-up (its torch pin first, then the extras) on this platform, resolved
    # by pip against the index as if nothing were installed, installing nothing. xgboost's
    # Linux wheel requires nvidia-nccl-cu12 (351 MB): the extras name xgboost-cpu instead.
    _skip_without_an_index()
    requirements = [_readme_torch_pin(), *_extras_requirements()]
    done = _pip("install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-",
                *requirements)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    installed = json.loads(done.stdout)["install"]
    names = {item["metadata"]["name"].lower().replace("_", "-"): item for item in installed}
    assert "torch" in names and ("xgboost-cpu" in names or sys.platform == "darwin")
    cuda = sorted(name for name in names if name.startswith("nvidia-"))
    requirers = {
        name: [other for other, item in names.items()
               if any(re.match(rf"{re.escape(name)}\b", req.lower().replace("_", "-"))
                      for req in item["metadata"].get("requires_dist", []))]
        for name in cuda
    }  # fmt: skip
    assert not cuda, f"the set-up would install CUDA packages (required by): {requirers}"
