"""Every AWS call the code makes, derived from the source (ast), against each role's grants in cloudformation.yaml
and the operator's permissions in the README.

For each deployable, the derivation finds the AWS clients it creates (boto3.client("kinesis") however
boto3 or its client function is imported, a boto3 Session's client("sqs"), service_name= too, a botocore
session's create_client("dynamodb")), every call of an API operation on them (or an operation taken
off a client to be called later), and every
operation the store's dispatcher is asked for (`table.call("get_item", ...)`, `self._call(op)` with op
followed to its string constants). Operation names become IAM actions through botocore's own service
models. A call whose operation cannot be resolved statically fails, with its place.

Each role must grant exactly those actions for its code, plus what AWS services do with the role on
the function's behalf (SERVICE_POLICIES: the runtime writing logs, the event source mapping polling
the stream). A grant nobody uses fails, and so does a call nobody granted.
"""
import ast
import functools
import re
from pathlib import Path

import botocore.session
import pytest

from local_stack.template import load_template
from tests.static_names import Unresolved, resolve

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]

# The code each role runs: folders, or single files run by a role of their own (OWN_ROLE_FILES), which
# their folder's role does not run.
ROLE_SOURCES = {
    "RedirectRole": ("redirect_fn",),
    "AggregatorRole": ("aggregator",),
    "AdminRole": ("webapp",),
    "SaltRole": ("aggregator/salts.py",),
}
OWN_ROLE_FILES = {"aggregator/salts.py"}
# Policies that AWS uses with the role, not the code: (role, policy name) -> why.
SERVICE_POLICIES = {
    ("RedirectRole", "own-logs"): "the Lambda runtime writes the function's output to its log group",
    ("AggregatorRole", "own-logs"): "the Lambda runtime writes the function's output to its log group",
    ("AdminRole", "own-logs"): "the Lambda runtime writes the function's output to its log group",
    ("SaltRole", "own-logs"): "the Lambda runtime writes the function's output to its log group",
    ("AggregatorRole", "read-clicks"): "the event source mapping polls the stream with the function's role",
    ("AggregatorRole", "failed-batches"): "the event source mapping sends the on-failure record with the function's role",
}
# The store's dispatcher: table.call("get_item", ...) (and the older self._call) calls that operation
# on the store's DynamoDB client.
DISPATCHERS = {"call", "_call"}
DISPATCH_SERVICE = "dynamodb"
# Client methods that are not API operations.
NOT_OPERATIONS = {"get_paginator", "get_waiter", "can_paginate", "close", "generate_presigned_url", "generate_presigned_post"}
# Operations whose IAM action is not "<service>:<OperationName>".
ACTION_OF = {("lambda", "invoke"): "lambda:InvokeFunction", ("dynamodb", "transact_get_items"): "dynamodb:GetItem"}
# A transaction has no IAM action of its own: each kind of part it writes needs that part's action.
TRANSACTION_PARTS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                     "ConditionCheck": "dynamodb:ConditionCheckItem"}


@functools.lru_cache(maxsize=None)
def operations(service):
    """{python method name: API operation name} of a service, from botocore's model (no network)."""
    client = botocore.session.get_session().create_client(
        service, region_name="us-east-1", aws_access_key_id="none", aws_secret_access_key="none")
    return dict(client.meta.method_to_api_mapping)


@functools.lru_cache(maxsize=None)
def aws_services():
    """Every service name botocore knows (no network)."""
    return frozenset(botocore.session.get_session().get_available_services())


def _created_service(node):
    """The service of a client creation, else None: <anything>.client("s") or .create_client("s")
    (boto3, an alias of it, a boto3 Session, a botocore session), a bare client("s") imported from
    boto3, the service given by position or as service_name=, when "s" is a service botocore knows."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    named = (isinstance(func, ast.Attribute) and func.attr in ("client", "create_client")) or (
        isinstance(func, ast.Name) and func.id in _BOTO3_CLIENT_NAMES)
    if not named:
        return None
    service = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "service_name"), None)
    if isinstance(service, ast.Constant) and service.value in aws_services():
        return service.value
    return None


# Names a module binds to boto3's client function (`from boto3 import client as make_client`); filled by clients().
_BOTO3_CLIENT_NAMES = set()


def _receiver_name(node):
    """`name` for a Name, `self.name`-style attribute for an Attribute: what a client is bound to."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return "." + node.attr
    return None


