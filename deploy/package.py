"""Build every deploy artifact without an AWS account (it installs from PyPI): `python -m deploy.package` (what `make package` runs).

- build/redirect.zip: redirect_fn/ only; the Lambda runtime supplies botocore.
- build/aggregator.zip: aggregator/ and uniques/ (the visitor sketch, shared with the admin), plus
  requirements-aggregator.txt installed for the Lambda platform.
- build/code-keys.txt and build/s3/code/<name>-<hash>.zip: the two zips under content-hashed
  S3 keys, so `aws s3 sync build/s3 s3://BUCKET/` uploads them and a changed zip gets a new
  key, which is what makes CloudFormation update the function.
- build/admin.zip: `zappa package prod`, run from .venv-package, a venv that holds only
  requirements.txt and Zappa (Zappa packs whatever venv VIRTUAL_ENV names). That venv is built for
  the laptop, so every distribution whose wheel does not fit Lambda (its `runtime` and `architecture`
  in zappa_settings.json) is then swapped for the manylinux wheel pip picks for Lambda, and every
  compiled file in the zip is checked: a build that would ship a foreign binary stops (SystemExit).
  `python -m deploy.package --admin-only --settings FILE --stage STAGE` builds only that zip, from
  another settings file, for `zappa deploy STAGE -z` / `zappa update STAGE -z`.

The zips are reproducible: sorted entries, fixed timestamps, so the same code gives the same key.
"""
import argparse
import csv
import dataclasses
import functools
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from deploy.stage import StageError, resolved_zappa_stage

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
    """build/aggregator.zip: the aggregator and uniques packages with their requirements beside them, for Lambda's platform."""
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
        files += _package_files(ROOT / "uniques", "uniques")
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


def stage_config(settings_path=ZAPPA_SETTINGS, stage=ADMIN_STAGE):
    """One stage of a Zappa settings file, with what it `extends` filled in."""
    try:
        return resolved_zappa_stage(json.loads(Path(settings_path).read_text()), stage, source=str(settings_path))
    except StageError as err:
        raise SystemExit(str(err)) from None


def runtime_python_version(settings_path=ZAPPA_SETTINGS, stage=ADMIN_STAGE):
    """The Python version ("3.13") of the admin stage's Lambda runtime, from zappa_settings.json."""
    return stage_config(settings_path, stage)["runtime"].removeprefix("python")


# Lambda's python3.12 and later run on Amazon Linux 2023, whose glibc is 2.34 (AWS Lambda's runtimes
# page names the OS of each runtime): a manylinux_2_35 wheel would not load there.
_RUNTIME_GLIBC = {"python3.12": (2, 34), "python3.13": (2, 34), "python3.14": (2, 34)}
# Lambda's name of an architecture -> the machine in wheel tags and extension suffixes, and its ELF e_machine.
_MACHINES = {"x86_64": ("x86_64", 62), "arm64": ("aarch64", 183)}
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


@dataclasses.dataclass(frozen=True)
class LambdaTarget:
    """The platform a Zappa stage runs on: `runtime` and `architecture` of its settings."""

    python: str  # "3.13"
    machine: str  # "x86_64" or "aarch64"
    glibc: tuple  # the newest manylinux_X_Y that loads there

    @property
    def cp_tag(self):
        return "cp" + self.python.replace(".", "")

    def pip_platforms(self):
        """Every manylinux platform tag that loads on the target, newest first (pip does not expand PEP 600 tags)."""
        major, newest = self.glibc
        return [f"manylinux_{major}_{minor}_{self.machine}" for minor in range(newest, 4, -1)] + [
            f"{legacy}_{self.machine}" for legacy in _LEGACY_MANYLINUX
        ]


def lambda_target(settings_path=ZAPPA_SETTINGS, stage=ADMIN_STAGE):
    """The LambdaTarget of one stage; SystemExit for a runtime or architecture this build does not know."""
    config = stage_config(settings_path, stage)
    runtime, architecture = config.get("runtime", ""), config.get("architecture", "x86_64")  # Zappa's default
    if runtime not in _RUNTIME_GLIBC:
        raise SystemExit(f"{settings_path}: runtime {runtime!r} of stage {stage!r} is not one this build knows "
                         f"({', '.join(sorted(_RUNTIME_GLIBC))})")
    if architecture not in _MACHINES:
        raise SystemExit(f"{settings_path}: architecture {architecture!r} of stage {stage!r} is not one of "
                         f"{', '.join(sorted(_MACHINES))}")
    return LambdaTarget(runtime.removeprefix("python"), _MACHINES[architecture][0], _RUNTIME_GLIBC[runtime])


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


