"""Build the Lambda layer: by `cdk synth` itself (CDK local bundling), or `python -m infra.package`.

Produces a layer folder (`<asset>/python/`, or `build/layer/python/` from the command line)
holding

* the runtime dependencies of durable-graph (the core dependencies plus the `aws` and `api`
  extras: pydantic, cryptography, powertools, ...), installed with
  `pip install --target ... --platform manylinux..._aarch64 --only-binary=:all:` so the binary
  wheels match Lambda's arm64 Python 3.12 runtime whatever machine builds the layer;
* `durable_graph` itself, copied from `shared/`;
* `examples/`, because the default graph (`examples.email_approval:graph`) is imported from it.

boto3, botocore and s3transfer are left out, and removed again when a dependency (aws-xray-sdk)
pulls them in: the Lambda runtime provides a matching set, and a layer copy of botocore would
shadow the runtime's and pair it with a boto3 it was not released with.

Synthesis builds the layer through `LayerBundler`, CDK's local-bundling hook, so `cdk synth`
and `cdk deploy` need no separate step and cannot ship a layer without its `python/` folder: a
failed pip install fails the synthesis with pip's error. The asset is keyed by `layer_hash`
(the layer's inputs: pyproject.toml, `shared/durable_graph`, `examples/` and this file), so CDK
rebuilds it only when one of them changed. Tests synthesise with bundling turned off
(`aws:cdk:bundling-stacks` = []) and exercise the bundler with a stand-in for pip.

Example:
    >>> from pathlib import Path
    >>> command = pip_command(["pydantic>=2"], Path("build/layer/python"), python="python3")
    >>> command[:4]
    ['python3', '-m', 'pip', 'install']
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import ILocalBundling

__all__ = [
    "LayerBuildFailed",
    "LayerBundler",
    "build_layer",
    "layer_hash",
    "main",
    "pip_command",
    "prune_runtime_packages",
    "runtime_requirements",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_PYTHON = "3.12"
# Lambda's python3.12 runtime runs on Amazon Linux 2023 (glibc 2.34); accept every manylinux
# tag up to that, since packages publish aarch64 wheels under different tags.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")
EXTRAS = ("aws", "api")
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore", "s3transfer"})
PROJECT = "durable-graph"
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".mypy_cache")

Runner = Callable[[Sequence[str]], object]


def _canonical(requirement: str) -> str:
    """The distribution name of a requirement string, normalised as in PEP 503."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        msg = f"not a requirement: {requirement!r}"
        raise ValueError(msg)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def runtime_requirements(pyproject: Path, extras: Sequence[str] = EXTRAS) -> list[str]:
    """The requirements the layer must install, read from `pyproject.toml`.

    Args:
        pyproject: path to the project's `pyproject.toml`.
        extras: optional-dependency groups the functions need.

    Returns:
        Requirement strings in file order, without duplicates, without what the Lambda runtime
        already provides and without references to the project itself.
    """
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    candidates = [*project.get("dependencies", [])]
    for extra in extras:
        candidates.extend(optional.get(extra, []))
    chosen: dict[str, str] = {}
    for requirement in candidates:
        name = _canonical(requirement)
        if name in PROVIDED_BY_RUNTIME or name == PROJECT:
            continue
        chosen.setdefault(name, requirement)
    return list(chosen.values())


def pip_command(
    requirements: Sequence[str], target: Path, *, python: str = sys.executable
) -> list[str]:
    """The pip invocation that installs `requirements` for Lambda arm64 into `target`."""
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    return [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--target",
        str(target),
        *platforms,
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON,
        "--only-binary=:all:",
        "--upgrade",
        *requirements,
    ]


def prune_runtime_packages(target: Path) -> None:
    """Remove packages the Lambda runtime provides (see the module docstring) and pip's `bin/`."""
    for name in sorted(PROVIDED_BY_RUNTIME):
        module = name.replace("-", "_")
        for path in (target / module, *target.glob(f"{module}-*.dist-info")):
            if path.is_dir():
                shutil.rmtree(path)
    if (target / "bin").is_dir():
        shutil.rmtree(target / "bin")


def _run(command: Sequence[str]) -> object:
    return subprocess.run(command, check=True)


def build_layer(root: Path = REPO_ROOT, out: Path | None = None, *, run: Runner = _run) -> Path:
    """Build the layer folder from scratch and return it.

    Args:
        root: repository root (holds `pyproject.toml`, `shared/` and `examples/`).
        out: layer folder to create; defaults to `<root>/build/layer`. Its previous content is
            removed first, so a dependency dropped from pyproject.toml leaves the layer too.
        run: executes the pip command (replaceable in tests).
    """
    out = out or root / "build" / "layer"
    if out.exists():
        shutil.rmtree(out)
    target = out / "python"
    target.mkdir(parents=True)
    run(pip_command(runtime_requirements(root / "pyproject.toml"), target))
    prune_runtime_packages(target)
    shutil.copytree(root / "shared" / "durable_graph", target / "durable_graph", ignore=COPY_IGNORE)
    examples = root / "examples"
    if examples.is_dir():
        shutil.copytree(examples, target / "examples", ignore=COPY_IGNORE)
    return out


def layer_hash(root: Path = REPO_ROOT) -> str:
    """A digest of everything the layer is built from: its asset key, so CDK rebuilds the layer
    exactly when the dependencies, the library, the examples or this builder changed."""
    digest = hashlib.sha256()
    sources = [root / "pyproject.toml", Path(__file__)]
    for folder in (root / "shared" / "durable_graph", root / "examples"):
        sources.extend(
            p
            for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        )
    for path in sources:
        name = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        digest.update(f"{name.as_posix()}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class LayerBuildFailed(RuntimeError):
    """The layer could not be built; synthesis stops here rather than ship a broken layer."""


@jsii.implements(ILocalBundling)
class LayerBundler:
    """CDK's local-bundling hook for the layer asset: `build_layer` into CDK's output folder.

    Runs on the machine that synthesises (no Docker): pip downloads the arm64 wheels for
    Lambda whatever this machine is. It never declines (returning False would make CDK fall
    back to Docker); a failure raises `LayerBuildFailed` with the cause.
    """

    def __init__(self, root: Path = REPO_ROOT, *, run: Runner = _run) -> None:
        self.root = root
        self.run = run

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        """Build the layer into `output_dir` (CDK's `options` are for Docker: unused)."""
        try:
            build_layer(self.root, Path(output_dir), run=self.run)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise LayerBuildFailed(
                f"building the Lambda layer into {output_dir} failed: {exc} (the layer needs "
                "pip and access to the package index; `python -m infra.package` shows the "
                "same error)"
            ) from exc
        if not (Path(output_dir) / "python" / "durable_graph").is_dir():
            raise LayerBuildFailed(f"the layer built into {output_dir} has no python/ folder")
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `python -m infra.package [--out DIR] [--print-command]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root")
    parser.add_argument("--out", type=Path, default=None, help="layer folder (build/layer)")
    parser.add_argument(
        "--print-command", action="store_true", help="print the pip command and exit"
    )
    args = parser.parse_args(argv)
    root: Path = args.root
    if args.print_command:
        requirements = runtime_requirements(root / "pyproject.toml")
        target = (args.out or root / "build" / "layer") / "python"
        print(" ".join(pip_command(requirements, target)))
        return 0
    print(build_layer(root, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
