import torch

from gantk.systems import ImagePool


def test_fills_then_mixes_stored_and_new():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # while filling, the new images come back
    returned_old = returned_new = 0
    for round_ in range(200):
        new = torch.full((1, 1, 1, 1), 100.0 + round_)
        out = pool.query(new)
        if torch.equal(out, new):
            returned_new += 1
        else:
            returned_old += 1
        assert len(pool.images) == 4  # never more than its size
    assert 70 < returned_old < 130 and returned_old + returned_new == 200  # p = 0.5


def test_returned_old_image_is_replaced_by_the_new_one():
    torch.manual_seed(1)
    pool = ImagePool(1)
    pool.query(torch.zeros(1, 1, 1, 1))
    for value in range(1, 50):
        before = pool.images[0].clone()
        out = pool.query(torch.full((1, 1, 1, 1), float(value)))
        if not torch.equal(out, torch.full((1, 1, 1, 1), float(value))):
            assert torch.equal(out, before)
            assert pool.images[0].item() == value


def test_size_zero_is_a_pass_through_and_state_round_trips():
    assert torch.equal(ImagePool(0).query(torch.ones(2, 3, 4, 4)), torch.ones(2, 3, 4, 4))
    pool = ImagePool(3)
    pool.query(torch.randn(2, 3, 4, 4))
    restored = ImagePool(3)
    restored.load_state_dict(pool.state_dict())
    assert len(restored.images) == 2 and all(torch.equal(a, b) for a, b in zip(pool.images, restored.images))


def test_images_restored_on_the_cpu_follow_the_fakes_to_their_device():
    # Checkpoints are read on the CPU; the "meta" device stands in for a GPU.
    pool = ImagePool(2)
    pool.query(torch.randn(2, 3, 4, 4))
    restored = ImagePool(2)
    restored.load_state_dict(pool.state_dict())
    out = restored.query(torch.empty(4, 3, 4, 4, device="meta"))
    assert out.device.type == "meta"
    assert {image.device.type for image in restored.images} == {"meta"}
