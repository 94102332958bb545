"""cloudformation.yaml's access options: the sign-in WAF rule and the SSO client secret, both off by default."""
from local_stack.template import load_template

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]


def test_the_sign_in_rate_rule_is_optional_and_off_by_default():
    assert PARAMETERS["AdminSignInRateLimit"]["Default"] == 0
    assert RESOURCES["SignInWebAcl"]["Condition"] == "UseSignInRateRule"
    assert TEMPLATE["Conditions"]["UseSignInRateRule"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AdminSignInRateLimit"}, 0]}]}
    assert RESOURCES["SignInWebAclAssociation"]["Condition"] == "AttachSignInRateRule"
    assert TEMPLATE["Outputs"]["SignInWebAclArn"]["Condition"] == "UseSignInRateRule"


def test_the_rate_rule_counts_posts_to_the_sign_in_path_per_ip():
    (rule,) = RESOURCES["SignInWebAcl"]["Properties"]["Rules"]
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["Limit"] == {"Ref": "AdminSignInRateLimit"} and rate["AggregateKeyType"] == "IP"
    matches = [s["ByteMatchStatement"] for s in rate["ScopeDownStatement"]["AndStatement"]["Statements"]]
    assert {(m["SearchString"], m["PositionalConstraint"]) for m in matches} == {("POST", "EXACTLY"), ("/login", "ENDS_WITH")}
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    assert RESOURCES["SignInWebAcl"]["Properties"]["DefaultAction"] == {"Allow": {}}


def test_the_sso_secret_policy_reads_one_parameter():
    policy = RESOURCES["AdminOidcSecretPolicy"]
    assert PARAMETERS["OidcClientSecretParameterName"]["Default"].startswith("/")
    assert policy["Properties"]["Roles"] == [{"Ref": "AdminRole"}]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "ssm:GetParameter"
    assert statement["Resource"]["Fn::Sub"].endswith(":parameter${OidcClientSecretParameterName}")


def test_access_items_need_no_new_table_actions():
    """Sessions, counters and tokens use only what the admin policy already grants (checked by the role test)."""
    actions = {a for s in RESOURCES["AdminPolicy"]["Properties"]["PolicyDocument"]["Statement"]
               for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem"} <= actions
    assert "dynamodb:Scan" not in actions
