"""Which version a deployment serves (production, else staging, else the latest; or the stage named) and where its
merged model is; each miss is one line naming the fix."""

import pytest

from twinsft.errors import UserError
from twinsft.serving.lookup import merged_artifact_id, pick_version


def finder(stages: dict[str, str]):
    asked = []

    def find(model, stage):
        asked.append((model, stage))
        return stages.get(stage)

    return find, asked


@pytest.mark.parametrize(("stages", "expected"), [
    ({"production": "v3", "staging": "v4", "latest": "v5"}, ("v3", "production")),
    ({"staging": "v4", "latest": "v5"}, ("v4", "staging")),
    ({"latest": "v5"}, ("v5", None)),
])
def test_no_stage_named_takes_production_then_staging_then_latest(stages, expected):
    find, _ = finder(stages)
    assert pick_version(find, "m", None) == expected


def test_a_named_stage_is_the_only_one_looked_in():
    find, asked = finder({"production": "v3", "latest": "v5"})
    with pytest.raises(UserError) as info:
        pick_version(find, "m", "staging")
    assert asked == [("m", "staging")]
    assert str(info.value) == ("ZenML Model 'm' has no version in stage 'staging'; promote one "
                               "(`run.py promote VERSION --stage staging`) or pick another --stage")
    assert pick_version(find, "m", "latest") == ("v5", None)


def test_a_model_without_versions_says_to_train_one():
    with pytest.raises(UserError, match="ZenML Model 'm' has no versions; train one first"):
        pick_version(finder({})[0], "m", None)


def test_the_merged_model_is_the_recorded_pointer_else_the_linked_artifact():
    assert merged_artifact_id({"merged_model_artifact_id": "a1"}, {"merged_model": "a2"}, "v") == "a1"
    assert merged_artifact_id({}, {"merged_model": "a2"}, "v") == "a2"
    with pytest.raises(UserError, match=r"^m version 1 .* has no merged_model: its run did not reach push_merged"):
        merged_artifact_id({}, {}, "m version 1 (#1, latest version)")
