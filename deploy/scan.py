"""The template's security scan, offline: `python -m deploy.scan` (what `make scan` runs).

checkov runs from .venv-scan, a venv that holds only requirements-scan.txt, because checkov pins
its own boto3. Findings that are accepted are skipped inline in cloudformation.yaml
(`Metadata: checkov: skip:`), each with its reason, so the scan stays meaningful.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCAN_VENV = ROOT / ".venv-scan"
REQUIREMENTS = ROOT / "requirements-scan.txt"
TEMPLATE = ROOT / "cloudformation.yaml"


def ensure_tool_venv(venv, requirements, executable):
    """Create or refresh a tool's own venv from its requirements file (rebuilt when the file changes);
    returns the path of the tool's executable. Used for checkov here and pip-audit (deploy/audit.py)."""
    wanted = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / ".installed-stamp"
    if not (stamp.exists() and stamp.read_text() == wanted):
        if venv.exists():
            shutil.rmtree(venv)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(requirements)], check=True)
        stamp.write_text(wanted)
    return venv / "bin" / executable


def ensure_scan_venv(venv=SCAN_VENV):
    """Create or refresh .venv-scan from requirements-scan.txt; returns the checkov executable."""
    return ensure_tool_venv(venv, REQUIREMENTS, "checkov")


def scan(template=TEMPLATE):
    """Run checkov on the template, offline; returns its JSON report (results and summary)."""
    checkov = ensure_scan_venv()
    # --skip-download: no guideline look-up at Prisma Cloud; nothing is uploaded without an API key.
    result = subprocess.run(
        [str(checkov), "--file", str(template), "--framework", "cloudformation", "--output", "json",
         "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    # checkov exits 1 when a check fails; anything else (or no JSON) is a broken run.
    if result.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited {result.returncode}:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout)


def write_results(report, results_dir=None):
    """results/scan.json: the counts the README and RELIABILITY.md quote, from this run's report."""
    import figures  # the project's results files; imported here so the scan itself needs nothing more

    summary = report["summary"]
    return figures.write("scan", "make scan", {
        f"checkov.{kind}": figures.figure(summary[kind], basis="counted") for kind in ("passed", "skipped", "failed")
    }, results_dir)


def main():
    report = scan()
    summary = report["summary"]
    for check in report["results"]["failed_checks"]:
        print(f"FAILED {check['check_id']} {check['resource']}: {check['check_name']}")
    print(f"checkov: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped")
    print(f"wrote {write_results(report).relative_to(ROOT)}")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
