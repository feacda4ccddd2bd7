"""The environments: one requirements file each, from which both deployment routes are made,
real resolutions against the package registry, and jobs that run in the environment their
model needs (or stop saying how to get it)."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from sarchat_bench.models import environments
from sarchat_bench.models.environments import EnvironmentMismatch, interpreter, requirement_lines, unmet
from support import REPO, SCRIPTS
from support.commands import run_cli

NAMES = environments.names()


def test_every_environment_has_its_files():
    assert NAMES == ["default", "lmms_eval", "transformers4", "vllm"]
    for name in NAMES:
        assert (REPO / "envs" / f"{name}.yaml").is_file() and (REPO / "envs" / "locks" / f"{name}.txt").is_file()


@pytest.mark.parametrize("name", NAMES)
def test_conda_file_is_self_contained_and_agrees_with_the_requirements(name):
    """Snakemake copies envs/<name>.yaml before conda reads it, and hashes only the yaml: a
    relative `-r` would find nothing, and an edited pin in a .txt would reuse a stale env."""
    conda = yaml.safe_load((REPO / "envs" / f"{name}.yaml").read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert pip == requirement_lines(name) and not any(line.startswith("-") for line in pip)
    assert "python=3.11" in conda["dependencies"]


def test_envs_command_notices_a_stale_conda_file(tmp_path, monkeypatch):
    for path in (REPO / "envs").glob("*.txt"):
        (tmp_path / path.name).write_text(path.read_text())
        (tmp_path / path.with_suffix(".yaml").name).write_text((REPO / "envs" / path.with_suffix(".yaml").name)
                                                               .read_text() if path.stem != "base" else "")
    monkeypatch.setattr(environments, "ENVS_DIR", tmp_path)
    assert environments.conda_yaml("transformers4") == (tmp_path / "transformers4.yaml").read_text()
    (tmp_path / "transformers4.txt").write_text((tmp_path / "transformers4.txt").read_text()
                                                .replace("timm==1.0.31", "timm==1.0.30"))
    assert "timm==1.0.30" in environments.conda_yaml("transformers4")
    assert environments.conda_yaml("transformers4") != (tmp_path / "transformers4.yaml").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_lock_file_agrees_with_the_pins(name):
    """envs/locks/<name>.txt is the full set a resolution gave (`make lock` refreshes it)."""
    from packaging.requirements import Requirement

    locked = environments.locked_versions(name)
    for line in requirement_lines(name):
        req = Requirement(line)
        assert req.specifier.contains(locked[environments.canonical(req.name)], prereleases=True), line


def test_the_running_interpreter_is_the_default_environment():
    assert unmet("default") == []
    assert any(p.startswith("transformers 5.12.1 does not satisfy ==4.57.6") for p in unmet("transformers4"))


def test_a_job_in_the_wrong_environment_stops_with_one_line(tmp_path):
    spec = {"model_path": "m", "model_type": "llava1_5_hf", "template": "llava1_5_hf", "source": {"tiny": "x"},
            "env": {}, "load": {}, "environment": "transformers4", "gpus": 0, "settings": {}}
    run = {"options": {}, "cache_dir": str(tmp_path), "threads": 1}
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS), "SARCHAT_REEXEC": "1"}  # as if the env were not built
    result = subprocess.run([sys.executable, "-m", "sarchat_bench", "train", "--model", "internvl2.5-1b", "--spec",
                             json.dumps(spec), "--run", json.dumps(run), "--dataset", "d", "--work-dir", tmp_path,
                             "--sentinel", tmp_path / "a.json"], env=env, capture_output=True, text=True)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    line = result.stderr.strip()
    assert line.startswith("error: model 'internvl2.5-1b' needs environment 'transformers4' (envs/transformers4.txt)")
    assert "transformers 5.12.1 does not satisfy ==4.57.6" in line
    assert "make env ENV=transformers4" in line and "--software-deployment-method conda" in line


def test_unknown_environment_is_a_clear_error():
    with pytest.raises(EnvironmentMismatch,
                       match="no environment 'nope'.*known: default, lmms_eval, transformers4, vllm"):
        requirement_lines("nope")


def test_a_model_job_reexecutes_in_its_environment(tmp_path):
    """From the default interpreter, a job of a transformers-4 model runs in .venvs/transformers4."""
    if not interpreter("transformers4").is_file():
        pytest.skip("the transformers4 environment is not built: `make env ENV=transformers4` (make test does)")
    from sarchat_bench.dataset.demo_data import generate

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"messages": [{"role": "user", "content": "How many ships?"},
                                               {"role": "assistant", "content": "There are 2 ships."}]}) + "\n")
    generate(tmp_path / "demo", seed=0, images_per_split={"train": 1})
    result = run_cli("tiny-model", "--architecture", "llava1_5_hf", "--environment", "transformers4", "--out",
                     tmp_path / "tiny", "--corpus", corpus)
    assert result.returncode == 0, result.stderr
    assert "runs in environment transformers4" in result.stderr and "transformers 4.57.6" in result.stderr
    assert json.loads((tmp_path / "tiny" / "config.json").read_text())["transformers_version"] == "4.57.6"


def make_n(*args) -> str:
    """What `make` would run (`make -n -B`: every step, none run), one command a line."""
    out = subprocess.run(["make", "-n", "-B", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return out.replace("\\\n", " ")


def test_cuda_12_build_of_torch_is_one_variable():
    """`make setup TORCH_CUDA=cu128` installs torch and torchvision from PyTorch's CUDA 12 index,
    and everything else as locked, the lock's CUDA 13 libraries left out of the constraints.
    Rendered with `make -n`: that index is not reachable from the test machines."""
    out = make_n("setup", "TORCH_CUDA=cu128")
    torch = next(line for line in requirement_lines("default") if line.startswith("torch=="))
    vision = next(line for line in requirement_lines("default") if line.startswith("torchvision=="))
    assert (f"--index-url https://download.pytorch.org/whl/cu128 {torch}+cu128 {vision}+cu128"
            in " ".join(out.split()))
    assert "grep -vE '^(nvidia-|cuda-)' envs/locks/default.txt > .venv/locked-default.txt" in out
    assert "pip install --isolated -r envs/default.txt -c .venv/locked-default.txt" in out
    assert ".installed-" in out and "cu128" in out.split(".installed-")[-1].split()[0]
    plain = make_n("setup", "TORCH_CUDA=")
    assert "download.pytorch.org" not in plain and "grep -vE '^$' envs/locks/default.txt > .venv/locked-default.txt" \
        in plain


def test_setup_and_env_install_the_locked_versions():
    """`make setup` and `make env` install envs/<name>.txt constrained by envs/locks/<name>.txt (all
    of it), and a changed lock reinstalls (its checksum is in the stamp): `make lock` is the only
    way the installed versions move."""
    setup = make_n("setup")
    commands = [line.strip() for line in setup.splitlines()]
    assert "grep -vE '^$' envs/locks/default.txt > .venv/locked-default.txt" in commands
    (install,) = [c for c in commands if " -r envs/default.txt" in c]
    assert install.endswith("pip install --isolated -r envs/default.txt -c .venv/locked-default.txt")
    checksum = subprocess.run("cat envs/default.txt envs/base.txt envs/locks/default.txt | cksum", shell=True,
                              cwd=REPO, capture_output=True, text=True, check=True).stdout.split()[0]
    assert f"touch .venv/.installed-{checksum}" in setup
    env = make_n("env", "ENV=transformers4")
    assert "grep -vE '^$' envs/locks/transformers4.txt > .venv/locked-transformers4.txt" in env
    assert "sarchat_bench envs --build transformers4 --constraints .venv/locked-transformers4.txt" in env
    assert environments.install_arguments("vllm") == ["-r", str(REPO / "envs" / "vllm.txt"), "-c",
                                                      str(REPO / "envs" / "locks" / "vllm.txt")]


def test_the_running_environment_is_the_locked_one():
    """The default environment (`.venv`, as `make setup` installed it) holds the lock's versions
    and nothing else (pip apart): the lock is complete, and every version in it was on the
    registry when `make setup` installed it. A venv installed before the lock was used, or
    changed by hand, fails here; `make setup` reinstalls it from the lock."""
    from importlib import metadata

    installed = {environments.canonical(d.metadata["Name"]) for d in metadata.distributions()}
    unlocked = sorted(installed - environments.locked_versions("default").keys() - {"pip"})
    assert not unlocked, f"installed in {sys.prefix} but not in envs/locks/default.txt: {unlocked}"
    drifted = []
    for package, version in environments.locked_versions("default").items():
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            drifted.append(f"{package} {version} not installed")
            continue
        if installed != version:
            drifted.append(f"{package} {installed} (lock {version})")
    assert not drifted, f"{sys.prefix} is not envs/locks/default.txt; `make setup` reinstalls it: {drifted}"


@pytest.mark.resolve
@pytest.mark.parametrize("name", [n for n in NAMES if n != "default"])  # default: the test above
def test_environment_resolves_against_the_registry(name, tmp_path):
    """A real resolution (pip's dry run against PyPI) of every environment as `make setup` and
    `make env` install it, its requirements constrained by its lock: the lock is complete (no
    package outside it) and every locked version is still on the registry."""
    report = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--ignore-installed",
                             "--quiet", "--report", str(report), *environments.install_arguments(name)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert environments.resolved_versions(report) == environments.locked_versions(name)


def test_flash_attn_is_compiled_into_the_default_environment_without_build_isolation():
    """`make flash-attn` (GPU nodes): build tools first, then envs/gpu/flash-attn.txt against the
    installed torch; envs/gpu/ is not an environment of its own."""
    out = subprocess.run(["make", "-n", "flash-attn", "-B"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert "--no-build-isolation -r envs/gpu/flash-attn.txt" in out and "install --isolated wheel ninja" in out
    assert "flash-attn" not in NAMES and "flash-attn==" in (REPO / "envs" / "gpu" / "flash-attn.txt").read_text()


@pytest.mark.resolve
def test_flash_attn_resolves_against_the_default_environment(tmp_path):
    """pip's dry run of envs/gpu/flash-attn.txt as `make flash-attn` runs it (no build isolation),
    in a throwaway layer over the running default environment, with the CUDA build skipped: its
    metadata builds against the installed torch, and it needs nothing that environment lacks.
    The compile itself needs a GPU node's CUDA toolkit."""
    import site
    import venv

    layer = tmp_path / "layer"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(layer)
    (site_dir,) = (layer / "lib").glob("python3.*/site-packages")
    (site_dir / "_default_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = str(layer / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--isolated", "--quiet", "wheel"], check=True, timeout=600)
    report = tmp_path / "report.json"
    result = subprocess.run([python, "-m", "pip", "install", "--isolated", "--dry-run", "--no-build-isolation",
                             "--quiet", "--report", str(report), "-r", str(REPO / "envs" / "gpu" / "flash-attn.txt")],
                            capture_output=True, text=True, timeout=900,
                            env={**os.environ, "FLASH_ATTENTION_SKIP_CUDA_BUILD": "TRUE"})
    assert result.returncode == 0, result.stderr[-3000:]
    resolved = environments.resolved_versions(report)
    pinned = (REPO / "envs" / "gpu" / "flash-attn.txt").read_text().split("flash-attn==")[1].split()[0]
    assert resolved["flash-attn"] == pinned
    assert not {"torch", "torchvision", "transformers"} & resolved.keys()  # the environment's own, untouched
