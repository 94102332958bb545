"""RUNBOOK.md against what it names: every alarm of cloudformation.yaml has a section with its four
parts, and every alarm, resource, output, parameter, make target and dashboard widget it names exists
(so a renamed alarm or parameter fails here, not at 3 a.m.). No figure is typed into its prose."""
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from local_stack.template import load_template

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "RUNBOOK.md"
MAKEFILE = ROOT / "Makefile"

ALARM_TYPES = {"AWS::CloudWatch::Alarm", "AWS::Budgets::Budget"}
PARTS = ("Means", "Confirm", "Do", "Clears")
ALARMS_CHAPTER = "## Alarms"

# CamelCase names the runbook may quote that are AWS's, not the template's: DynamoDB's error codes,
# API operations and response fields the commands read, and CloudWatch metrics the template only
# mentions inside its dashboard's text.
AWS_NAMES = {
    "AccessDeniedException", "ResourceNotFoundException", "RestoreTableToPointInTime", "UpdateEventSourceMapping",
    "IntegrationLatency", "IteratorAge", "ReadThrottleEvents", "LastProcessingResult",
}
# Numbers prose may hold: HTTP statuses are names of answers, and Route 53 is a name.
ALLOWED_NUMBERS = {"403", "429", "503", "53"}


def _code_spans(text):
    """Inline code spans outside fenced blocks."""
    return re.findall(r"`([^`\n]+)`", _without_fences(text))


def _fences(text):
    return re.findall(r"^\s*```[^\n]*\n(.*?)^\s*```", text, re.M | re.S)


def _without_fences(text):
    return re.sub(r"^\s*```[^\n]*\n.*?^\s*```", "", text, flags=re.M | re.S)


def _all_code(text):
    return "\n".join(_fences(text) + _code_spans(text))


def alarm_ids(template):
    """Logical ids of every alarm and budget in the template."""
    return {name for name, resource in template["Resources"].items() if resource["Type"] in ALARM_TYPES}


def alarm_sections(text):
    """{heading: body} of the level-3 sections in the alarms chapter."""
    start = text.index(ALARMS_CHAPTER)
    end = text.find("\n## ", start + len(ALARMS_CHAPTER))
    chapter = text[start:end if end != -1 else len(text)]
    parts = re.split(r"^### (.+)$", chapter, flags=re.M)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2])}


def missing_parts(body):
    """The parts a section lacks: each is a bullet `- **Part**` followed by some text."""
    missing = []
    for part in PARTS:
        match = re.search(rf"^- \*\*{part}\*\*(.*?)(?=^- \*\*|\Z)", body, re.M | re.S)
        if not match or len(match[1].strip()) < 20:
            missing.append(part)
    return missing


def template_names(template):
    """Every mapping key anywhere in the template, every metric name, and every word of its strings
    that looks like a metric (the dashboard's text): what a runbook may quote as the template's."""
    names = set()

    def walk(node):
        if isinstance(node, dict):
            names.update(k for k in node if isinstance(k, str))
            for key, value in node.items():
                if key == "MetricName" and isinstance(value, str):
                    names.add(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template)
    return names


def widget_titles(template):
    """The dashboard's widget titles, from every string of its body (a plain string, or inside !Sub or !Join)."""
    strings = []

    def walk(node):
        if isinstance(node, str):
            strings.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
    return {title for text in strings for title in re.findall(r'"title": "([^"]+)"', text)}


def makefile_targets(makefile_text):
    return set(re.findall(r"^([A-Za-z][\w-]*):", makefile_text, re.M))


def _is_camel(word):
    return (re.fullmatch(r"[A-Z][A-Za-z0-9]+", word) is not None
            and sum(c.isupper() for c in word) >= 2 and any(c.islower() for c in word))


