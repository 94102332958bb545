"""Build every deploy artifact without an AWS account (it installs from PyPI): `python -m deploy.package` (what `make package` runs).

- build/redirect.zip: redirect_fn/ only; the Lambda runtime supplies botocore.
- build/aggregator.zip: aggregator/ plus crawlerdetect, installed for the Lambda platform.
- build/code-keys.txt and build/s3/code/<name>-<hash>.zip: the two zips under content-hashed
  S3 keys, so `aws s3 sync build/s3 s3://BUCKET/` uploads them and a changed zip gets a new
  key, which is what makes CloudFormation update the function.
- build/admin.zip: `zappa package prod`, run from .venv-package, a venv that holds only
  requirements.txt and Zappa (Zappa packs whatever venv VIRTUAL_ENV names).

The zips are reproducible: sorted entries, fixed timestamps, so the same code gives the same key.
"""
import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "build"
PACKAGE_VENV = ROOT / ".venv-package"
ZAPPA_SETTINGS = ROOT / "zappa_settings.json"
ZAPPA_REQUIREMENT = "zappa==0.63.0"
ADMIN_STAGE = "prod"

# The Lambda functions of cloudformation.yaml run on this; crawlerdetect is installed for it.
LAMBDA_PYTHON = "3.13"
LAMBDA_PLATFORM = "manylinux2014_aarch64"  # the template's functions are arm64

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", "bin"}


def build_redirect(out_dir=BUILD_DIR):
    """build/redirect.zip: the redirect package and nothing else."""
    return _write_zip(out_dir / "redirect.zip", _package_files(ROOT / "redirect_fn", "redirect_fn"))


def build_aggregator(out_dir=BUILD_DIR):
    """build/aggregator.zip: the aggregator package with crawlerdetect beside it, for Lambda's platform."""
    with tempfile.TemporaryDirectory(prefix="aggregator-deps-") as deps:
        # Wheels only, for the function's architecture and Python: what runs here is irrelevant.
        _run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--no-compile", "--target", deps,
                "--platform", LAMBDA_PLATFORM, "--implementation", "cp",
                "--python-version", LAMBDA_PYTHON, "--only-binary=:all:",
                "-r", str(ROOT / "requirements-aggregator.txt"),
            ]
        )
        files = _package_files(ROOT / "aggregator", "aggregator")
        files += _tree_files(Path(deps))
        return _write_zip(out_dir / "aggregator.zip", files)


def publish_code_keys(zips, out_dir=BUILD_DIR):
    """Copy each zip to build/s3/code/<name>-<hash>.zip and write build/code-keys.txt for the stack's parameters."""
    parameters = {"redirect": "RedirectCodeKey", "aggregator": "AggregatorCodeKey"}
    staging = out_dir / "s3" / "code"
    if staging.exists():
        shutil.rmtree(staging)  # only the current keys, so `aws s3 sync` uploads nothing stale
    staging.mkdir(parents=True)
    overrides = []
    for path in zips:
        name = path.stem
        key = f"code/{name}-{_digest(path)[:16]}.zip"
        shutil.copyfile(path, out_dir / "s3" / key)
        overrides.append(f"{parameters[name]}={key}")
    keys_file = out_dir / "code-keys.txt"
    keys_file.write_text(" ".join(overrides) + "\n")
    return keys_file


def runtime_python_version(settings_path=ZAPPA_SETTINGS, stage=ADMIN_STAGE):
    """The Python version ("3.13") of the admin stage's Lambda runtime, from zappa_settings.json."""
    settings = json.loads(settings_path.read_text())
    config = dict(settings[stage])
    while "extends" in config:
        parent = settings[config.pop("extends")]
        config = {**parent, **config}
    return config["runtime"].removeprefix("python")


def find_python(version):
    """An interpreter of exactly this version: $PACKAGE_PYTHON, pythonX.Y on PATH, or a pyenv install."""
    candidates = [os.environ.get("PACKAGE_PYTHON"), shutil.which(f"python{version}")]
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", f"{version}*", "bin", f"python{version}")))
    for candidate in filter(None, candidates):
        # A pyenv shim exists on PATH even when it cannot run this version, so ask the interpreter.
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    raise SystemExit(
        f"Python {version} is needed to build the admin package (its Lambda runtime is python{version}); "
        f"install it or point PACKAGE_PYTHON at it."
    )


