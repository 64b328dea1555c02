"""The benchmark's profile reader, on a hand-made trace: idle GPU time is charged to the code that ran."""

import json

from bench.gpu_gaps import summarize


def test_gpu_gaps_charges_idle_time_to_the_host_code_that_ran(tmp_path):
    def x(cat, name, ts, dur):
        return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur}

    events = [
        x("kernel", "gemm", 0, 1000), x("kernel", "gemm", 900, 1100),  # overlap: one busy block 0-2000 us
        x("kernel", "gemm", 5000, 1000),  # 3 ms idle before it
        x("gpu_memcpy", "copy", 6500, 500),  # 0.5 ms idle before it
        x("python_function", "/x/site-packages/transformers/trainer.py(1859): _track_num_input_tokens", 1900, 3050),
        x("python_function", "/x/site-packages/torch/_tensor.py(10): item", 1950, 100),
        x("python_function", "/x/twinsft/training/callbacks.py(40): on_log", 6000, 400),
    ]
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps({"traceEvents": events}))
    out = summarize(trace)
    assert "7.0 ms from first to last GPU work, GPU busy 50.0%" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "ms |" not in line]
    assert rows[0] == "| 3.0 | 1 | transformers/trainer.py(1859): _track_num_input_tokens |"
    assert rows[1] == "| 0.5 | 1 | twinsft/training/callbacks.py(40): on_log |"


def test_kernel_time_sums_each_family_and_lists_the_largest_kernels(tmp_path):
    from bench.gpu_gaps import kernel_time

    def k(name, dur):
        return {"ph": "X", "cat": "kernel", "name": name, "ts": 0, "dur": dur}

    events = [k("nvjet_sm90_qqtst_128x128_128x6_1x2_h_bz_ovscale_TNT", 3000), k("nvjet_sm90_tst_256x128_NNT", 4000),
              k("nvjet_sm90_tst_256x128_NNT", 2000), k("void at::native::float8_copy_kernel_cuda", 500),
              k("cudnn_generated_fort_native_sdpa_sm90_flash_bprop", 500),
              {"ph": "X", "cat": "python_function", "name": "x.py(1): f", "ts": 0, "dur": 99999}]
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps({"traceEvents": events}))
    out = kernel_time(trace, top=2)
    assert "10.0 ms of kernels" in out
    assert "| bf16/fp32 matmul | 6.0 | 60.0% |" in out and "| FP8 matmul | 3.0 | 30.0% |" in out
    assert "| copies, casts, elementwise | 0.5 | 5.0% |" in out and "| attention | 0.5 | 5.0% |" in out
    listed = [line for line in out.split("top 2 kernels:")[1].splitlines()
              if line.startswith("| ") and "calls" not in line]
    assert listed[0].startswith("| 6.0 | 2 | 60.0% | bf16/fp32 matmul | nvjet_sm90_tst_256x128_NNT")
    assert len(listed) == 2
