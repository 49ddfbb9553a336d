import copy

import pytest
import torch

from ecg_lightning.models import BeatResNet, StudyCNN, StudyCNNLSTM
from ecg_lightning.models.cnn import MatmulConv1d, study_conv_features
from ecg_lightning.models.dropout import FastDropout, ReluDropoutLinear, below_threshold, byte_table, mask_bits


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("length", [2160, 360])
def test_study_cnn_shape_and_size(length):
    net = StudyCNN(input_length=length)
    assert net(torch.randn(5, 1, length)).shape == (5,)
    assert n_params(net) == (1 * 8 * 4 + 8) + (8 * length + 1)
    if length == 2160:
        assert n_params(net) == 17_321  # the study's count


@pytest.mark.parametrize("length", [2160, 360])
def test_study_cnn_lstm_shape_and_size(length):
    net = StudyCNNLSTM(input_length=length)
    assert net(torch.randn(5, 1, length)).shape == (5,)
    lstm_in = 8 * length // 4
    # torch LSTM: 4 gates x (input + hidden weights + two biases)
    assert n_params(net) == 40 + 4 * 4 * (lstm_in + 4) + 2 * 4 * 4 + (4 + 1)


def test_cnn_lstm_rejects_windows_that_do_not_split():
    with pytest.raises(ValueError, match="n_steps=4"):
        StudyCNNLSTM(input_length=2162)


def test_same_padding_matches_keras():
    """Keras "same" with kernel 4 pads 1 on the left and 2 on the right."""
    features = study_conv_features(channels=1, kernel_size=4)
    conv = features[1]
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[1.0, 0.0, 0.0, 0.0]]]))
        conv.bias.zero_()
    x = torch.arange(1.0, 7.0).reshape(1, 1, 6)
    assert features(x).tolist() == [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]  # out[t] = x[t-1]


@pytest.mark.parametrize("leads", [1, 2])
def test_cnn_lstm_sees_sub_sequences_in_time_order(leads):
    """LSTM step t gets the CNN features of exactly the t-th quarter of the window (all leads of it)."""
    torch.manual_seed(0)
    net = StudyCNNLSTM(input_length=360, in_channels=leads).eval()
    x = torch.randn(3, leads, 360)
    steps = []
    net.lstm.register_forward_hook(lambda m, inp, out: steps.append(inp[0]))
    net(x)
    assert steps[0].shape == (3, 4, 8 * 90)
    for t in range(4):
        torch.testing.assert_close(steps[0][:, t], net.features(x[..., 90 * t : 90 * (t + 1)]))


def test_nets_take_several_leads_and_output_one_logit_per_class():
    x, rr = torch.randn(3, 2, 360), torch.randn(3, 8)
    from ecg_lightning.models import BeatResNet

    assert StudyCNN(input_length=360, in_channels=2, n_outputs=5)(x).shape == (3, 5)
    assert StudyCNNLSTM(input_length=360, in_channels=2, n_outputs=5)(x).shape == (3, 5)
    assert BeatResNet(input_length=360, in_channels=2, n_outputs=5, n_rr=8)(x, rr).shape == (3, 5)
    assert n_params(StudyCNN(input_length=360, in_channels=2, n_outputs=5)) == (2 * 8 * 4 + 8) + 5 * (8 * 360 + 1)


def test_resnet_pools_the_centre_beat():
    """The centre features come from the middle of the window: changing the centre changes them, changing the
    far edges hardly does."""
    from ecg_lightning.models import BeatResNet

    torch.manual_seed(0)
    net = BeatResNet(input_length=2160, center_s=0.4).eval()
    pooled = []
    net.head.register_forward_hook(lambda m, inp, out: pooled.append(inp[0][:, :64].clone()))
    x = torch.randn(1, 1, 2160)
    edges, centre = x.clone(), x.clone()
    edges[..., :200] += 3.0
    edges[..., -200:] += 3.0
    centre[..., 1000:1160] += 3.0
    for window in (x, edges, centre):
        net(window)
    edge_effect = (pooled[1] - pooled[0]).abs().sum()
    centre_effect = (pooled[2] - pooled[0]).abs().sum()
    assert centre_effect > 50 * edge_effect  # only the receptive field's far tail reaches the edges


