import pytest
import torch

from ecg_lightning.models import StudyCNN, StudyCNNLSTM
from ecg_lightning.models.cnn import study_conv_features


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