def problems(text, template, makefile_text):
    """Every way the runbook disagrees with the template and the Makefile, as messages."""
    found = []
    alarms = alarm_ids(template)
    parameters, resources, outputs = set(template["Parameters"]), set(template["Resources"]), set(template["Outputs"])
    sections = alarm_sections(text)

    for alarm in sorted(alarms - set(sections)):
        found.append(f"alarm {alarm} has no section (### {alarm} under {ALARMS_CHAPTER})")
    for heading, body in sections.items():
        if heading not in alarms:
            found.append(f"section {heading!r} names no alarm of the template")
        elif missing_parts(body):
            found.append(f"section {heading} lacks {', '.join(missing_parts(body))}")
    for name in sorted(set(re.findall(r"\b[A-Z]\w*Alarm\b", text)) - alarms):
        found.append(f"{name} is named but is no alarm of the template")

    code = _all_code(text)
    helpers = {"res": resources, "alarm": alarms, "out": outputs, "param": parameters}
    for helper, name in re.findall(r"\b(res|alarm|out|param) ([A-Za-z]\w*)", code):
        if name not in helpers[helper]:
            found.append(f"`{helper} {name}`: no such {dict(res='resource', alarm='alarm', out='output', param='parameter')[helper]}")
    for overrides in re.findall(r"--parameter-overrides\s+((?:[A-Z]\w*=\S+\s*)+)", code):
        found += [f"parameter override {name}: no such parameter"
                  for name in re.findall(r"([A-Z]\w*)=", overrides) if name not in parameters]
    for span in _code_spans(text):
        stage_entry = re.match(r'"([A-Z]\w*)"(?::|$)', span)
        if stage_entry and stage_entry[1] not in parameters:
            found.append(f"stage file entry {stage_entry[1]}: no such parameter")
    for target in sorted(set(re.findall(r"(?<![\w-])make ([a-z][\w-]*)", code)) - makefile_targets(makefile_text)):
        found.append(f"`make {target}`: no such Makefile target")

    known = template_names(template) | AWS_NAMES
    for span in sorted(set(_code_spans(text))):
        if _is_camel(span) and span not in known:
            found.append(f"`{span}` is neither in the template nor a known AWS name")

    titles = widget_titles(template)
    for run in re.findall(r"[Ww]idgets?\s+((?:`[^`]+`(?:,\s*|\s+and\s+)?)+)", _without_fences(text)):
        found += [f"widget {title!r} is not on the dashboard" for title in re.findall(r"`([^`]+)`", run)
                  if title not in titles]

    found += [f"figure {number} typed into the prose" for number in untagged_numbers(text)]
    return found


def untagged_numbers(text):
    """Numbers in the prose (outside code, list numbers and step references), minus the allowlist."""
    prose = _without_fences(text)
    prose = re.sub(r"`[^`\n]*`", " ", prose)
    prose = re.sub(r"^\s*\d+\.\s", " ", prose, flags=re.M)
    prose = re.sub(r"\bstep \d+\b", " ", prose)
    return [n for n in re.findall(r"(?<![\w.\-])\d[\d,.]*(?<![.,])(?!\w)", prose) if n not in ALLOWED_NUMBERS]


@pytest.fixture(scope="module")
def template():
    return load_template()


@pytest.fixture(scope="module")
def runbook():
    return RUNBOOK.read_text()


@pytest.fixture(scope="module")
def makefile_text():
    return MAKEFILE.read_text()


def test_the_runbook_agrees_with_the_template_and_the_makefile(runbook, template, makefile_text):
    found = problems(runbook, template, makefile_text)
    assert not found, "RUNBOOK.md:\n" + "\n".join(found)


def test_every_alarm_of_the_template_has_a_complete_section(runbook, template):
    sections = alarm_sections(runbook)
    assert alarm_ids(template) <= set(sections)
    assert all(not missing_parts(sections[alarm]) for alarm in alarm_ids(template))


# The checker itself: each kind of drift it exists for, made on a copy of the real runbook.


def test_a_renamed_alarm_fails(runbook, template, makefile_text):
    renamed = runbook.replace("ClickDelayAlarm", "ClickLatencyAlarm")
    found = problems(renamed, template, makefile_text)
    assert "alarm ClickDelayAlarm has no section (### ClickDelayAlarm under ## Alarms)" in found
    assert "section 'ClickLatencyAlarm' names no alarm of the template" in found
    assert "ClickLatencyAlarm is named but is no alarm of the template" in found


