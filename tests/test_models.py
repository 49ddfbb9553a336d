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


def test_cnn_lstm_sees_sub_sequences_in_time_order():
    """Changing only the last quarter of the window changes the output; the LSTM runs over 4 steps."""
    torch.manual_seed(0)
    net = StudyCNNLSTM(input_length=360).eval()
    x = torch.randn(1, 1, 360)
    y = x.clone()
    y[..., 270:] += 1.0
    assert not torch.allclose(net(x), net(y))
    steps = []
    net.lstm.register_forward_hook(lambda m, inp, out: steps.append(inp[0].shape))
    net(x)
    assert steps == [torch.Size([1, 4, 8 * 90])]


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
