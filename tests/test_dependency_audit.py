"""pip-audit over every deployable's pinned requirements: no known vulnerability, and no audit that checked nothing."""
import re
import stat

import pytest

from deploy import audit
from deploy.package import ZAPPA_REQUIREMENT


def test_pip_audit_is_pinned():
    assert re.search(r"^pip-audit==\d+\.\d+\.\d+$", audit.REQUIREMENTS.read_text(), re.MULTILINE)


def test_every_deployable_is_audited_or_says_why_not():
    assert set(audit.DEPLOYABLES) | set(audit.NOT_AUDITED) == {"admin", "aggregator", "redirect"}
    assert ZAPPA_REQUIREMENT in audit.DEPLOYABLES["admin"], "the admin zip is packed from a venv with Zappa in it"
    for lines in audit.DEPLOYABLES.values():
        for line in lines:
            if line.startswith("-r "):
                assert (audit.ROOT / line[3:]).is_file(), line


@pytest.mark.parametrize(
    ("report", "named"),
    [
        # What pip-audit prints when PyPI does not answer for a version: a skip, and "No known vulnerabilities".
        ({"dependencies": [{"name": "flask", "skip_reason": "Dependency not found on PyPI and could not be audited"},
                           {"name": "jinja2", "version": "3.1.6", "vulns": []}], "fixes": []}, "flask"),
        ({"dependencies": [], "fixes": []}, "no packages"),
    ],
)
def test_an_audit_that_checked_nothing_fails(report, named):
    with pytest.raises(audit.AuditUnavailable, match=named) as raised:
        audit.findings(report)
    assert "proves nothing" in str(raised.value)


def test_an_unreachable_service_fails_saying_so(monkeypatch, tmp_path):
    """pip-audit dies with a traceback and no report when the service cannot be reached."""
    fake = tmp_path / "pip-audit"
    fake.write_text("#!/bin/sh\necho 'requests.exceptions.ConnectionError: Failed to resolve pypi.org' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(audit, "ensure_audit_venv", lambda: fake)
    with pytest.raises(audit.AuditUnavailable, match="(?s)without a report.*Failed to resolve pypi.org"):
        audit.run_pip_audit(audit.DEPLOYABLES["aggregator"])


def test_a_vulnerability_is_a_finding():
    report = {"dependencies": [{"name": "jinja2", "version": "3.1.4", "vulns": [
        {"id": "GHSA-q2x7-8rv6-6q7h", "fix_versions": ["3.1.5"], "aliases": []}]}], "fixes": []}
    assert audit.findings(report) == [("jinja2", "3.1.4", "GHSA-q2x7-8rv6-6q7h", ["3.1.5"])]


def test_main_tells_a_finding_from_an_audit_not_done(monkeypatch, capsys):
    """.ci/run fails on a finding (1) and prints a NOT DONE banner for 3: neither is ever a pass (0)."""
    outcomes = {"admin": (40, []), "aggregator": (1, [])}

    def fake_audit(name):
        outcome = outcomes[name]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(audit, "audit", fake_audit)
    assert audit.main() == 0
    outcomes["aggregator"] = audit.AuditUnavailable("service unreachable")
    assert audit.main() == audit.NOT_DONE
    assert "aggregator: NOT AUDITED: service unreachable" in capsys.readouterr().out
    outcomes["admin"] = (40, [("jinja2", "3.1.4", "GHSA-q2x7-8rv6-6q7h", ["3.1.5"])])
    assert audit.main() == audit.FOUND
    assert "jinja2 3.1.4: GHSA-q2x7-8rv6-6q7h (fixed in 3.1.5)" in capsys.readouterr().out