def test_an_alarm_added_to_the_template_without_a_section_fails(runbook, template, makefile_text):
    grown = {**template, "Resources": {**template["Resources"],
                                       "TableThrottleAlarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}}}}
    assert "alarm TableThrottleAlarm has no section (### TableThrottleAlarm under ## Alarms)" in problems(
        runbook, grown, makefile_text)


@pytest.mark.parametrize("part", PARTS)
def test_a_section_without_one_of_its_parts_fails(runbook, template, makefile_text, part):
    body = alarm_sections(runbook)["ThrottlesAlarm"]
    cut = re.sub(rf"^- \*\*{part}\*\*.*?(?=^- \*\*|\Z)", "", body, count=1, flags=re.M | re.S)
    assert cut != body
    assert f"section ThrottlesAlarm lacks {part}" in problems(runbook.replace(body, cut), template, makefile_text)


@pytest.mark.parametrize("old, new, message", [
    ("`ClickStreamRetentionHours`", "`ClickStreamRetentionDays`",
     "`ClickStreamRetentionDays` is neither in the template nor a known AWS name"),
    ("param SecretKeyParameterName", "param SecretKeyParameter", "`param SecretKeyParameter`: no such parameter"),
    ("res RedirectLogGroup", "res RedirectLogs", "`res RedirectLogs`: no such resource"),
    ("out ClickStreamName", "out ClickStream", "`out ClickStream`: no such output"),
    ("RedirectCodeKey=code/", "RedirectKey=code/", "parameter override RedirectKey: no such parameter"),
    ('"ShortDomainName": "sho.rt"', '"ShortDomain": "sho.rt"', "stage file entry ShortDomain: no such parameter"),
    ("make replay-dlq", "make replay", "`make replay`: no such Makefile target"),
    ("`Short-link API: latency (ms)`", "`Short-link API: p99 (ms)`",
     "widget 'Short-link API: p99 (ms)' is not on the dashboard"),
])
def test_a_name_that_drifted_fails(runbook, template, makefile_text, old, new, message):
    assert old in runbook
    assert message in problems(runbook.replace(old, new, 1), template, makefile_text)


def test_a_figure_typed_into_the_prose_fails(runbook, template, makefile_text):
    typed = runbook.replace("- **Means** Lambda refused", "- **Means** At 1,000 a second, Lambda refused", 1)
    assert "figure 1,000 typed into the prose" in problems(typed, template, makefile_text)


# The runbook's shell: every ```sh block parses, and the helpers of "Before you start" do what they say.


def shell_blocks(text):
    """Every ```sh block, dedented, its <placeholders> made plain words so the shell can parse it."""
    blocks = re.findall(r"^[ \t]*```sh\n(.*?)^[ \t]*```", text, re.M | re.S)
    return [re.sub(r"<[^<>\n]+>", "PLACEHOLDER", textwrap.dedent(block)) for block in blocks]


@pytest.mark.slow
def test_every_shell_block_parses(runbook):
    blocks = shell_blocks(runbook)
    assert len(blocks) > 10
    for block in blocks:
        result = subprocess.run(["bash", "-n", "-c", block], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{result.stderr}\n{block}"


@pytest.mark.slow
def test_a_broken_shell_block_is_caught():
    (block,) = shell_blocks("```sh\naws logs tail \"$(res RedirectLogGroup)\" --filter-pattern '{ x }\n```\n")
    assert subprocess.run(["bash", "-n", "-c", block], capture_output=True, timeout=30).returncode != 0


# A stand-in for the AWS CLI with --output text: describe-stack-resource prints the physical id,
# describe-alarms the [StateValue, StateReason] row, start-query the query id, get-query-results
# the status (Scheduled or Running until the query ends, then Complete or Failed) or the result rows.
FAKE_AWS = r"""#!/bin/sh
echo "$*" >> "$AWS_CALLS"
case "$*" in
  "cloudformation describe-stack-resource"*) echo "$STACK-$6-1A2B3C" ;;
  "cloudwatch describe-alarms"*) printf 'ALARM\tThreshold Crossed\n' ;;
  "logs start-query"*) echo query-1 ;;
  "logs get-query-results"*"--query status"*)
    polls=$(cat "$AWS_POLLS" 2>/dev/null || echo 0); polls=$((polls + 1)); echo "$polls" > "$AWS_POLLS"
    if [ "$polls" -lt 3 ]; then echo Running; else echo "$FINAL_STATUS"; fi ;;
  "logs get-query-results"*) printf 'error\tAccessDeniedException\n' ;;
  *) echo "unexpected call: $*" >&2; exit 2 ;;
esac
"""


def run_helpers(runbook, tmp_path, script, final_status="Complete"):
    """Run the "Before you start" block, then script, with the stand-in `aws` and an instant `sleep`."""
    start = runbook.index("## Before you start")
    (helpers,) = shell_blocks(runbook[start:runbook.index("\n## ", start + 1)])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("aws", FAKE_AWS), ("sleep", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "AWS_CALLS": str(tmp_path / "calls"),
           "AWS_POLLS": str(tmp_path / "polls"), "FINAL_STATUS": final_status}
    result = subprocess.run(["bash", "-c", helpers + "\n" + script], capture_output=True, text=True, env=env,
                            timeout=30)
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    return result, calls


@pytest.mark.slow
def test_the_alarm_helper_reads_the_alarm_the_stack_named(runbook, tmp_path):
    result, calls = run_helpers(runbook, tmp_path, "alarm ClickDelayAlarm")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ALARM\tThreshold Crossed\n"
    assert calls[0].startswith("cloudformation describe-stack-resource --stack-name links-prod "
                               "--logical-resource-id ClickDelayAlarm")
    assert calls[1].startswith("cloudwatch describe-alarms --alarm-names links-prod-ClickDelayAlarm-1A2B3C")


@pytest.mark.slow
@pytest.mark.parametrize("final_status", ["Complete", "Failed"])
def test_the_insights_helper_waits_for_the_query_and_never_hangs(runbook, tmp_path, final_status):
    result, calls = run_helpers(runbook, tmp_path, "insights /aws/lambda/x 'filter type = \"error\"'", final_status)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "error\tAccessDeniedException\n"
    assert calls[0].startswith("logs start-query --log-group-name /aws/lambda/x --query-string filter type")
    assert [call for call in calls if "--query status" in call] == [calls[1]] * 3
    assert calls[-1] == "logs get-query-results --query-id query-1 --query results[] --output text"