def test_resnet_channels_last_path_equals_the_one_dimensional_modules():
    """BeatResNet runs its stages on (batch, channels, 1, time) channels-last tensors; the same modules on the
    (batch, channels, time) input give the same logits and gradients (float rounding apart), and the parameters
    keep nn.Conv1d / nn.BatchNorm1d shapes, so checkpoints of either layout load into the other."""
    torch.manual_seed(0)
    net = BeatResNet(input_length=720, in_channels=4, n_rr=8, n_outputs=5).train()
    reference = copy.deepcopy(net)
    x, rr = torch.randn(16, 4, 720), torch.randn(16, 8)

    torch.manual_seed(3)
    out = net(x, rr)
    torch.manual_seed(3)
    expected = reference.classify(reference.stages(reference.stem(x)), rr)  # 3-D all the way
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    out.square().sum().backward()
    expected.square().sum().backward()
    for (name, a), b in zip(net.named_parameters(), reference.parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-3, msg=name)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv1d)]
    assert len(convs) >= 9 and all(m.weight.dim() == 3 for m in convs)
    assert all(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules() if "BatchNorm" in type(m).__name__)
    with pytest.raises(ValueError, match="5-D"):
        net.stem[1](torch.zeros(2, 16, 1, 1, 8))


def test_resnet_with_and_without_rr():
    from ecg_lightning.models import BeatResNet

    net = BeatResNet(input_length=2160, n_rr=5)
    assert net(torch.randn(4, 1, 2160), torch.randn(4, 5)).shape == (4,)
    with pytest.raises(ValueError, match="rr_features"):
        net(torch.randn(4, 1, 2160))
    plain = BeatResNet(input_length=360)
    assert plain(torch.randn(4, 1, 360)).shape == (4,)
    assert sum(p.numel() for p in plain.parameters()) < sum(p.numel() for p in net.parameters())


def test_cnn_lstm_lstm_is_initialized_like_keras():
    net = StudyCNNLSTM(input_length=2160)
    fan_in, hidden = 8 * 540, 4
    glorot = (6 / (fan_in + hidden)) ** 0.5  # per gate, as Keras' glorot_uniform on (fan_in, hidden)
    assert net.lstm.weight_ih_l0.abs().max() <= glorot
    recurrent = net.lstm.weight_hh_l0[:hidden]
    torch.testing.assert_close(recurrent @ recurrent.T, torch.eye(hidden), atol=1e-5, rtol=0)  # orthogonal
    assert net.lstm.bias_ih_l0[hidden : 2 * hidden].tolist() == [1.0] * hidden  # forget gate
    assert net.lstm.bias_hh_l0.abs().sum() == 0
    torch_default = StudyCNNLSTM(input_length=2160, keras_init=False)
    assert torch_default.lstm.weight_ih_l0.abs().max() > 10 * glorot


@pytest.mark.parametrize("p", [0.5, 0.2, 0.25, 0.625])
def test_fast_dropout_keeps_one_minus_p_and_scales_by_its_inverse(p):
    """Keep rate within 5 sd of 1 - p over 2 M elements; kept values x / (1 - p), dropped ones exactly 0."""
    drop = FastDropout(p).train()
    x = torch.rand(1000, 2000) + 0.5  # no zeros of its own
    y = drop(x)
    kept = y != 0
    n, keep = x.numel(), 1 - p
    assert abs(kept.float().mean().item() - keep) < 5 * (keep * p / n) ** 0.5
    torch.testing.assert_close(y[kept], x[kept] / keep)
    # neighbours are independent: the lanes cut from one random word do not move together
    lanes = kept.flatten()[: n - n % 8].view(-1, 8).float()
    assert torch.corrcoef(lanes.T).triu(1).abs().max().item() < 0.01


def test_fast_dropout_threshold_is_exact_on_every_bit_pattern():
    """The mask's threshold rule, applied to every 16-bit integer, keeps exactly keep * 2**16 of them."""
    for keep in (1 - 2**-12, 2**-16, 3 * 2**-16):
        assert mask_bits(keep) == 16
        every = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)
        assert int(below_threshold(every, keep).sum()) == keep * 2**16
    assert mask_bits(0.8) == 32


