"""The training step as one tensor program: no host synchronisation, in-place updates, device-side inputs.

:func:`avb_zoo.training.step.train_step` is the reference (the eager engine). This module computes the same
iteration of Algorithm 1 (or the VAE) in a form that torch.compile can trace whole and a CUDA graph can
capture and replay:

* gradients come from ``torch.func.grad`` of one scalar whose gradient with respect to the primal
  parameters is the primal loss's and with respect to the adversary's parameters is the adversary loss's
  (the adversary's parameters are detached inside the primal loss and z is detached inside the adversary
  loss), so a single backward pass serves both players;
* Adam is applied functionally to the tensors torch.optim.Adam keeps (its state dict, and so checkpoints,
  stay the same), written back in place so every tensor keeps its address;
* a step whose losses are not finite updates nothing, and no later step updates either: ``first_bad``
  records the step on the device, and the trainer stops there (the eager engine's rule, decided without a
  host round trip);
* the step counter is a device tensor that the program advances itself.

Inputs come either from the host (the eager engine's keyed generators, so the compiled engine can be
checked against eager draw for draw) or from :class:`DeviceInputs`: images resident on the device, batch
indices from the keyed epoch permutations, and binarisation and noise from the counter-based generator of
:mod:`avb_zoo.training.device_noise`, keyed by (seed, step) like every other draw in the project.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad

from avb_zoo.catalogue.recipes import TrainSettings
from avb_zoo.compute.precision import autocast
from avb_zoo.errors import ConfigError
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.objectives import (
    adversary_loss,
    avb_losses_from_terms,
    encoder_contrast_inputs,
    vae_losses_from_terms,
)
from avb_zoo.training import device_noise
from avb_zoo.training.batches import BatchSource, ImageBatches, NoData, ToyBatches
from avb_zoo.training.players import PrimalPlayer
from avb_zoo.training.schedule import base_lrs, lr_factor_tensor
from avb_zoo.training.step import draw_noise

NOISE_STREAMS = ("host", "device")
INDEX_BLOCK = 1024  # steps of batch indices uploaded at once


@dataclass
class StepInputs:
    """One step's minibatch and, per (adversary) sub-step, its encoder noise and contrast samples."""

    x: torch.Tensor
    eps: list[torch.Tensor]
    z_contrast: list[torch.Tensor]


class HostInputs:
    """The eager engine's inputs: drawn on the host by keyed generators, then moved to the device."""

    def __init__(self, model: AVBModel, source: BatchSource, settings: TrainSettings, seed: int) -> None:
        self.model, self.source, self.settings, self.seed = model, source, settings, seed
        self.subs = settings.adversary_steps if model.adversary is not None else 1

    def __call__(self, step: int) -> StepInputs:
        b = self.settings.batch_size
        x = self.source.batch(self.seed, step, b).to(self.model.device, self.model.dtype)
        draws = [draw_noise(self.model, self.seed, step, b, sub)[:2] for sub in range(self.subs)]
        return StepInputs(x, [d[0] for d in draws], [d[1] for d in draws])


class DeviceInputs:
    """Inputs made on the device from the step tensor alone (what a captured graph can replay).

    Images stay resident; the host uploads batch indices (the keyed epoch permutations of
    :class:`ImageBatches`) in blocks of ``INDEX_BLOCK`` steps; binarisation and noise are Philox draws keyed
    by (seed, stream, step, sub-step).
    """

    def __init__(self, model: AVBModel, source: BatchSource, settings: TrainSettings, seed: int) -> None:
        self.seed, self.batch_size = seed, settings.batch_size
        self.device, self.dtype = model.device, model.dtype
        self.noise_dim, self.latent_dim = model.noise_dim, model.latent_dim
        self.subs = settings.adversary_steps if model.adversary is not None else 1
        self.source = source
        if isinstance(source, ImageBatches):
            self.images = source.probs.to(self.device)
            self.scale = source.scale
            self.binarize = source.binarize
            self.table = torch.zeros(INDEX_BLOCK, self.batch_size, dtype=torch.int64, device=self.device)
            self.table_start = torch.zeros((), dtype=torch.int64, device=self.device)
            self.loaded: int | None = None
        elif not isinstance(source, ToyBatches | NoData):
            raise ConfigError(f"device-side inputs do not support data of type {type(source).__name__}")
        self.x_dim = source.x_dim

    def prepare(self, step: int) -> None:
        """Upload the block of batch indices holding ``step`` (host side; call before running that step)."""
        if not isinstance(self.source, ImageBatches):
            return
        start = step - step % INDEX_BLOCK
        if self.loaded == start:
            return
        block = self.source.indices_block(self.seed, start, INDEX_BLOCK, self.batch_size)
        self.table.copy_(block)
        self.table_start.fill_(start)
        self.loaded = start

    def _x(self, step: torch.Tensor) -> torch.Tensor:
        b = self.batch_size
        if isinstance(self.source, NoData):
            return torch.zeros(b, 0, dtype=self.dtype, device=self.device)
        if isinstance(self.source, ToyBatches):
            u = device_noise.uniform(self.seed, "binarize", step, 0, (b,), torch.float32)
            which = (u * 4).long().clamp_(max=3)
            return torch.nn.functional.one_hot(which, 4).to(self.dtype)
        row = (step - self.table_start).reshape(1)
        index = self.table.index_select(0, row).reshape(b)
        p = self.images.index_select(0, index).to(self.dtype) * self.scale
        if not self.binarize:
            return p
        u = device_noise.uniform(self.seed, "binarize", step, 0, tuple(p.shape), self.dtype)
        return (u <= p).to(self.dtype)

    def __call__(self, step: torch.Tensor) -> StepInputs:
        b, dt = self.batch_size, self.dtype
        eps = [device_noise.normal(self.seed, "eps", step, s, (b, self.noise_dim), dt) for s in range(self.subs)]
        zc = [device_noise.normal(self.seed, "contrast", step, s, (b, self.latent_dim), dt) for s in range(self.subs)]
        return StepInputs(self._x(step), eps, zc)


