"""``python -m zoo.bench`` runs for every registered generation (tiny sizes) and reports sane numbers."""
import pytest

from zoo import registry
from zoo.apps.bench import bench

TINY = dict(resolution=16, batch=8, channel_base=256, channel_max=16, min_seconds=0, warmup=1, tune_allocator=False)


@pytest.mark.parametrize("model", registry.names())
def test_bench_inference_and_train(model, capsys):
    results = bench(dict(TINY, model=model, z_dim=16, **({} if model == "progan" else {"w_dim": 16})))
    out = capsys.readouterr().out
    assert [r["mode"] for r in results] == ["inference", "train"]
    inference, train = results
    assert inference["img_per_s"] > 0 and inference["params_G"] > 0
    assert train["sec_per_kimg"] > 0 and train["iters"] >= 1 and train["params_D"] > 0
    assert f"{model}" in out and "img/s" in out and "s/kimg" in out