def ensure_package_venv(venv=PACKAGE_VENV, version=None):
    """Create or refresh the build venv: requirements.txt and Zappa only, on the runtime's Python."""
    version = version or runtime_python_version()
    wanted = _digest_text(
        version + ZAPPA_REQUIREMENT + (ROOT / "requirements.txt").read_text()
    )
    stamp = venv / ".installed-stamp"
    if stamp.exists() and stamp.read_text() == wanted:
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    _run([find_python(version), "-m", "venv", str(venv)])
    pip = [str(venv_bin(venv, "python")), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run(pip + ["-r", str(ROOT / "requirements.txt"), ZAPPA_REQUIREMENT])
    stamp.write_text(wanted)
    return venv


def build_admin(output, venv=PACKAGE_VENV, stage=ADMIN_STAGE, settings_file=ZAPPA_SETTINGS):
    """`zappa package STAGE -s SETTINGS_FILE`, made fit for the stage's Lambda platform and checked; returns the zip."""
    target = lambda_target(settings_file, stage)
    venv = ensure_package_venv(venv, target.python)
    output = Path(output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="admin-build-") as scratch:
        raw = zappa_package(Path(scratch) / "zappa.zip", venv, stage, settings_file)
        swapped = swap_foreign_distributions(raw, site_packages(venv, target.python), target, output,
                                             download=functools.partial(download_wheel, venv=venv))
    for name in swapped:
        print(f"admin.zip: {name} replaced by its wheel for Lambda (manylinux {target.machine}, {target.cp_tag})")
    try:
        verify_lambda_zip(output, target)
    except SystemExit:
        output.unlink()  # never leave a zip behind that would break on Lambda
        raise
    return output


def zappa_package(output, venv, stage=ADMIN_STAGE, settings_file=ZAPPA_SETTINGS):
    """Zappa's own package of the venv, as the build machine has it (binaries for this machine)."""
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv_bin(venv, 'zappa').parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    _run([str(venv_bin(venv, "zappa")), "package", stage, "-s", str(Path(settings_file).resolve()), "-o", str(output)],
         env=env, cwd=ROOT)
    return output


def venv_bin(venv, name):
    """An executable of the venv: bin/NAME, or Scripts/NAME.exe on Windows."""
    return Path(venv) / ("Scripts" if os.name == "nt" else "bin") / (f"{name}.exe" if os.name == "nt" else name)


def site_packages(venv, python):
    """The venv's site-packages folder (lib/pythonX.Y/site-packages; Lib/site-packages on Windows)."""
    for folder in (Path(venv) / "lib" / f"python{python}" / "site-packages", Path(venv) / "Lib" / "site-packages"):
        if folder.is_dir():
            return folder
    raise SystemExit(f"{venv} has no site-packages for Python {python}")


# ------------------------------------------------------------------ wheels for Lambda's platform


def wheel_tag_fits(tag, target):
    """Whether one wheel tag (python-abi-platform, as in WHEEL's `Tag:`) loads on the target."""
    parts = tag.split("-")
    if len(parts) != 3:
        return False  # not a tag: nothing is known about where it loads
    python, abi, platform = parts
    if platform == "any":
        return abi == "none"
    if abi == "none":  # no CPython ABI (a bundled executable or a ctypes library): only the platform matters
        python_ok = python in ("py3", f"py{target.cp_tag[2:]}", target.cp_tag)
    elif abi == target.cp_tag:
        python_ok = python == target.cp_tag
    elif abi == "abi3":  # the stable ABI: built for cp3N, loads on every CPython from 3.N on
        found = re.fullmatch(r"cp3(\d+)", python)
        python_ok = bool(found) and int(found.group(1)) <= int(target.python.split(".")[1])
    else:
        python_ok = False
    return python_ok and _manylinux_fits(platform, target)


def _manylinux_fits(platform, target):
    for legacy, glibc in _LEGACY_MANYLINUX.items():
        if platform == f"{legacy}_{target.machine}":
            return glibc <= target.glibc
    found = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    return bool(found) and found.group(3) == target.machine and (int(found[1]), int(found[2])) <= target.glibc


@dataclasses.dataclass
class Installed:
    """One distribution of the build venv, from its .dist-info folder."""

    name: str
    version: str
    dist_info: str  # the folder's name, as it is in the zip too
    tags: list
    files: list  # RECORD's paths, relative to site-packages


def installed_distributions(site):
    """Every distribution in a site-packages folder, with its wheel tags and its files (from RECORD)."""
    found = []
    for dist_info in sorted(Path(site).glob("*.dist-info")):
        metadata = _headers((dist_info / "METADATA").read_text(encoding="utf-8", errors="replace"))
        wheel = dist_info / "WHEEL"
        tags = _headers(wheel.read_text(), multi=True).get("Tag", []) if wheel.exists() else []
        with (dist_info / "RECORD").open(newline="", encoding="utf-8") as record:
            files = [row[0] for row in csv.reader(record) if row]
        found.append(Installed(metadata["Name"], metadata["Version"], dist_info.name, tags, files))
    return found


def download_wheel(name, version, target, dest, venv=PACKAGE_VENV):
    """pip's choice of wheel for the target (binary only, no dependencies: the venv already resolved them)."""
    command = [str(venv_bin(venv, "python")), "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--no-deps", "--implementation", "cp", "--python-version", target.python,
               "--dest", str(dest)]
    for platform in target.pip_platforms():
        command += ["--platform", platform]
    result = subprocess.run(command + [f"{name}=={version}"], capture_output=True, text=True, check=False)
    wheels = sorted(Path(dest).glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise SystemExit(
            f"{name}=={version} has no wheel for Lambda (manylinux up to glibc {target.glibc[0]}.{target.glibc[1]}, "
            f"{target.machine}, {target.cp_tag}) that pip can download, so the admin package cannot be built "
            f"for Lambda on this machine:\n{result.stderr.strip()[-2000:]}"
        )
    return wheels[0]


def swap_foreign_distributions(zip_path, site, target, output, download=download_wheel):
    """Copy Zappa's zip to OUTPUT with every distribution whose wheel does not fit the target swapped
    for the target's wheel; returns the names of those swapped. Its files are known from the venv's RECORD."""
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
    foreign = [dist for dist in installed_distributions(site)
               if f"{dist.dist_info}/METADATA" in names and not any(wheel_tag_fits(t, target) for t in dist.tags)]
    removed, added = set(), {}
    with tempfile.TemporaryDirectory(prefix="lambda-wheels-") as wheels:
        for dist in foreign:
            # `../` paths are the venv's scripts (bin/), which Zappa does not pack.
            removed.update(path for path in dist.files if not path.startswith("../"))
            dest = Path(wheels) / dist.dist_info
            dest.mkdir()
            added.update(_wheel_entries(download(dist.name, dist.version, target, dest)))
    tmp = Path(output).with_suffix(".zip.tmp")
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in source.infolist():
            if info.filename not in removed and info.filename not in added:
                zf.writestr(info, source.read(info))
        for name, data in sorted(added.items()):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.create_system = 3
            info.external_attr = 0o755 << 16  # as Zappa writes every other file
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    tmp.replace(output)
    return [dist.name for dist in foreign]


def _wheel_entries(wheel):
    """{name in the zip: bytes} of a wheel, installed as pip would into site-packages (the zip's root)."""
    entries = {}
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.endswith("/"):
                continue
            top, _, rest = name.partition("/")
            if top.endswith(".data"):
                scheme, _, rest = rest.partition("/")
                if scheme not in ("purelib", "platlib"):
                    continue  # scripts, headers, data: nothing a Lambda function imports
                entries[rest] = zf.read(name)
            else:
                entries[name] = zf.read(name)
    return entries


def _headers(text, multi=False):
    """Email-style `Key: value` lines (METADATA, WHEEL) up to the first blank line."""
    found = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep and not line[:1].isspace():
            if multi:
                found.setdefault(key.strip(), []).append(value.strip())
            else:
                found.setdefault(key.strip(), value.strip())
    return found


# ------------------------------------------------------------------ the check


_COMPILED_NAME = re.compile(r"\.(so(\.\d+)*|pyd|dll|dylib)$")
_EXTENSION_TAG = re.compile(r"\.cpython-(?P<version>\d+)(?P<flags>[a-z]*)-(?P<platform>[^./]+)\.so$")
_MACHO_MAGICS = (b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe")
_ELF64_HEADER_BYTES = 64
_ELF_MACHINES = {machine: number for machine, number in _MACHINES.values()}


def compiled_file_problem(name, head, target):
    """Why a file that may be compiled code would not load on the target, or None when it would (or is no binary)."""
    named = bool(_COMPILED_NAME.search(name))
    if head.startswith(b"\x7fELF"):
        if len(head) < _ELF64_HEADER_BYTES:
            return "a truncated ELF file"
        if head[4:6] != b"\x02\x01":
            return "an ELF file that is not 64-bit little-endian"
        machine = int.from_bytes(head[18:20], "little")
        if machine != _ELF_MACHINES[target.machine]:
            other = {number: m for m, number in _ELF_MACHINES.items()}.get(machine, f"e_machine {machine}")
            return f"built for {other}, not {target.machine}"
        tag = _EXTENSION_TAG.search(name)
        if tag and tag["version"] != target.cp_tag[2:]:
            return f"an extension for CPython {tag['version']}, not {target.cp_tag[2:]} (the runtime's)"
        if tag and (tag["flags"] or tag["platform"] != f"{target.machine}-linux-gnu"):
            return f"an extension for {tag['version']}{tag['flags']}-{tag['platform']}, not {target.machine}-linux-gnu"
        return None
    # 0xcafebabe opens both a universal Mach-O (a handful of architectures follow) and a Java class (its version).
    universal = head.startswith(b"\xca\xfe\xba\xbe") and int.from_bytes(head[4:8], "big") < 45
    if head.startswith(_MACHO_MAGICS) or universal or (named and (name.endswith(".dylib") or "-darwin" in name)):
        return "a macOS (Mach-O) binary"
    if named and (head.startswith(b"MZ") or name.endswith((".pyd", ".dll"))):
        return "a Windows binary"
    return "not an ELF shared object" if named else None


def verify_lambda_zip(zip_path, target):
    """SystemExit naming every compiled file or wheel in the zip that would not load on the target."""
    problems = []
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            if _outside_root(info.filename):
                problems.append(f"{info.filename}: a path outside the package root")
                continue
            if info.filename.endswith(".dist-info/WHEEL"):
                tags = _headers(zf.read(info).decode("utf-8", "replace"), multi=True).get("Tag", [])
                if not any(wheel_tag_fits(tag, target) for tag in tags):
                    problems.append(f"{info.filename}: wheel tags {', '.join(tags) or '(none)'}")
                continue
            with zf.open(info) as member:
                head = member.read(64)
            problem = compiled_file_problem(info.filename, head, target)
            if problem:
                problems.append(f"{info.filename}: {problem}")
    if problems:
        raise SystemExit(
            f"{zip_path} would not run on Lambda (Linux {target.machine}, CPython {target.python}, "
            f"glibc {target.glibc[0]}.{target.glibc[1]}); refusing it:\n  " + "\n  ".join(problems)
        )
    return zip_path


def _outside_root(name):
    """Whether a zip entry's name would unpack outside the folder it is unpacked in (absolute, `..`, `\\`)."""
    return name.startswith("/") or "\\" in name or ".." in name.split("/") or re.match(r"[A-Za-z]:", name) is not None


def compiled_distributions(zip_path):
    """Names of the distributions in a zip whose wheels are platform-specific (compiled), from their WHEEL tags."""
    found = []
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            if name.endswith(".dist-info/WHEEL"):
                tags = _headers(zf.read(name).decode("utf-8", "replace"), multi=True).get("Tag", [])
                if any(not tag.endswith("-any") for tag in tags):
                    metadata = _headers(zf.read(name[:-len("WHEEL")] + "METADATA").decode("utf-8", "replace"))
                    found.append(metadata["Name"])
    return sorted(found, key=str.lower)


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
    compiled = compiled_distributions(built["admin"])
    found["admin_zip.compiled"] = figures.figure(len(compiled), f"{len(compiled)} ({', '.join(compiled)})")
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
    parser.add_argument("--admin-only", action="store_true",
                        help="only OUT/admin.zip, for `zappa deploy STAGE -z` / `zappa update STAGE -z`")
    parser.add_argument("--settings", type=Path, default=ZAPPA_SETTINGS,
                        help="with --admin-only: the Zappa settings file (default: zappa_settings.json)")
    parser.add_argument("--stage", default=ADMIN_STAGE, help=f"with --admin-only: the Zappa stage (default: {ADMIN_STAGE})")
    args = parser.parse_args(argv)
    if args.admin_only:
        path = build_admin(args.out.resolve() / "admin.zip", stage=args.stage, settings_file=args.settings)
        target = lambda_target(args.settings, args.stage)
        print(f"{path}: checked for Lambda (Linux {target.machine}, CPython {target.python})")
        return
    if (args.settings, args.stage) != (ZAPPA_SETTINGS, ADMIN_STAGE):
        parser.error("--settings and --stage go with --admin-only")
    started = time.perf_counter()
    built = build_all(args.out.resolve())
    # Only the default build is the one the README describes.
    if args.out.resolve() == BUILD_DIR:
        print(f"wrote {write_results(built, time.perf_counter() - started).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