@pytest.mark.parametrize(("keep", "bits"), [(0.5, 1), (0.75, 2), (0.25, 2), (0.375, 4), (5 / 32, 8), (1 - 2**-8, 8)])
def test_fast_dropout_byte_table_keeps_exactly_keep_of_every_byte_pattern(keep, bits):
    """Over all 256 bytes each of a byte's 8 / bits elements is kept by exactly keep * 256 of them (so a uniform
    random byte keeps each with probability keep), with multiplier 1 / keep, else 0."""
    assert mask_bits(keep) == bits
    table = byte_table(keep, bits)
    assert table.shape == (256, 8 // bits)
    assert (table != 0).sum(0).tolist() == [keep * 256] * (8 // bits)
    torch.testing.assert_close(table.unique(), torch.tensor([0.0, 1 / keep]))
    # the elements of one byte are its independent bit fields: every combination of kept/dropped occurs
    assert len({tuple(row) for row in (table != 0).tolist()}) == 2 ** (8 // bits)
    assert byte_table(keep, bits, torch.float64).dtype == torch.float64


def test_fast_dropout_is_seeded_identity_in_eval_and_refuses_bad_p():
    drop = FastDropout(0.5).train()
    x = torch.ones(64, 300)
    torch.manual_seed(3)
    a = drop(x)
    torch.manual_seed(3)
    b = drop(x)
    c = drop(x)
    assert torch.equal(a, b) and not torch.equal(b, c)
    assert drop.eval()(x) is x
    with pytest.raises(ValueError, match="p=1.0"):
        FastDropout(1.0)


def test_fast_dropout_gradient_is_the_mask_times_the_scale():
    drop = FastDropout(0.5).train()
    x = torch.randn(32, 100, requires_grad=True)
    y = drop(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() * 2.0)


@pytest.mark.parametrize(("p", "in_channels", "n_outputs"), [(0.5, 1, 1), (0.25, 2, 3), (0.2, 1, 1)])
def test_study_cnn_fused_head_equals_relu_dropout_linear_modules(p, in_channels, n_outputs):
    """The CPU training path (one ReluDropoutLinear node) gives the same logits and gradients as the separate
    modules (ReLU, flatten, FastDropout, Linear) drawing the same mask from the same seed."""
    torch.manual_seed(0)
    fused = StudyCNN(input_length=300, dropout=p, in_channels=in_channels, n_outputs=n_outputs).train()
    plain = StudyCNN(input_length=300, dropout=p, in_channels=in_channels, n_outputs=n_outputs).train()
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(16, in_channels, 300)
    target = torch.randn(16, n_outputs).squeeze(-1)
    torch.manual_seed(7)
    out = fused(x)
    torch.manual_seed(7)
    reference = plain.head(plain.features(x)).squeeze(-1)
    torch.testing.assert_close(out, reference)
    ((out - target) ** 2).sum().backward()
    ((reference - target) ** 2).sum().backward()
    for (name, a), b in zip(fused.named_parameters(), plain.parameters()):
        assert a.grad.abs().sum() > 0, name
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_study_cnn_fused_head_under_bf16_autocast_equals_the_modules():
    """bf16-mixed training on the CPU: the fused node follows autocast in its forward and backward."""
    torch.manual_seed(0)
    fused, plain = StudyCNN(input_length=300).train(), StudyCNN(input_length=300).train()
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(16, 1, 300)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(1)
        out = fused(x)
        torch.manual_seed(1)
        reference = plain.head(plain.features(x)).squeeze(-1)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, reference)
    out.float().sum().backward()
    reference.float().sum().backward()
    for a, b in zip(fused.parameters(), plain.parameters()):
        assert a.grad.dtype == torch.float32
        torch.testing.assert_close(a.grad, b.grad)


def test_relu_dropout_linear_gradient_matches_finite_differences():
    """torch.autograd.gradcheck in float64 with a fixed mask (the seed set before every evaluation)."""
    torch.manual_seed(0)
    x = torch.randn(6, 2, 20, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 40, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)

    def head(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(11)
        return ReluDropoutLinear.apply(x, weight, bias, 0.75)

    assert torch.autograd.gradcheck(head, (x, weight, bias))
    torch.manual_seed(11)
    dropped = (ReluDropoutLinear.apply(x, weight, bias, 0.75) - bias) != (x.relu().flatten(1) / 0.75) @ weight.T
    assert dropped.any()  # the mask drops something (the check is not of a plain ReLU-linear)


def _train_steps(seed: int, steps: int = 20) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = StudyCNN(input_length=360)
    x, y = torch.randn(32, 1, 360), (torch.arange(32) % 2).float()
    optimizer = torch.optim.Adam(net.parameters(), 1e-2)
    torch.manual_seed(seed)  # the dropout masks' seed
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.state_dict()


def test_study_cnn_training_repeats_exactly_with_one_seed():
    a, b, c = _train_steps(1), _train_steps(1), _train_steps(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["head.1.weight"], c["head.1.weight"])  # the masks really are drawn from the seed


@pytest.mark.parametrize(
    "in_channels,kernel,bias,stride,padding",
    [(1, 4, True, 1, 0), (2, 4, True, 1, 0), (4, 3, False, 1, 0), (1, 15, False, 4, 7), (3, 5, True, 2, 2)],
)
def test_matmul_conv_trains_like_the_standard_convolution(in_channels, kernel, bias, stride, padding):
    """Training-mode output and every gradient equal nn.Conv1d's with the same weights; eval is nn.Conv1d's own."""
    torch.manual_seed(0)
    ours = MatmulConv1d(in_channels, 8, kernel, stride=stride, padding=padding, bias=bias).train()
    plain = torch.nn.Conv1d(in_channels, 8, kernel, stride=stride, padding=padding, bias=bias)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(5, in_channels, 50, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    y, y2 = ours(x), plain(x2)
    g = torch.randn_like(y2)
    torch.testing.assert_close(y, y2)
    y.backward(g)
    y2.backward(g)
    torch.testing.assert_close(x.grad, x2.grad)
    for (name, p), p2 in zip(ours.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, p2.grad, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), plain(x))
