"""The dependency audit: `python -m deploy.audit` (what `make audit` and `.ci/run` run; `make test` checks its logic).

pip-audit, from .venv-audit (requirements-audit.txt only), resolves each deployable's pinned
requirements as pip would install them and asks PyPI's vulnerability data about every resulting
package and version:
- admin: requirements.txt plus Zappa, since the admin zip is packed from a venv holding both;
- aggregator: requirements-aggregator.txt;
- redirect: nothing to resolve. It imports only the standard library and botocore, which the Lambda
  runtime provides (AWS patches it, this project does not pin it; tests/test_redirect.py keeps it so).

An audit that could not check a package fails, naming it: pip-audit itself reports "no known
vulnerabilities" when the service is unreachable or does not know a version, and that must never pass.
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from deploy.package import ZAPPA_REQUIREMENT
from deploy.scan import ensure_tool_venv

ROOT = Path(__file__).resolve().parent.parent
AUDIT_VENV = ROOT / ".venv-audit"
REQUIREMENTS = ROOT / "requirements-audit.txt"
# The deployables and the requirement lines that make each; the redirect has none (see above).
DEPLOYABLES = {
    "admin": [f"-r {ROOT / 'requirements.txt'}", ZAPPA_REQUIREMENT],
    "aggregator": [f"-r {ROOT / 'requirements-aggregator.txt'}"],
}
NOT_AUDITED = {"redirect": "the standard library and the Lambda runtime's botocore only: nothing pinned to audit"}
SERVICE = "pypi"  # PyPI's JSON API (OSV data): the one service a machine that can install packages reaches
TIMEOUT_SECONDS = 600


class AuditUnavailable(Exception):
    """The audit could not check every package: the service was unreachable or did not answer."""


def ensure_audit_venv(venv=AUDIT_VENV):
    """Create or refresh .venv-audit from requirements-audit.txt; returns the pip-audit executable."""
    return ensure_tool_venv(venv, REQUIREMENTS, "pip-audit")


def run_pip_audit(lines):
    """pip-audit over these requirement lines; returns its JSON report, or raises AuditUnavailable."""
    pip_audit = ensure_audit_venv()
    with tempfile.TemporaryDirectory(prefix="audit-") as folder:
        requirements = Path(folder) / "requirements.txt"
        requirements.write_text("\n".join(lines) + "\n")
        result = subprocess.run(
            [str(pip_audit), "--requirement", str(requirements), "--vulnerability-service", SERVICE,
             "--format", "json", "--progress-spinner", "off", "--desc", "off"],
            capture_output=True, text=True, timeout=TIMEOUT_SECONDS, cwd=ROOT,
        )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        # No report at all: pip-audit could not resolve the requirements or reach the service.
        raise AuditUnavailable(
            f"pip-audit exited {result.returncode} without a report (is PyPI reachable?):\n{result.stderr[-3000:]}"
        ) from None
    return report


def findings(report):
    """(package, version, vulnerability id, fixed versions) for every known vulnerability in a report.

    Raises AuditUnavailable when any package went unchecked (pip-audit's "skip_reason"), or none was listed.
    """
    dependencies = report.get("dependencies", [])
    skipped = [f"{d['name']}: {d['skip_reason']}" for d in dependencies if d.get("skip_reason")]
    if skipped or not dependencies:
        raise AuditUnavailable(
            f"the vulnerability service ({SERVICE}: https://pypi.org/pypi/<name>/<version>/json) could not check "
            f"{len(skipped)} of {len(dependencies)} packages, so this audit proves nothing:\n  "
            + "\n  ".join(skipped or ["(no packages in the report)"])
        )
    return [(d["name"], d["version"], v["id"], v.get("fix_versions", []))
            for d in dependencies for v in d.get("vulns", [])]


def audit(name):
    """Audit one deployable: (packages checked, findings); AuditUnavailable when it could not."""
    report = run_pip_audit(DEPLOYABLES[name])
    return len(report["dependencies"]), findings(report)


# Exit codes: a known vulnerability (1) must be fixed; an audit that could not be done (3) is said loudly
# and is never a pass, but it is the vulnerability service's state, not the code's (see .ci/run).
FOUND, NOT_DONE = 1, 3


def main():
    found_any = not_done = False
    for name in DEPLOYABLES:
        try:
            checked, found = audit(name)
        except AuditUnavailable as err:
            print(f"{name}: NOT AUDITED: {err}")
            not_done = True
            continue
        print(f"{name}: {checked} packages checked, {len(found)} known vulnerabilities")
        for package, version, vulnerability, fixed in found:
            print(f"  {package} {version}: {vulnerability} (fixed in {', '.join(fixed) or 'no release yet'})")
        found_any = found_any or bool(found)
    for name, why in NOT_AUDITED.items():
        print(f"{name}: {why}")
    return FOUND if found_any else NOT_DONE if not_done else 0


if __name__ == "__main__":
    sys.exit(main())
