"""Wav2Lip weights load exactly from every container they ship in, without running pickled code."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import pytest
import torch

from baselines.wav2lip.checkpoint import is_torchscript_archive, match_state_dict, read_state_dict
from baselines.wav2lip.model import Wav2Lip
from tfgbench.errors import TfgbenchError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.torch.load. received a zip file")


def random_generator(width: float = 0.25, seed: int = 0) -> Wav2Lip:
    torch.manual_seed(seed)
    model = Wav2Lip(width).eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * 0.1 + (1.0 if name.endswith("running_var") else 0.0)).abs_()
            else:
                tensor.fill_(7)   # num_batches_tracked
    return model


def assert_same(state: dict, model: torch.nn.Module) -> None:
    expected = model.state_dict()
    assert list(state) == list(expected) or set(state) == set(expected)
    for k, v in expected.items():
        assert torch.equal(state[k], v), k


@pytest.fixture(scope="module")
def model() -> Wav2Lip:
    return random_generator()


def test_training_dict_with_module_prefixes(tmp_path, model):
    path = tmp_path / "wav2lip.pth"
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "optimizer": {"state": {}, "param_groups": []}, "global_step": 3,
                "global_epoch": 1}, path)
    loaded, container = read_state_dict(path)
    assert container == "torch-dict"
    assert_same(loaded, model)


def test_bare_state_dict(tmp_path, model):
    path = tmp_path / "bare.pth"
    torch.save(model.state_dict(), path)
    loaded, container = read_state_dict(path)
    assert container == "state-dict"
    target = Wav2Lip(0.25)
    match_state_dict(target, loaded, path)
    assert_same(target.state_dict(), model)


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_archive_is_read_without_jit_load(tmp_path, model, how, monkeypatch):
    path = tmp_path / f"{how}.pth"
    if how == "script":
        torch.jit.save(torch.jit.script(model), path)
    else:
        torch.jit.save(torch.jit.trace(model, (torch.randn(1, 1, 80, 16), torch.rand(1, 6, 96, 96))), path)
    assert is_torchscript_archive(path)
    # torch 2.13 refuses TorchScript under weights_only=True, which is why the archive is read by hand
    with pytest.raises(RuntimeError, match="TorchScript"):
        torch.load(path, weights_only=True)

    def no_jit(*args, **kwargs):
        raise AssertionError("torch.jit.load must not be used: it runs the archive's code")
    monkeypatch.setattr(torch.jit, "load", no_jit)
    loaded, container = read_state_dict(path)
    assert container == "torchscript"
    assert_same(loaded, model)
    target = Wav2Lip(0.25)
    match_state_dict(target, loaded, path)
    x = (torch.randn(2, 1, 80, 16), torch.rand(2, 6, 96, 96))
    with torch.no_grad():
        assert torch.equal(target.eval()(*x), model(*x))


def test_torchscript_archive_of_a_wrapper_module_loads_without_its_prefix(tmp_path, model):
    from baselines.wav2lip.checkpoint import strip_common_prefix

    wrapper = torch.nn.Module()
    wrapper.model = model
    path = tmp_path / "wrapped.pth"
    torch.jit.save(torch.jit.script(wrapper), path)
    loaded, _ = read_state_dict(path)
    assert "model.output_block.1.bias" in loaded
    assert_same(strip_common_prefix(loaded, "face_encoder_blocks.0.0.conv_block.0.weight"), model)
    # a key outside the prefix keeps the state as it is (and loading then names the strays)
    loaded["stray"] = torch.zeros(1)
    assert strip_common_prefix(loaded, "face_encoder_blocks.0.0.conv_block.0.weight") is loaded


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_torchscript_archive_with_foreign_globals_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"x": _Exploit()}, protocol=2))
        z.writestr("evil/code/__torch__/m.py", "")
        z.writestr("evil/version", "3")
    with pytest.raises(TfgbenchError, match=r"evil\.pth.*refusing to unpickle .*system"):
        read_state_dict(path)


def test_missing_extra_and_misshapen_keys_are_named(tmp_path, model):
    state = dict(model.state_dict())
    del state["output_block.1.bias"]
    state["audio_encoder.99.weight"] = torch.zeros(1)
    state["face_encoder_blocks.0.0.conv_block.0.bias"] = torch.zeros(5)
    path = tmp_path / "broken.pth"
    torch.save({"state_dict": state}, path)
    loaded, _ = read_state_dict(path)
    with pytest.raises(TfgbenchError) as err:
        match_state_dict(Wav2Lip(0.25), loaded, path)
    text = str(err.value)
    assert "broken.pth" in text
    assert "missing: output_block.1.bias" in text
    assert "unexpected: audio_encoder.99.weight" in text
    assert "face_encoder_blocks.0.0.conv_block.0.bias (5,) != (4,)" in text


def test_plain_pickle_objects_are_refused(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": {}, "args": io.StringIO("x")}, path)
    with pytest.raises(TfgbenchError, match="pickled.pth"):
        read_state_dict(path)


def test_plugin_detects_official_size_from_shapes(tmp_path):
    from baselines.wav2lip.plugin import Wav2LipModel

    official = random_generator(width=1.0, seed=1)
    path = tmp_path / "wav2lip_gan.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in official.state_dict().items()}}, path)
    plugin = Wav2LipModel(checkpoint=path)
    net = plugin.network()
    assert net.width == 1.0
    assert_same(net.state_dict(), official)
    info = plugin.info
    assert info.training_data == "LRS2 (official)" and info.reference_frame == "same"
    import hashlib
    assert info.checkpoint_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
