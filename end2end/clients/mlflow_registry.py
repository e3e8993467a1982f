"""MLflow's own client (mlflow-skinny, pinned in the tools venv) against
Capstan's MLflow-compatible model registry, as a user with MLflow scripts
would point it at Capstan: MLFLOW_TRACKING_TOKEN holds a Capstan API token.

Environment: CAPSTAN_URL, MLFLOW_TRACKING_TOKEN, ARTIFACT_URI (the
model.tar.gz of a completed training job of team `demo`, the caller's only
team), and CAPSTAN_TEAM_URL (the native API, to protect an alias and add a
second team).
"""

import json
import os
import urllib.request

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

BASE = os.environ["CAPSTAN_URL"]
TOKEN = os.environ["MLFLOW_TRACKING_TOKEN"]
ARTIFACT = os.environ["ARTIFACT_URI"]
FOLDER = ARTIFACT.rsplit("/", 1)[0] + "/"
NAME = "churn-mlflow"


def native(method, path, body=None):
    req = urllib.request.Request(
        BASE + "/api/v1" + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as res:
        return json.loads(res.read() or b"null")


def refused(call, code, says):
    try:
        call()
    except MlflowException as e:
        assert e.error_code == code, (e.error_code, e.message)
        assert says in e.message, e.message
        return e
    raise AssertionError(f"expected {code}")


client = MlflowClient(tracking_uri=BASE, registry_uri=BASE)

# a registered model, in the caller's only team, named without the team
rm = client.create_registered_model(NAME, tags={"task": "classification"}, description="Who leaves")
assert rm.name == NAME and rm.tags == {"task": "classification"} and rm.description == "Who leaves", rm
refused(lambda: client.create_registered_model(NAME), "RESOURCE_ALREADY_EXISTS", "already has a model")
refused(lambda: client.get_registered_model("nothing-here"), "RESOURCE_DOES_NOT_EXIST", "nothing-here")

# versions from s3:// sources that exist: a model.tar.gz and a folder
v1 = client.create_model_version(NAME, source=ARTIFACT, tags={"stage": "dev"}, description="first")
assert (v1.version, v1.status, v1.source, v1.current_stage) == ("1", "READY", ARTIFACT, "None"), v1
v2 = client.create_model_version(NAME, source=FOLDER, tags={"stage": "prod"})
assert (v2.version, v2.source) == ("2", FOLDER), v2
refused(
    lambda: client.create_model_version(NAME, source=FOLDER + "nothing/model.tar.gz"),
    "INVALID_PARAMETER_VALUE",
    "Nothing is at",
)
refused(lambda: client.create_model_version(NAME, source="s3://capstan/jobs/other-team/model.tar.gz"),
        "INVALID_PARAMETER_VALUE", "artifact_uri")

# an alias, set and resolved
client.set_registered_model_alias(NAME, "champion", "1")
mv = client.get_model_version_by_alias(NAME, "champion")
assert mv.version == "1" and mv.aliases == ["champion"], mv
assert client.get_registered_model(NAME).aliases == {"champion": "1"}

# searches with filters
found = client.search_model_versions(f"name = '{NAME}' and tags.stage = 'prod'")
assert [v.version for v in found] == ["2"], found
found = client.search_model_versions(f"name = '{NAME}'", order_by=["version_number ASC"])
assert [v.version for v in found] == ["1", "2"], found
assert [m.name for m in client.search_registered_models("name LIKE 'churn-ml%'")] == [NAME]
# (the client itself leaves out prompts with `tags.`mlflow.prompt.is_prompt` != 'true'`)
assert NAME in [m.name for m in client.search_registered_models()]
refused(lambda: client.search_model_versions("tags.stage = 'prod' and"), "INVALID_PARAMETER_VALUE", "at 24")
assert [v.version for v in client.get_latest_versions(NAME)] == ["2"]

# tags on versions and models
client.set_model_version_tag(NAME, "1", "validated", "yes")
assert client.get_model_version(NAME, "1").tags == {"stage": "dev", "validated": "yes"}
client.delete_model_version_tag(NAME, "1", "validated")
assert client.get_model_version(NAME, "1").tags == {"stage": "dev"}
client.set_registered_model_tag(NAME, "owner", "ml-platform")
assert client.get_registered_model(NAME).tags == {"task": "classification", "owner": "ml-platform"}
client.update_model_version(NAME, "2", description="the folder one")
assert client.get_model_version(NAME, "2").description == "the folder one"

# where to download a version from
assert client.get_model_version_download_uri(NAME, "1") == ARTIFACT
assert client.get_model_version_download_uri(NAME, "2") == FOLDER

# a protected alias does not move through MLflow either
model_id = native("GET", f"/teams/demo/models?q={NAME}")["items"][0]["id"]
native("POST", f"/models/{model_id}/aliases/champion/protect")
refused(lambda: client.set_registered_model_alias(NAME, "champion", "2"), "RESOURCE_CONFLICT",
            "alias `champion` is protected: open a change request")
assert client.get_model_version_by_alias(NAME, "champion").version == "1"

# in a second team, a bare name is ambiguous: the team goes in front
native("POST", "/teams", {"slug": "second", "name": "Second"})
refused(lambda: client.get_registered_model(NAME), "INVALID_PARAMETER_VALUE", f"'<team>/{NAME}'")
rm = client.get_registered_model(f"demo/{NAME}")
assert rm.name == f"demo/{NAME}" and rm.latest_versions[0].version == "2", rm
# MLflow's client refuses '/' in its alias calls: there the team is written with '~'
refused(lambda: client.get_model_version_by_alias(f"demo/{NAME}", "champion"), "INVALID_PARAMETER_VALUE",
        "cannot contain '/'")
assert client.get_model_version_by_alias(f"demo~{NAME}", "champion").name == f"demo/{NAME}"

# a token that is not Capstan's gets MLflow's 401
stranger = MlflowClient(tracking_uri=BASE, registry_uri=BASE)
os.environ["MLFLOW_TRACKING_TOKEN"] = "cap_not-a-token"
refused(lambda: stranger.get_registered_model(f"demo/{NAME}"), "UNAUTHENTICATED", "Sign in")
print("mlflow client: every registry call behaved")