def ensure_package_venv(venv=PACKAGE_VENV):
    """Create or refresh the build venv: requirements.txt and Zappa only, on the runtime's Python."""
    version = runtime_python_version()
    wanted = _digest_text(
        version + ZAPPA_REQUIREMENT + (ROOT / "requirements.txt").read_text()
    )
    stamp = venv / ".installed-stamp"
    if stamp.exists() and stamp.read_text() == wanted:
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    _run([find_python(version), "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run(pip + ["-r", str(ROOT / "requirements.txt"), ZAPPA_REQUIREMENT])
    stamp.write_text(wanted)
    return venv


def build_admin(output, venv=PACKAGE_VENV, stage=ADMIN_STAGE):
    """`zappa package STAGE -o OUTPUT` from the build venv; returns the zip's path."""
    venv = ensure_package_venv(venv)
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    output = Path(output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    _run([str(venv / "bin" / "zappa"), "package", stage, "-o", str(output)], env=env, cwd=ROOT)
    return output


def build_all(out_dir=BUILD_DIR):
    """Every artifact; returns {name: path} and prints sizes and times."""
    out_dir.mkdir(parents=True, exist_ok=True)
    built = {}
    for name, build in (("redirect", build_redirect), ("aggregator", build_aggregator)):
        started = time.perf_counter()
        built[name] = build(out_dir)
        _report(built[name], started)
    built["code-keys"] = publish_code_keys([built["redirect"], built["aggregator"]], out_dir)
    print(f"{built['code-keys'].relative_to(ROOT)}: {built['code-keys'].read_text().strip()}")
    started = time.perf_counter()
    built["admin"] = build_admin(out_dir / "admin.zip")
    _report(built["admin"], started)
    return built


def _size_text(size):
    """KiB below a MiB, else MiB with one decimal, as the README's table shows sizes."""
    return f"{size / 1024:,.0f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:,.1f} MiB"


def write_results(built, seconds, results_dir=None):
    """results/package.json: each zip's size, packed and unpacked, and how long this build took."""
    import figures  # the project's results files

    found = {}
    for name in ("redirect", "aggregator", "admin"):
        path = built[name]
        with zipfile.ZipFile(path) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
        found[f"{name}_zip.size"] = figures.figure(path.stat().st_size, _size_text(path.stat().st_size))
        found[f"{name}_zip.unpacked"] = figures.figure(unpacked, _size_text(unpacked))
    found["build.seconds"] = figures.figure(round(seconds), f"{seconds:.0f} s")
    return figures.write("package", "make package", found, results_dir)


def _package_files(source, arcname):
    """(path, name in zip) for the .py files of one package."""
    return [(path, f"{arcname}/{path.relative_to(source).as_posix()}") for path in sorted(source.rglob("*.py"))
            if not _SKIP_DIRS.intersection(path.relative_to(source).parts)]


def _tree_files(root):
    return [(path, path.relative_to(root).as_posix()) for path in sorted(root.rglob("*"))
            if path.is_file() and not _SKIP_DIRS.intersection(path.relative_to(root).parts)]


def _write_zip(target, files):
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path, name in sorted(files, key=lambda item: item[1]):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.create_system = 3
            info.external_attr = 0o644 << 16  # readable by Lambda's sandbox user
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    tmp.replace(target)
    return target


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest_text(text):
    return hashlib.sha256(text.encode()).hexdigest()


def _run(command, **kwargs):
    subprocess.run(command, check=True, **kwargs)


def _report(path, started):
    size = path.stat().st_size
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
          f"{size / 1024:,.0f} KiB in {time.perf_counter() - started:.1f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUILD_DIR, help="output folder (default: build/)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    built = build_all(args.out.resolve())
    # Only the default build is the one the README describes.
    if args.out.resolve() == BUILD_DIR:
        print(f"wrote {write_results(built, time.perf_counter() - started).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
