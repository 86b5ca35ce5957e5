import pytest
import torch

# Test tensors are tiny: extra intra-op threads only add synchronisation (costly on a busy machine).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _empty_torch_home(tmp_path_factory, monkeypatch):
    """No test sees the machine's torch cache (torchvision's weights files: VGG19, AlexNet): a test that needs one writes it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))
