"""The loss-trajectory check's verdict: an FP8 case against its 16-bit-base twin, both losses within tolerance."""

from bench.loss_trajectory import compare, table


def row(case, final, held, tokens_per_s=1000.0):
    return {"case": case, "steps": 30, "train_losses": [12.6, final], "final_train_loss": final,
            "last5_train_loss": final, "eval_loss_before": 12.6, "eval_loss_after": held,
            "tokens_per_s": tokens_per_s, "peak_gib": 40.0, "micro_batch": 4, "accumulation": 4, "card": "GPU"}


def test_an_fp8_case_passes_only_with_both_losses_within_tolerance_of_its_twin():
    twin = row("unsloth-lora-mb4-nockpt-len350", 10.0, 11.0, 1000.0)
    close = row("unsloth-lora-mb4-nockpt-fp8-len350", 10.09, 10.9, 1300.0)
    far = row("unsloth-lora-mb4-nockpt-fp8block-len350", 10.0, 11.2)
    verdicts = compare([twin, close, far], tolerance=0.01)
    assert [v["case"] for v in verdicts] == [close["case"], far["case"]]  # the twin is compared with nothing
    assert verdicts[0] == {"case": close["case"], "twin": twin["case"], "final_train_loss_rel": 0.009,
                           "eval_loss_rel": -0.00909, "speed_vs_twin": 1.3, "passed": True}
    assert not verdicts[1]["passed"] and verdicts[1]["eval_loss_rel"] == 0.01818
    text = table([twin, close, far], verdicts, 0.01)
    assert ("| unsloth-lora-mb4-nockpt-fp8-len350 | unsloth-lora-mb4-nockpt-len350 | +0.90% | -0.91% | 1.30x | yes |"
            in text)
    assert text.rstrip().endswith("| NO |")
