"""`msabench new-plugin`'s function: bad names get one line; the package it writes installs with `pip install -e`,
passes `msabench check` and its own tests, and its method trains on synthetic-mosi, then verifies and renders,
without an edit. The install goes into a throwaway venv that sees this one's packages (so .venv, and every other
test, never sees the new entry point)."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from msabench.errors import PluginError
from msabench.scaffold import new_plugin, plugin_names, render

FILES = [
    ".gitignore",
    "README.md",
    "msabench_demo_fusion/__init__.py",
    "msabench_demo_fusion/fusion.py",
    "msabench_demo_fusion/method.py",
    "msabench_demo_fusion/objective.py",
    "pyproject.toml",
    "tests/test_conformance.py",
]


def test_a_name_gives_the_entry_point_the_distribution_and_the_package():
    names = plugin_names("demo-fusion")
    assert (names.name, names.distribution, names.package, names.title) == (
        "demo-fusion",
        "msabench-demo-fusion",
        "msabench_demo_fusion",
        "Demo Fusion",
    )
    files = render(names)
    assert sorted(files) == FILES
    assert 'demo-fusion = "msabench_demo_fusion"' in files["pyproject.toml"]
    assert 'name = "msabench-demo-fusion"' in files["pyproject.toml"]
    assert "@parametrize_with_checks(msabench_demo_fusion)" in files["tests/test_conformance.py"]
    assert 'name = "demo-fusion-fusion"' in files["msabench_demo_fusion/fusion.py"]
    assert "| Paper | `paper=" in files["README.md"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Demo_Fusion", "'Demo_Fusion' is not a plugin name: use lowercase letters and digits in words joined by '-', "
         "starting with a letter such as demo-fusion"),
        ("9lives", "'9lives' is not a plugin name"),
        ("demo--fusion", "'demo--fusion' is not a plugin name"),
        ("core", "a plugin called 'core' is installed already (msabench-core): choose another name."),
    ],
)  # fmt: skip
def test_bad_names_are_refused_in_one_line(tmp_path, name, message):
    with pytest.raises(PluginError) as refused:
        new_plugin(name, tmp_path)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_a_component_name_or_a_folder_that_exists_is_refused(tmp_path):
    from fakes import Plugin
    from test_catalog import catalog_with

    with pytest.raises(PluginError, match="the method 'tiny' is registered already by plugin"):
        new_plugin("tiny", tmp_path, catalog=catalog_with(Plugin()))
    (tmp_path / "msabench-demo-fusion").mkdir()
    with pytest.raises(PluginError, match="msabench-demo-fusion exists already: choose another --dir, or another name"):
        new_plugin("demo-fusion", tmp_path, catalog=catalog_with())


def run(*args, cwd, env):
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_the_new_plugin_installs_checks_runs_verifies_and_renders_without_an_edit(tmp_path):
    written = run(
        sys.executable, "-m", "msabench", "new-plugin", "demo-fusion", "--dir", "src", cwd=tmp_path, env=os.environ
    )
    folder = tmp_path / "src" / "msabench-demo-fusion"
    assert f"wrote {Path('src') / 'msabench-demo-fusion'}" in written.stdout
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == FILES
    alone = ["--no-cache", "--isolated", "--line-length", "120"]  # as a project of its own, with msabench's rules
    run(
        sys.executable,
        "-m",
        "ruff",
        "check",
        *alone,
        "--select",
        "E,F,I,B,UP,SIM",
        folder,
        cwd=tmp_path,
        env=os.environ,
    )
    run(sys.executable, "-m", "ruff", "format", "--check", *alone, folder, cwd=tmp_path, env=os.environ)

    # A venv of its own that also sees this one's packages: `pip install -e` there adds an entry point nobody else sees.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    inner = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    Path(inner, "_msabench_outer.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONNOUSERSITE": "1"}
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
    ]
    run(*pip, "--quiet", "-e", folder, cwd=tmp_path, env=env)

    work = tmp_path / "work"
    work.mkdir()
    checks = subprocess.Popen(  # the plugin's own tests, beside `msabench check` (two cores)
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", folder],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    checked = run(python, "-m", "msabench", "check", "demo-fusion", cwd=work, env=env)
    assert "FAIL" not in checked.stdout and "PASS  check_installed" in checked.stdout
    own, _ = checks.communicate()
    assert checks.returncode == 0 and "12 passed" in own, own

    trained = run(
        python, "-m", "msabench", "run", "--method", "demo-fusion", "--dataset", "synthetic-mosi", "--seeds", "1111",
        "--max-epochs", "1", "--no-progress", "--no-checkpoints", cwd=work, env=env,
    )  # fmt: skip
    assert "| demo-fusion " in trained.stdout
    verified = run(python, "-m", "msabench", "verify", "results", cwd=work, env=env)
    assert "verify PASSED: 1 of 1 result files under results pass" in verified.stdout
    run(python, "-m", "msabench", "site", "--results", "results", "--out", "site", cwd=work, env=env)
    page = (work / "site/synthetic-mosi/mmsa-1+max_epochs=1/demo-fusion/index.html").read_text()
    assert "Demo Fusion (Author et al., Venue Year)" in page and "demo-fusion 0.1.0" in page.replace("</code> ", " ")


def test_the_guide_shows_the_files_the_template_writes():
    guide = (Path(__file__).parent.parent / "docs" / "writing-a-plugin.md").read_text()
    for path in FILES:
        if path != ".gitignore":
            assert path.split("/")[-1] in guide, path
    assert "msabench new-plugin demo-fusion" in guide and 'demo-fusion = "msabench_demo_fusion"' in guide
