"""``python -m zoo.bench`` runs for every registered generation (tiny sizes) and reports sane numbers;
fp32 and mixed precision side by side where the CPU runs mixed faster."""
import pytest

from zoo import registry
from zoo.apps.bench import bench
from zoo.ops.precision import cpu_supports_bf16

TINY = dict(resolution=16, batch=8, channel_base=256, channel_max=16, min_seconds=0, warmup=1, tune_allocator=False)


@pytest.mark.parametrize("model", registry.names())
def test_bench_inference_and_train(model, capsys):
    results = bench(dict(TINY, model=model, z_dim=16, precision="fp32", **({} if model == "progan" else {"w_dim": 16})))
    out = capsys.readouterr().out
    assert [(r["mode"], r["precision"]) for r in results] == [("inference", "fp32"), ("train", "fp32")]
    inference, train = results
    assert inference["img_per_s"] > 0 and inference["params_G"] > 0
    assert train["sec_per_kimg"] > 0 and train["iters"] >= 1 and train["params_D"] > 0
    assert f"{model}" in out and "img/s" in out and "s/kimg" in out


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no bf16 arithmetic: zoo.bench times fp32 only")
def test_bench_compares_fp32_and_mixed_side_by_side(capsys):
    results = bench(dict(TINY, model="stylegan2", z_dim=16, w_dim=16, mapping_layers=2))
    assert [(r["mode"], r["precision"]) for r in results] == [("inference", "fp32"), ("inference", "mixed"),
                                                              ("train", "fp32"), ("train", "mixed")]
    assert results[1]["speedup_vs_fp32"] > 0 and results[3]["speedup_vs_fp32"] > 0
    assert "mixed/fp32 speed-up" in capsys.readouterr().out