class FunctionalAdam:
    """torch.optim.Adam's update (single-tensor form, no weight decay or amsgrad) on its own state tensors.

    The state lives in the optimizer (``exp_avg``, ``exp_avg_sq``, ``step``), so checkpoints and a later eager
    step see it; the update is skipped where ``ok`` is false.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float) -> None:
        if len(optimizer.param_groups) != 1:
            raise ConfigError("the fast step expects one parameter group per optimizer")
        group = optimizer.param_groups[0]
        if group.get("weight_decay", 0) or group.get("amsgrad") or group.get("maximize"):
            raise ConfigError("the fast step supports plain Adam only (no weight decay, amsgrad or maximize)")
        self.params: list[nn.Parameter] = list(group["params"])
        self.lr, (self.beta1, self.beta2), self.eps = base_lr, group["betas"], group["eps"]
        for p in self.params:
            state = optimizer.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] = state["step"].to(p.device)  # on the device: the program advances it
        self.states = [optimizer.state[p] for p in self.params]

    def update(self, grads: list[torch.Tensor], ok: torch.Tensor, factor: torch.Tensor | None = None) -> None:
        """One step; ``factor`` scales the learning rate (the schedule's, computed on the device)."""
        lr = self.lr if factor is None else self.lr * factor
        for p, g, state in zip(self.params, grads, self.states, strict=True):
            step, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
            new_step = step + 1
            m_new = m.lerp(g, 1 - self.beta1)
            v_new = v * self.beta2 + (1 - self.beta2) * g * g
            count = new_step.double()
            step_size = lr / (1 - self.beta1**count)
            denom = v_new.sqrt() / (1 - self.beta2**count).sqrt() + self.eps
            p_new = p - step_size * (m_new / denom)
            p.copy_(torch.where(ok, p_new, p))
            m.copy_(torch.where(ok, m_new, m))
            v.copy_(torch.where(ok, v_new, v))
            step.copy_(torch.where(ok, new_step, step))


def _detached(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in params.items()}


class FastStep:
    """One training iteration as an in-place tensor program over the model, its Adam states and the inputs.

    Call :meth:`program` with host inputs, or with None to draw them on the device (``inputs`` is then a
    :class:`DeviceInputs`, whose ``prepare(step)`` the caller runs first). ``report`` holds (primal,
    adversary, elbo, rec) of the last step, ``first_bad`` the first step whose losses were not finite (-1
    while none was), ``step`` the next step's number.
    """

    def __init__(
        self,
        model: AVBModel,
        optimizers: dict[str, torch.optim.Optimizer],
        settings: TrainSettings,
        start_step: int,
        inputs: DeviceInputs | None = None,
        precision: str = "float32",
    ) -> None:
        self.model, self.settings, self.inputs, self.precision = model, settings, inputs, precision
        self.method = model.method
        self.primal = PrimalPlayer(model.encoder, model.decoder, model.method)
        self.primal_names = [n for n, p in self.primal.named_parameters() if p.requires_grad]
        lrs = base_lrs(settings)
        self.adam = {name: FunctionalAdam(opt, lrs[name]) for name, opt in optimizers.items()}
        primal_ids = {id(p) for p in self.adam["primal"].params}
        named = dict(self.primal.named_parameters())
        if {id(named[n]) for n in self.primal_names} != primal_ids:
            raise ConfigError("the primal optimizer must hold exactly the encoder's and decoder's trainable parameters")
        self.adversary = model.adversary
        self.adversary_names = [n for n, _ in model.adversary.named_parameters()] if model.adversary else []
        self.subs = settings.adversary_steps if model.adversary is not None else 1
        device = model.device
        self.step = torch.tensor(start_step, dtype=torch.int64, device=device)
        self.report = torch.zeros(4, dtype=model.dtype, device=device)
        self.first_bad = torch.tensor(-1, dtype=torch.int64, device=device)

    # -- the losses as functions of the parameters ------------------------------------------------------
    def _primal_params(self) -> dict[str, torch.Tensor]:
        named = dict(self.primal.named_parameters())
        return {n: named[n] for n in self.primal_names}

    def _adversary_params(self) -> dict[str, torch.Tensor]:
        assert self.adversary is not None
        return dict(self.adversary.named_parameters())

    def _objective(self, primal_p, adversary_p, x, eps, z_contrast):
        """A scalar whose gradient is the primal loss's for primal_p and the adversary loss's for adversary_p."""
        with autocast(x.device, self.precision):
            return self._objective_terms(primal_p, adversary_p, x, eps, z_contrast)

    def _objective_terms(self, primal_p, adversary_p, x, eps, z_contrast):
        scale = self.settings.loss_scale
        terms = functional_call(self.primal, primal_p, (x, eps))
        if self.method == "vae":
            losses = vae_losses_from_terms(terms, scale)
            report = torch.stack(
                [losses.primal, torch.zeros_like(losses.primal), losses.elbo.mean(), losses.rec.mean()]
            )
            return losses.primal, report.detach()
        frozen = _detached(adversary_p)
        losses = avb_losses_from_terms(
            terms, lambda a, b: functional_call(self.adversary, frozen, (a, b)), x, z_contrast, scale
        )
        z_view = terms[0].detach()
        t_q = functional_call(self.adversary, adversary_p, (x, z_view))
        t_p = functional_call(self.adversary, adversary_p, (x, z_contrast))
        adv = adversary_loss(t_q, t_p)
        report = torch.stack([losses.primal, adv, losses.elbo.mean(), losses.rec.mean()])
        return losses.primal + adv, report.detach()

    def _adversary_only(self, adversary_p, x, eps, z_contrast):
        with autocast(x.device, self.precision):
            return self._adversary_only_terms(adversary_p, x, eps, z_contrast)

    def _adversary_only_terms(self, adversary_p, x, eps, z_contrast):
        with torch.no_grad():
            _, z_view, _ = encoder_contrast_inputs(self.model.encoder, self.model.adaptive_contrast, x, eps)
        loss = adversary_loss(
            functional_call(self.adversary, adversary_p, (x, z_view)),
            functional_call(self.adversary, adversary_p, (x, z_contrast)),
        )
        return loss, loss.detach()

    # -- the program ----------------------------------------------------------------------------------------
    def program(self, inputs: StepInputs | None = None) -> None:
        """One step, in place (what engines compile and capture).

        Runs under no_grad: torch.func.grad differentiates inside regardless, and nothing outside it builds
        an autograd graph (so the compiler traces an inference graph that updates parameters in place).
        """
        with torch.no_grad():
            self._program(inputs)

    def _program(self, inputs: StepInputs | None) -> None:
        if inputs is None:
            assert self.inputs is not None, "device inputs were not configured"
            inputs = self.inputs(self.step)
        x = inputs.x
        primal_p = self._primal_params()
        if self.method == "vae":
            grads, report = grad(lambda p: self._objective(p, {}, x, inputs.eps[0], None), has_aux=True)(primal_p)
            adversary_grads = None
        else:
            (grads, adversary_grads), report = grad(self._objective, argnums=(0, 1), has_aux=True)(
                primal_p, self._adversary_params(), x, inputs.eps[0], inputs.z_contrast[0]
            )
        ok = torch.isfinite(report[[0, 1, 2]]).all() & (self.first_bad < 0)
        factor = lr_factor_tensor(self.settings, self.step)
        self.adam["primal"].update([grads[n] for n in self.primal_names], ok, factor)
        if adversary_grads is not None:
            self.adam["adversary"].update([adversary_grads[n] for n in self.adversary_names], ok, factor)
        for sub in range(1, self.subs):
            g, _ = grad(self._adversary_only, has_aux=True)(
                self._adversary_params(), x, inputs.eps[sub], inputs.z_contrast[sub]
            )
            self.adam["adversary"].update([g[n] for n in self.adversary_names], ok, factor)
        self.report.copy_(report)
        self.first_bad.copy_(torch.where(ok | (self.first_bad >= 0), self.first_bad, self.step))
        self.step.add_(1)
