"""``.pdparams`` reading: safety, damage, prefixes, the PaddleSeg <= 2.6 layout."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

import liteseg
from liteseg.errors import ArchitectureError, FormatError, UnsafePickleError
from liteseg.formats import normalize_paddle_keys, read_pdparams

from .paddle_variants import legacy_pdparams


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/liteseg_pwned",))


def test_malicious_pickle_is_refused_not_executed(tmp_path):
    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps({"a": _Evil()}))
    if os.path.exists("/tmp/liteseg_pwned"):
        os.unlink("/tmp/liteseg_pwned")
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        liteseg.load(path)
    assert not os.path.exists("/tmp/liteseg_pwned")


def test_truncated_file_gives_clear_error(fixture_dir, tmp_path):
    path = tmp_path / "cut.pdparams"
    path.write_bytes((fixture_dir / "weights.pdparams").read_bytes()[:100_000])
    with pytest.raises(FormatError, match="truncated or corrupt"):
        liteseg.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        liteseg.load(tmp_path / "nope.pdparams")


def test_not_a_dict(tmp_path):
    path = tmp_path / "list.pdparams"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(FormatError, match="expected a dict"):
        read_pdparams(path)


def test_mapping_rule_is_one_to_one_except_bn_statistics(fixture_dir):
    raw = read_pdparams(fixture_dir / "weights.pdparams")
    mapped = normalize_paddle_keys(raw)
    expected = [k.replace("._mean", ".running_mean").replace("._variance", ".running_var") for k in raw]
    assert list(mapped) == expected
    model_keys = [k for k in liteseg.create_model("pp_liteseg_t").state_dict() if "num_batches" not in k]
    assert list(mapped) == model_keys


@pytest.mark.parametrize("prefix", ["model.", "net."])
def test_wrapper_prefix_is_stripped(fixture_dir, tmp_path, prefix, fixture_model):
    raw = read_pdparams(fixture_dir / "weights.pdparams")
    path = tmp_path / "prefixed.pdparams"
    path.write_bytes(pickle.dumps({prefix + k: v for k, v in raw.items()}, protocol=4))
    model = liteseg.load(path).model
    for a, b in zip(model.state_dict().values(), fixture_model.state_dict().values()):
        assert torch.equal(a, b)


def test_paddleseg_25_layout(fixture_dir, tmp_path, fixture_inputs):
    """Alias keys, conv_last, no _scale, protocol 2: loads and equals our model with _scale forced to 1."""
    path = legacy_pdparams(fixture_dir / "weights.pdparams", tmp_path / "legacy.pdparams")
    loaded = liteseg.load(path)
    assert sorted(loaded.report.kept_default) == [f"ppseg_head.arm_list.{i}._scale" for i in range(3)]
    reference = liteseg.load(fixture_dir / "weights.pdparams").model
    with torch.no_grad():
        for arm in reference.ppseg_head.arm_list:
            arm._scale.fill_(1.0)
        x = torch.from_numpy(fixture_inputs["256x512"])
        assert torch.equal(loaded.model(x), reference(x))


def test_inconsistent_alias_is_refused(fixture_dir, tmp_path):
    path = legacy_pdparams(fixture_dir / "weights.pdparams", tmp_path / "legacy.pdparams")
    data = read_pdparams(path)
    data["backbone.x8.0.1.conv_list.0.conv.weight"] = data["backbone.x8.0.1.conv_list.0.conv.weight"] + 1
    path.write_bytes(pickle.dumps(dict(data)))
    with pytest.raises(FormatError, match="disagrees"):
        liteseg.load(path)


def test_numpy2_module_names_are_accepted(tmp_path):
    arr = np.arange(6, dtype="float32").reshape(2, 3)
    data = pickle.dumps({"w": arr}, protocol=4).replace(b"numpy.core.multiarray", b"numpy._core.multiarray")
    path = tmp_path / "np2.pdparams"
    path.write_bytes(data)
    np.testing.assert_array_equal(read_pdparams(path)["w"], arr)


def test_shape_mismatch_names_the_tensor(fixture_dir, tmp_path):
    raw = dict(read_pdparams(fixture_dir / "weights.pdparams"))
    raw["ppseg_head.cm.conv_out._conv.weight"] = np.zeros((128, 128, 1, 1), "float32")
    path = tmp_path / "bad.pdparams"
    path.write_bytes(pickle.dumps(raw))
    with pytest.raises(ArchitectureError, match=r"ppseg_head.cm.conv_out._conv.weight: file \[128, 128, 1, 1\]"):
        liteseg.load(path)


def test_wrong_number_of_classes(fixture_dir):
    with pytest.raises(ArchitectureError, match="19 classes but num_classes=11"):
        liteseg.load(fixture_dir / "weights.pdparams", num_classes=11)
    loaded = liteseg.load(fixture_dir / "weights.pdparams", num_classes=11, reinit_head=True)
    assert loaded.model.seg_heads[0].conv_out.weight.shape[0] == 11
    assert len(loaded.report.reinitialized) == 3
    assert len(loaded.meta.class_names) == 11


def test_wrong_architecture_is_reported(fixture_dir):
    with pytest.raises(ArchitectureError, match="not a pp_liteseg_b"):
        liteseg.load(fixture_dir / "weights.pdparams", arch="pp_liteseg_b")


def test_unknown_architecture(tmp_path):
    path = tmp_path / "other.pdparams"
    path.write_bytes(pickle.dumps({"conv.weight": np.zeros((1, 1, 1, 1), "float32")}))
    with pytest.raises(ArchitectureError, match="unknown architecture"):
        liteseg.load(path)


def test_b_roundtrip_through_pdparams(tmp_path):
    """B has no fixture: write a random B as Paddle would (keys, _mean/_variance) and read it back."""
    torch.manual_seed(1)
    model = liteseg.create_model("pp_liteseg_b", num_classes=7)
    raw = {k.replace("running_mean", "_mean").replace("running_var", "_variance"): v.numpy()
           for k, v in model.state_dict().items() if "num_batches" not in k}
    path = tmp_path / "b.pdparams"
    path.write_bytes(pickle.dumps(raw, protocol=4))
    loaded = liteseg.load(path)
    assert loaded.meta.arch == "pp_liteseg_b" and loaded.meta.num_classes == 7
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key
