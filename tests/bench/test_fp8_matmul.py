"""The FP8 backward `bench.fp8_matmul` times: the weight's row scales folded into dY give dY W up to e4m3 rounding,
the same error the FP8 forward has."""

from bench.fp8_matmul import check_on_cpu, quantize_blocks, quantize_rows


def test_the_folded_fp8_backward_computes_dy_w_as_closely_as_the_forward_computes_x_wt():
    errors = check_on_cpu()
    assert 0.01 < errors["forward_rel_err"] < 0.06  # e4m3 keeps 3 mantissa bits: a few percent, never exact
    assert 0.01 < errors["backward_rel_err"] < 0.06
    assert abs(errors["backward_rel_err"] - errors["forward_rel_err"]) < 0.01


def test_row_and_block_scales_put_each_group_s_largest_value_at_the_e4m3_maximum():
    import torch

    w = torch.randn(256, 384) * 0.02
    q, s = quantize_rows(w)
    assert s.shape == (256, 1) and torch.equal(q.float().abs().amax(dim=1), torch.full((256,), 448.0))
    bq, bs = quantize_blocks(w)
    assert bs.shape == (2, 3)
    assert torch.equal(bq.float().view(2, 128, 3, 128).abs().amax(dim=(1, 3)), torch.full((2, 3), 448.0))
