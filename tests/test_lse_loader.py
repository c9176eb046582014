"""The official syncnet_v2.model loader (safe unpickling, exact layout) and the fast lip path."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_lse_reference import make_random_syncnet_file, official_s  # noqa: E402

from tfgbench.errors import TfgbenchError  # noqa: E402
from tfgbench.metrics.lse.syncnet import SyncNetConfig, SyncNetS, load_syncnet_v2  # noqa: E402


@pytest.mark.parametrize("with_nbt", [False, True])
def test_official_file_loads_key_for_key(tmp_path, with_nbt):
    path = tmp_path / "syncnet_v2.model"
    ref = make_random_syncnet_file(path, seed=5, num_batches_tracked=with_nbt)
    saved = torch.load(str(path), weights_only=True)
    assert len(saved) == (102 if with_nbt else 88)
    model = load_syncnet_v2(path)
    ours = model.state_dict()
    for k, v in ref.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(ours[k], v), k
    assert not model.training


def test_extra_missing_and_misshaped_keys_are_errors(tmp_path):
    state = official_s().state_dict()
    bad = dict(state, **{"module.extra": torch.zeros(1)})
    torch.save(bad, str(tmp_path / "extra.model"))
    with pytest.raises(TfgbenchError, match="unexpected keys"):
        load_syncnet_v2(tmp_path / "extra.model")
    missing = {k: v for k, v in state.items() if not k.startswith("netfclip.3")}
    torch.save(missing, str(tmp_path / "missing.model"))
    with pytest.raises(TfgbenchError, match="missing keys.*netfclip.3"):
        load_syncnet_v2(tmp_path / "missing.model")
    shaped = dict(state, **{"netfcaud.0.bias": torch.zeros(3)})
    torch.save(shaped, str(tmp_path / "shape.model"))
    with pytest.raises(TfgbenchError, match="netfcaud.0.bias has shape"):
        load_syncnet_v2(tmp_path / "shape.model")


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickles_needing_code_execution_are_refused(tmp_path, capsys):
    path = tmp_path / "evil.model"
    with open(path, "wb") as f:
        pickle.dump({"x": _Evil()}, f)
    with pytest.raises(TfgbenchError, match="weights_only=True"):
        load_syncnet_v2(path)
    assert "code ran" not in capsys.readouterr().out


@pytest.mark.parametrize("config", [SyncNetConfig.tiny(64), SyncNetConfig(image_size=112)])
def test_fast_lip_path_equals_window_by_window(config):
    torch.manual_seed(0)
    model = SyncNetS(config)
    for bn in [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]:
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
    model.eval()
    s = config.image_size
    clip = torch.rand(13, 3, s, s) * 255
    with torch.no_grad():
        windows = torch.stack([clip[v:v + 5].permute(1, 0, 2, 3) for v in range(8)])
        ref = model.forward_lip(windows)
        fast = model.embed_video(clip, 8, chunk=3)
    assert fast.shape == ref.shape
    assert torch.allclose(fast, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
