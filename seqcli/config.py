"""The `train:` section of a recipe, with the optimizers and schedules it names. Plain data;
nothing here imports torch. Each spec function's signature is the schema of its recipe keys
(`seqcli.train.optim` builds the torch objects)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated, Literal

from seqcli.schema import Range, Seed

Positive = Annotated[int, Range(1, 10**9)]


@dataclass
class TrainConfig:
    """Training loop settings; every field is a key of the recipe's `train:` section."""

    batch_size: Annotated[int, Range(1, 65536)] = 32
    seq_len: Annotated[int, Range(1, 65536)] = 64  # tokens per truncated-BPTT chunk (streaming tasks)
    max_steps: Positive | None = 1000  # the run's total steps (None: max_epochs alone decides)
    max_epochs: Positive | None = None  # also stop after this many passes over the training split
    optimizer: dict = field(default_factory=lambda: {"name": "adam", "lr": 0.002})
    scheduler: dict | None = None
    clip_grad_norm: Annotated[float, Range(0, lo_open=True)] | None = 5.0
    eval_every: Positive = 200
    eval_batches: Positive | None = None  # cap on batches per evaluation (None: the whole split)
    log_every: Positive = 50
    checkpoint_every: Positive | None = None  # also save last.pt between evaluations
    keep_checkpoints: Annotated[int, Range(1, 10_000)] = 1  # the last N are kept as step-N.pt
    nonfinite: Literal["stop", "skip"] = "stop"  # a NaN/Inf loss stops the run, or skips its batch
    patience: Positive | None = None  # stop after this many evaluations without a better main metric
    # the loss a step's gradient comes from: the mean over its targets, or each sequence's
    # summed loss averaged over the batch (Zaremba et al.'s code: the mean times seq_len)
    loss_reduction: Literal["token_mean", "sequence_sum"] = "token_mean"
    seed: Seed = 0
    device: str = "auto"
    tensorboard: bool = False  # also log to RUN_DIR/tensorboard (needs the tensorboard package)
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast matrix products to bfloat16 (weights stay fp32)
    threads: Annotated[int, Range(1, 1024)] | None = None  # compute threads (None: the cores, shared among local processes)
    mlflow: dict | None = None  # also log to MLflow: {tracking_uri, experiment, run_name, export} (see `mlflow` below)

    def to_dict(self) -> dict:
        return asdict(self)


Rate = Annotated[float, Range(0, 1000, lo_open=True)]
Decay = Annotated[float, Range(0, 1)]


def sgd(lr: Rate = 0.1, momentum: Annotated[float, Range(0, 1, hi_open=True)] = 0.0,
        weight_decay: Decay = 0.0, nesterov: bool = False):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""


Beta = Annotated[float, Range(0, 1, hi_open=True)]


def adam(lr: Rate = 0.001, betas: tuple[Beta, Beta] = (0.9, 0.999),
         eps: Annotated[float, Range(0, 1, lo_open=True)] = 1e-8, weight_decay: Decay = 0.0):
    """Adam."""


def adamw(lr: Rate = 0.001, betas: tuple[Beta, Beta] = (0.9, 0.999),
          eps: Annotated[float, Range(0, 1, lo_open=True)] = 1e-8, weight_decay: Decay = 0.01):
    """Adam with decoupled weight decay."""


Gamma = Annotated[float, Range(0, 1, lo_open=True)]
Start = Annotated[int, Range(1, 10**9)]


def step(step_size: Positive | None = None, every_epochs: Positive | None = None, start_step: Start | None = None,
         start_epoch: Start | None = None, gamma: Gamma = 0.5):
    """Multiply the learning rate by `gamma` every `step_size` steps or every `every_epochs`
    epochs (1000 steps when neither is given). The first decay comes after the first period,
    or at `start_step` / at the start of epoch `start_epoch` (epochs count from 1):
    `{start_epoch: 5, every_epochs: 1, gamma: 0.5}` trains epochs 1-4 at the full rate, then
    halves it at the start of every epoch from the 5th on."""


def milestones(steps: list[Start] | None = None, epochs: list[Start] | None = None, gamma: Gamma = 0.1):
    """Multiply the learning rate by `gamma` at each of the given steps, or at the start of
    each of the given epochs (counting from 1)."""


def plateau(factor: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)] = 0.5,
            patience: Annotated[int, Range(0, 10**6)] = 2,
            min_lr: Annotated[float, Range(0)] = 0.0):
    """Multiply the learning rate by `factor` when the validation loss has not improved for
    `patience` evaluations."""


def cosine(min_lr: Annotated[float, Range(0)] = 0.0, warmup_steps: Annotated[int, Range(0, 10**9)] = 0):
    """Linear warm-up, then cosine decay to `min_lr` at the run's last step (train.max_steps,
    or max_epochs times the batches per epoch)."""


ForgetBias = Annotated[float, Range(-100, 100)] | None
Gain = Annotated[float, Range(0, 100, lo_open=True)]
Scale = Annotated[float, Range(0, 100, lo_open=True)]


def default(forget_bias: ForgetBias = None, embedding_scale: Scale | None = None):
    """Each layer's own initialisation (recurrent layers: PyTorch's U(-1/sqrt(H), 1/sqrt(H));
    embeddings N(0, 1))."""


def uniform(scale: Scale = 0.1, forget_bias: ForgetBias = None, embedding_scale: Scale | None = None):
    """Every parameter drawn from U(-scale, scale), as in Zaremba et al. (2014)."""


def xavier(gain: Gain = 1.0, forget_bias: ForgetBias = None, embedding_scale: Scale | None = None):
    """Weight matrices Xavier-uniform (Glorot & Bengio, 2010), each gate's block on its own;
    biases zero."""


def orthogonal(gain: Gain = 1.0, forget_bias: ForgetBias = None, embedding_scale: Scale | None = None):
    """Recurrent (state-to-state) weights orthogonal, each gate's block on its own (Saxe et
    al., 2014); the other weight matrices Xavier-uniform; biases zero."""


# In any scheme, `forget_bias` sets the LSTM forget gate's bias (Jozefowicz et al., 2015 use
# 1), and `embedding_scale` draws every embedding (and an output layer tied to it) from
# U(-s, s), as PyTorch's word_language_model and AWD-LSTM do with 0.1.
INITS = {"default": default, "uniform": uniform, "xavier": xavier, "orthogonal": orthogonal}
def ntasgd(lr: Rate = 30.0, weight_decay: Decay = 0.0, nonmono: Annotated[int, Range(1, 10**6)] = 5):
    """Non-monotonically triggered averaged SGD (AWD-LSTM): SGD until the validation loss is
    worse than the best of all but the last `nonmono` evaluations, then SGD with the weights
    averaged from there on; the average is evaluated, saved for sampling and kept."""


OPTIMIZERS = {"sgd": sgd, "adam": adam, "adamw": adamw, "ntasgd": ntasgd}
SCHEDULERS = {"step": step, "milestones": milestones, "plateau": plateau, "cosine": cosine}


def mlflow(tracking_uri: str | None = None, experiment: str = "seqcli", run_name: str | None = None,
           export: bool = False):
    """Log the run to MLflow: the resolved recipe as params, every training and validation
    record as metrics, the recipe and sample (and with `export`, the model exported as ONNX)
    as artifacts. `tracking_uri`: a server (http://host:5000), a folder (file:///path), or
    None for MLflow's own default (MLFLOW_TRACKING_URI, else ./mlruns); `run_name`: default,
    the run folder's name."""
