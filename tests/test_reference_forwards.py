"""What the networks compute: the study's two models against NumPy references written from the study's description,
the project's own networks against golden outputs for fixed weights and inputs.

Golden outputs live in tests/golden/networks.json; regenerate them only on purpose (a deliberate change of a
network), with the reason in the commit: ``python tests/test_reference_forwards.py --regenerate``.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ecg_lightning.models import BeatLinear, BeatResNet, BeatSequenceNet, StudyCNN, StudyCNNLSTM

GOLDEN = Path(__file__).parent / "golden" / "networks.json"


def fixed_weights(net: torch.nn.Module) -> torch.nn.Module:
    """Every parameter and buffer set from a formula (no random generator, so any torch version gives the same)."""
    with torch.no_grad():
        for k, (name, p) in enumerate(sorted(net.state_dict().items())):
            if not p.is_floating_point():
                continue
            values = torch.sin(torch.arange(p.numel(), dtype=torch.float64) * 0.37 + k)
            values = values * (2.0 / p[0].numel() ** 0.5 if p.dim() > 1 else 0.3)  # fan-in scaled weights
            if name.endswith("running_var"):
                values = 1.0 + values.abs()
            p.copy_(values.reshape(p.shape).to(p.dtype))
    return net.eval()


def fixed_input(*shape: int) -> torch.Tensor:
    n = int(np.prod(shape))
    i = torch.arange(n, dtype=torch.float64)
    return (torch.sin(i * 0.05) + torch.sin(i * 0.0071) ** 3 * 2).reshape(shape).float()


def numpy_same_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Keras Conv1D(padding="same", stride 1) on (batch, in, time): k - 1 zeros split floor left, ceil right."""
    k = w.shape[-1]
    left, right = (k - 1) // 2, (k - 1) - (k - 1) // 2
    xp = np.pad(x, ((0, 0), (0, 0), (left, right)))
    t = x.shape[-1]
    out = np.zeros((x.shape[0], w.shape[0], t))
    for j in range(k):  # one tap at a time
        out += np.einsum("oi,bit->bot", w[:, :, j], xp[:, :, j : j + t])
    return out + b[None, :, None]


def test_study_cnn_is_same_conv_relu_flatten_linear():
    """Conv1d(1->8, k=4, stride 1, "same", ReLU) -> flatten -> Dropout (identity when evaluating) -> Linear."""
    torch.manual_seed(1)
    net = StudyCNN(input_length=2160).eval()
    x = torch.randn(3, 1, 2160)
    conv, linear = net.features[1], net.head[1]
    w, b = conv.weight.double().detach().numpy(), conv.bias.double().detach().numpy()
    h = np.maximum(numpy_same_conv(x.double().numpy(), w, b), 0)
    expected = h.reshape(3, -1) @ linear.weight.double().detach().numpy().T + linear.bias.double().detach().numpy()
    np.testing.assert_allclose(net(x).double().detach().numpy(), expected[:, 0], rtol=1e-4, atol=1e-4)
    assert sum(p.numel() for p in net.parameters()) == 17_321  # the study's parameter count


def numpy_lstm(seq: np.ndarray, w_ih, w_hh, b_ih, b_hh) -> np.ndarray:
    """The last hidden state of an LSTM over (batch, steps, features); gates stacked input, forget, cell, output."""
    hidden = w_hh.shape[1]
    h = np.zeros((seq.shape[0], hidden))
    c = np.zeros_like(h)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for t in range(seq.shape[1]):
        z = seq[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = (z[:, q * hidden : (q + 1) * hidden] for q in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
    return h


def test_study_cnn_lstm_is_the_same_conv_on_four_sub_sequences_then_an_lstm_then_linear():
    torch.manual_seed(2)
    net = StudyCNNLSTM(input_length=2160).eval()
    x = torch.randn(2, 1, 2160).double().numpy()
    conv, lstm, head = net.features[1], net.lstm, net.head
    w, b = conv.weight.double().detach().numpy(), conv.bias.double().detach().numpy()
    # each 540-sample quarter convolved on its own ("same" padding at each quarter's edges), flattened
    steps = np.stack([np.maximum(numpy_same_conv(x[..., 540 * t : 540 * (t + 1)], w, b), 0).reshape(2, -1)
                      for t in range(4)], axis=1)  # fmt: skip
    params = [getattr(lstm, n).double().detach().numpy() for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                                                   "bias_hh_l0")]  # fmt: skip
    h = numpy_lstm(steps, *params)
    assert h.shape == (2, 4)  # LSTM(hidden 4)
    expected = h @ head.weight.double().detach().numpy().T + head.bias.double().detach().numpy()
    out = net(torch.from_numpy(x).float()).double().detach().numpy()
    np.testing.assert_allclose(out, expected[:, 0], rtol=1e-4, atol=1e-4)


def golden_cases() -> dict:
    """name -> (network with fixed weights, inputs): the project's own networks, as configured by default."""
    rr = fixed_input(2, 5)
    return {
        "beat_resnet": (fixed_weights(BeatResNet(input_length=720, n_rr=5, in_channels=4, n_outputs=5)),
                        (fixed_input(2, 4, 720), rr)),
        "beat_sequence": (fixed_weights(BeatSequenceNet(input_length=360, n_rr=5, in_channels=2, n_outputs=5)),
                          (fixed_input(2, 6, 2, 360), fixed_input(2, 6, 5))),
        "beat_sequence_contrast": (
            fixed_weights(BeatSequenceNet(input_length=360, n_rr=5, in_channels=2, n_outputs=5, contrast=True)),
            (fixed_input(2, 6, 2, 360), fixed_input(2, 6, 5))),
        "beat_linear": (fixed_weights(BeatLinear(input_length=360, n_rr=5, in_channels=1, n_outputs=5)),
                        (fixed_input(2, 1, 360), rr)),
    }  # fmt: skip


def outputs() -> dict[str, list]:
    with torch.no_grad():
        return {name: net(*inputs).double().reshape(-1).tolist() for name, (net, inputs) in golden_cases().items()}


@pytest.mark.parametrize("name", sorted(golden_cases()))
def test_networks_give_their_golden_outputs(name):
    golden = json.loads(GOLDEN.read_text())
    assert set(golden) == set(golden_cases())  # every network has its golden outputs
    net, inputs = golden_cases()[name]
    with torch.no_grad():
        out = net(*inputs).double().reshape(-1).numpy()
    np.testing.assert_allclose(out, golden[name], rtol=1e-4, atol=1e-5)
    assert np.ptp(out) > 1e-3  # outputs that vary: a constant network would not match by chance


if __name__ == "__main__" and "--regenerate" in sys.argv:
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(outputs(), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