def clients(trees):
    """{module: {bound name: service}} and every service created, in these modules.

    A plain name is bound in its own module; an attribute (self.client) in every module, since the
    store's parts share their table's client.
    """
    bound, shared, services = {relative: {} for relative in trees}, {}, set()
    _BOTO3_CLIENT_NAMES.clear()
    _BOTO3_CLIENT_NAMES.update(alias.asname or alias.name for tree in trees.values() for node in ast.walk(tree)
                               if isinstance(node, ast.ImportFrom) and node.module in ("boto3", "boto3.session")
                               for alias in node.names if alias.name == "client")
    for relative, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for creation in ast.walk(node.value):
                    service = _created_service(creation)
                    if service:
                        services.add(service)
                        for name in filter(None, map(_receiver_name, node.targets)):
                            (shared if name.startswith(".") else bound[relative])[name] = service
            elif (service := _created_service(node)) is not None:
                services.add(service)
    return {relative: {**shared, **names} for relative, names in bound.items()}, services


def _enclosing_functions(tree):
    """{id(node): name of the innermost function around it}."""
    around = {}

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            around[id(child)] = name
            visit(child, name)

    visit(tree, None)
    return around


def aws_calls(trees):
    """{(service, python operation)} the modules call, and the places of calls that cannot be resolved."""
    bound_in, services = clients(trees)
    calls, unresolved = set(), []
    for relative, tree in trees.items():
        around, bound = _enclosing_functions(tree), bound_in[relative]
        called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and id(node) not in called:
                # An operation taken off a client without calling it there (op = client.put_record; op(...)).
                known = bound.get(_receiver_name(node.value))
                candidates = [known] if known else sorted(s for s in services if node.attr in operations(s))
                if len(candidates) == 1 and node.attr in operations(candidates[0]) and node.attr not in NOT_OPERATIONS:
                    calls.add((candidates[0], node.attr))
                continue
            if not isinstance(node, ast.Call):
                continue
            place = f"{relative}:{node.lineno}: {ast.unparse(node)[:80]}"
            func = node.func
            if isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "getattr":
                # getattr(client, operation)(...): only the dispatcher may, and its callers are derived below.
                if around.get(id(node)) not in DISPATCHERS:
                    unresolved.append(place)
                continue
            if not isinstance(func, ast.Attribute):
                continue
            if func.attr in DISPATCHERS and DISPATCH_SERVICE in services:
                if not node.args:
                    unresolved.append(place)
                    continue
                try:
                    calls |= {(DISPATCH_SERVICE, operation) for operation in resolve(node.args[0], tree)}
                except Unresolved:
                    unresolved.append(place)
                continue
            if func.attr == "get_paginator":
                service = bound.get(_receiver_name(func.value))
                try:
                    calls |= {(service, operation) for operation in resolve(node.args[0], tree)} if service else set()
                except Unresolved:
                    unresolved.append(place)
                continue
            if func.attr in NOT_OPERATIONS:
                continue
            known = bound.get(_receiver_name(func.value))
            candidates = [known] if known else sorted(s for s in services if func.attr in operations(s))
            if known and func.attr not in operations(known):
                unresolved.append(place + f" (no {known} operation {func.attr})")
            elif len(candidates) > 1:
                unresolved.append(place + f" (an operation of {candidates}: bind the client to a name)")
            elif candidates:
                calls.add((candidates[0], func.attr))
    return calls, unresolved


def iam_actions(calls, sources):
    """The IAM actions of these (service, operation) calls; sources: the code, for a transaction's parts."""
    actions = set()
    for service, operation in calls:
        if (service, operation) == ("dynamodb", "transact_write_items"):
            actions |= {action for part, action in TRANSACTION_PARTS.items() if re.search(rf"[\"']{part}[\"']\s*:", sources)}
        else:
            actions.add(ACTION_OF.get((service, operation)) or f"{service}:{operations(service)[operation]}")
    return actions


def parse(folders):
    """{relative path: module tree} for every Python file of these folders (less OWN_ROLE_FILES), or these files."""
    paths = []
    for folder in folders:
        if (ROOT / folder).is_file():
            paths.append(ROOT / folder)
        else:
            paths += [p for p in sorted((ROOT / folder).rglob("*.py")) if p.relative_to(ROOT).as_posix() not in OWN_ROLE_FILES]
    return {path.relative_to(ROOT).as_posix(): ast.parse(path.read_text(), str(path)) for path in paths}


