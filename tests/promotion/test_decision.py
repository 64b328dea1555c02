"""The decision on numbers alone: each check, its line, and what --force may and may not pass."""

import pytest

from twinsft.config import PromotionSpec
from twinsft.promotion.decision import Evidence, decide

SPEC = PromotionSpec(margin_over_base=0.05)


def evidence(version="2", loss=2.0, eos=1.0, base_loss=3.0, base_eos=0.5, digest="rows", verified=True):
    return Evidence(version=version, rows_digest=digest, samples=8, reference_loss=loss, eos_rate=eos,
                    base_reference_loss=base_loss, base_eos_rate=base_eos, export_verified=verified)


def test_first_version_that_beats_its_base_is_staged():
    decision = decide("m", evidence(), None, "staging", SPEC)
    assert decision.promoted and decision.incumbent is None
    assert [c.name for c in decision.checks] == ["export_verified", "beats_base", "eos_not_below_base", "beats_stage"]
    assert decision.line() == ("m version 2 -> staging: export verified; reference loss 2.0000 vs base 3.0000 "
                               "(-33.3%, needs -5.0% or lower); EOS rate 1.00 vs base 0.50; no version in staging yet")


@pytest.mark.parametrize(("candidate", "failed"), [
    (evidence(loss=2.9), "beats_base"),            # -3.3%: lower, but not by the 5% margin
    (evidence(eos=0.25), "eos_not_below_base"),
    (evidence(verified=False), "export_verified"),
])
def test_each_base_check_can_refuse(candidate, failed):
    decision = decide("m", candidate, None, "staging", SPEC)
    assert not decision.promoted and [c.name for c in decision.failed] == [failed]


def test_against_the_staged_version_on_the_same_rows():
    staged = evidence(version="1", loss=1.8, eos=1.0)
    worse = decide("m", evidence(loss=2.0), staged, "staging", SPEC)
    assert not worse.promoted and worse.incumbent == "1"
    assert worse.line() == ("m version 2 not promoted to staging: reference loss 2.0000 vs staging version 1's "
                            "1.8000 (+11.1% on the same 8 rows)")
    better = decide("m", evidence(loss=1.7), staged, "staging", SPEC)
    assert better.promoted
    fewer_stops = decide("m", evidence(loss=1.7, eos=0.75), staged, "staging", SPEC)
    assert [c.name for c in fewer_stops.failed] == ["eos_not_below_stage"]


def test_other_rows_not_reevaluated_refuse_and_say_why():
    decision = decide("m", evidence(), evidence(version="1", loss=0.1, digest="other"), "staging", SPEC)
    assert not decision.promoted
    assert ("staging version 1 cannot be compared on these rows: it was evaluated on other held-out rows and "
            "promotion.reevaluate is false") in decision.line()


def test_force_passes_failed_checks_with_its_reason_but_never_a_failed_export():
    staged = evidence(version="1", loss=1.0)
    forced = decide("m", evidence(), staged, "production", SPEC, force_reason="hotfix for the demo")
    assert forced.promoted and forced.forced_reason == "hotfix for the demo"
    assert forced.metadata()["promotion_forced_reason"] == "hotfix for the demo"
    assert "forced: hotfix for the demo" in forced.line()
    broken = decide("m", evidence(verified=False), None, "production", SPEC, force_reason="please")
    assert not broken.promoted and broken.forced_reason is None