def derived_actions(folders):
    """The IAM actions the code of these folders needs; fails on a call it cannot resolve."""
    trees = parse(folders)
    calls, unresolved = aws_calls(trees)
    assert not unresolved, (
        "AWS calls whose operation cannot be read from the code: name the operation with a string or "
        f"a constant, or call it on a client bound to a name: {unresolved}")
    sources = "\n".join((ROOT / relative).read_text() for relative in trees)
    return iam_actions(calls, sources)


def _as_list(value):
    return value if isinstance(value, list) else [value]


def role_policies(role):
    """{policy name: its actions} of every policy that applies to a role: inline, managed, and attached by Roles."""
    props = RESOURCES[role]["Properties"]
    policies = {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies", [])}
    for arn in props.get("ManagedPolicyArns", []):
        policies[arn["Ref"]] = RESOURCES[arn["Ref"]]["Properties"]["PolicyDocument"]
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"].get("Roles", []):
            policies[name] = resource["Properties"]["PolicyDocument"]
    return {name: {a for s in document["Statement"] if s["Effect"] == "Allow" for a in _as_list(s["Action"])}
            for name, document in policies.items()}


@pytest.mark.parametrize("role", sorted(ROLE_SOURCES))
def test_each_role_grants_exactly_the_calls_its_code_makes(role):
    needed = derived_actions(ROLE_SOURCES[role])
    policies = role_policies(role)
    for_code = set().union(*(a for name, a in policies.items() if (role, name) not in SERVICE_POLICIES))
    missing, unused = needed - for_code, for_code - needed
    assert not missing, f"{role} lacks {sorted(missing)}, which {', '.join(ROLE_SOURCES[role])}/ calls"
    assert not unused, f"{role} grants {sorted(unused)} for its code, which never calls them"


def test_every_service_policy_is_one_the_role_has():
    for role, name in SERVICE_POLICIES:
        assert name in role_policies(role), (role, name)


def test_the_derivation_finds_every_client_of_the_code():
    """Each deployable's clients, as the code creates them: a new client shows up here first."""
    assert {role: clients(parse(folders))[1] for role, folders in ROLE_SOURCES.items()} == {
        "RedirectRole": {"dynamodb"}, "AggregatorRole": {"dynamodb", "kinesis"}, "AdminRole": {"dynamodb", "lambda", "ssm"},
        "SaltRole": {"dynamodb"}}


OPERATOR_SOURCES = ("deploy/replay_dlq.py",)


def readme_operator_actions(command):
    """IAM actions the README's "What the operator needs" table gives for a command (its For column)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### What the operator needs"):]
    actions = set()
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = line.split("|")
        if len(cells) > 3 and command in cells[3]:
            actions |= set(re.findall(r"`([a-z0-9-]+:[A-Za-z*]+)`", cells[1]))
    return actions


def test_the_readme_documents_what_make_replay_dlq_calls():
    trees = {relative: ast.parse((ROOT / relative).read_text()) for relative in OPERATOR_SOURCES}
    calls, unresolved = aws_calls(trees)
    assert not unresolved
    needed = iam_actions(calls, "")
    # The replay runs each batch through the aggregator in Lambda (an invoke), so the aggregator's own
    # grants stay the function's; the operator needs only what the script calls itself.
    assert needed == readme_operator_actions("`make replay-dlq`"), "the README's operator table and deploy/replay_dlq.py differ"


# The finder itself, on small sources: each way the code calls AWS, and each way it can hide a call.
CLIENTS = 'import boto3\n_kinesis = boto3.client("kinesis")\nclass T:\n    def __init__(self):\n        self.client = boto3.client("dynamodb")\n'


@pytest.mark.parametrize(("source", "expected"), [
    ('self.table.call("batch_get_item", RequestItems=items)', {"dynamodb:BatchGetItem"}),
    ('self._call("get_item", Key=key)', {"dynamodb:GetItem"}),  # the store's dispatcher before it was public
    ("table.call('update_item', Key=key)", {"dynamodb:UpdateItem"}),
    ("pool.map(lambda kw: self.table.call(\n    'query', **kw), pages)", {"dynamodb:Query"}),
    ('OP = "delete_item"\ndef f(store):\n    store.table.call(OP, Key=k)', {"dynamodb:DeleteItem"}),
    ('def f(store):\n    for op in ("put_item", "get_item"):\n        store._call(op)', {"dynamodb:PutItem", "dynamodb:GetItem"}),
    ("self.client.delete_item(Key=key)", {"dynamodb:DeleteItem"}),
    ("_kinesis.describe_stream_summary(StreamName=s)", {"kinesis:DescribeStreamSummary"}),
    # A client passed in as a parameter: its operation names which of the module's services it is.
    ("def read(client):\n    client.get_records(ShardIterator=i)", {"kinesis:GetRecords"}),
    ("client.transact_write_items(TransactItems=[{'Put': item}, {\"ConditionCheck\": check}])",
     {"dynamodb:PutItem", "dynamodb:ConditionCheckItem"}),
    ('name = "get_item"  # a string that is not a call', set()),
    ("_kinesis.get_paginator('list_shards')", {"kinesis:ListShards"}),
    # Other ways of making a client, and an operation taken off a client to be called later.
    ('_sqs = boto3.client(service_name="sqs")\n_sqs.send_message(QueueUrl=q, MessageBody=b)', {"sqs:SendMessage"}),
    ('import boto3 as aws\n_sqs = aws.client("sqs")\n_sqs.send_message(QueueUrl=q, MessageBody=b)', {"sqs:SendMessage"}),
    ('_sqs = boto3.session.Session().client("sqs")\n_sqs.send_message(QueueUrl=q, MessageBody=b)', {"sqs:SendMessage"}),
    ('from boto3 import client as make\n_sqs = make("sqs")\n_sqs.send_message(QueueUrl=q, MessageBody=b)', {"sqs:SendMessage"}),
    ("describe = _kinesis.describe_stream_summary\ndescribe(StreamName=s)", {"kinesis:DescribeStreamSummary"}),
    ("def read(client):\n    describe = client.describe_stream_summary\n    describe(StreamName=s)", {"kinesis:DescribeStreamSummary"}),
])
def test_the_call_finder_sees_each_way_the_code_calls_aws(source, expected):
    calls, unresolved = aws_calls({"module.py": ast.parse(CLIENTS + source + "\n")})
    assert unresolved == []
    assert iam_actions(calls, source) == expected


@pytest.mark.parametrize("source", [
    "def f(store, op):\n    store._call(op, Key=k)",  # an operation only known at run time
    "def f(table, ops):\n    table.call(ops[0])",
    "def f(client, op):\n    getattr(client, op)(Key=k)",  # a dispatcher of its own
    "_kinesis.get_item(Key=k)",  # not an operation of the client it is called on
])
def test_a_call_the_finder_cannot_resolve_fails_with_its_place(source):
    _, unresolved = aws_calls({"module.py": ast.parse(CLIENTS + source + "\n")})
    assert len(unresolved) == 1 and unresolved[0].startswith("module.py:")


# The admin's batch writes are narrowed by key (issue 17, #13): every key the code batch-writes must match
# AdminPolicy's dynamodb:LeadingKeys patterns, and a link item's key (the bare short id) must not.


def _admin_statements(action):
    return [s for s in RESOURCES["AdminPolicy"]["Properties"]["PolicyDocument"]["Statement"]
            if action in _as_list(s["Action"])]


def _string_like(pattern, value):
    """IAM's StringLike: * is any run of characters, ? any one, everything else itself."""
    return re.fullmatch("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
                        value, re.DOTALL) is not None


def key_patterns(action):
    """The dynamodb:LeadingKeys patterns of the admin's one statement for this action."""
    [statement] = _admin_statements(action)
    assert _as_list(statement["Action"]) == [action], "the condition would narrow other actions too"
    assert set(statement["Condition"]) == {"ForAllValues:StringLike"}
    return statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]


def _assert_no_link_matches(patterns, short_id, action):
    for link_id in (short_id, "abc1234", "user", "find", "a_b-c"):
        assert not any(_string_like(p, link_id) for p in patterns), f"{action} could reach the link {link_id!r}"
    # No prefix is ambiguous with a link id: a short id never holds "#" (webapp/link_rules.py).
    from webapp import link_rules

    assert all(p.endswith("#*") and not link_rules.is_short_id(p[:-1] + "x") for p in patterns)


def _request_pks(operation, params):
    """The partition keys of one DynamoDB request: every item of a batch or a transaction, or its Key."""
    if operation == "BatchWriteItem":
        return [(r.get("PutRequest", {}).get("Item") or r["DeleteRequest"]["Key"])["pk"]["S"]
                for requests in params["RequestItems"].values() for r in requests]
    if operation == "TransactWriteItems":
        return [(part.get("Key") or part["Item"])["pk"]["S"]
                for item in params["TransactItems"] for part in item.values()]
    return [params["Key"]["pk"]["S"]] if "Key" in params else []


@pytest.fixture
def admin_writes(store, table_requests):
    """Run every store path that batch-writes or deletes, and return (the requests it made, a link id)."""
    from tests.conftest import ADMIN_USERNAME
    from webapp.store import link_reindex, sessions

    link = store.links.create("https://example.com/report", created_by=ADMIN_USERNAME, title="Quarterly report",
                              tags=["q1", "sales"], expires_at="2099-01-01T00:00:00Z")
    short_id = link["id"]
    store.links.update(short_id, {"tags": ["q2"], "title": "Annual"}, by=ADMIN_USERNAME)
    store.links.update(short_id, {"is_active": False}, by=ADMIN_USERNAME)
    link_reindex.reindex(store.table)  # rebuilds the search entries in batches
    for _ in range(sessions.MAX_SESSIONS_PER_USER + 2):  # beyond the cap: the oldest go in a batch
        session_id = store.sessions.create(ADMIN_USERNAME, 3600)
    store.sessions.end(ADMIN_USERNAME, session_id)
    _, token_id = store.tokens.create(ADMIN_USERNAME, "ci")
    store.tokens.revoke(token_id)
    store.tokens.create(ADMIN_USERNAME, "ci-2")
    assert store.tokens.revoke_all(ADMIN_USERNAME) == 1
    store.sign_ins.clear(ADMIN_USERNAME, 900)  # a correct password forgets the failed attempts
    store.link_creations.clear(ADMIN_USERNAME, 3600)
    rule = store.blocklist.add("domain", "bad.example", ADMIN_USERNAME)
    store.blocklist.remove(rule["id"])
    slot = store.import_jobs.claim_slot(ADMIN_USERNAME, "job1", 2, 60)
    store.import_jobs.create("job1", owner=ADMIN_USERNAME, via="web", text="url\n", total=0, chunks=0,
                             chunk_rows=100, slot=slot, id_length=7)
    store.import_jobs.finish(store.import_jobs.lease("job1", "runner-1", 60), "runner-1", slot)  # frees the slot
    return list(table_requests), short_id


def _writes(requests, operation, keys_of):
    """The partition keys of each request of this operation (one list per request)."""
    return [pks for name, params in requests if name == operation for pks in [keys_of(params)] if pks]


def test_every_key_the_admin_batch_writes_matches_the_grant_and_no_link_does(admin_writes):
    requests, short_id = admin_writes
    patterns = key_patterns("dynamodb:BatchWriteItem")
    batches = _writes(requests, "BatchWriteItem", lambda params: _request_pks("BatchWriteItem", params))
    written = {pk for pks in batches for pk in pks}
    # Search entries (a link's create), sessions (the cap) and tokens (revocation) were all batch-written.
    assert {pk.split("#")[0] + "#" for pk in written} >= {"find#", "tag#", "owner#", "user#", "token#", "tokenid#"}
    for pks in batches:  # ForAllValues: every key of a request must match some pattern
        for pk in pks:
            assert any(_string_like(p, pk) for p in patterns), f"BatchWriteItem on {pk!r} would be denied"
    _assert_no_link_matches(patterns, short_id, "a batch")


def test_every_key_the_admin_deletes_matches_the_grant_and_no_link_does(admin_writes):
    """A Delete inside TransactWriteItems is authorised as a DeleteItem on its own key (DynamoDB developer
    guide, "Using IAM with DynamoDB transactions"), so each deleted key is checked on its own."""
    requests, short_id = admin_writes
    patterns = key_patterns("dynamodb:DeleteItem")
    deleted = {pk for pks in _writes(requests, "DeleteItem", lambda params: [params["Key"]["pk"]["S"]]) for pk in pks}
    deleted |= {pk for pks in _writes(requests, "TransactWriteItems", lambda params: [
        item["Delete"]["Key"]["pk"]["S"] for item in params["TransactItems"] if "Delete" in item]) for pk in pks}
    # Sessions, both rate limits, a blocklist rule, an import slot and a link edit's stale entries were deleted.
    assert {pk.split("#")[0] + "#" for pk in deleted} >= {
        "user#", "signin#", "linklimit#", "blocklist#", "importslot#", "tag#", "find#"}
    for pk in deleted:
        assert any(_string_like(p, pk) for p in patterns), f"DeleteItem on {pk!r} would be denied"
    _assert_no_link_matches(patterns, short_id, "a delete")
