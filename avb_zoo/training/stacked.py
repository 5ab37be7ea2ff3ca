"""K models of one architecture trained as one stacked model: each equals the run it would make alone.

Model k has its own seed s_k: its initial parameters, minibatches and noise are drawn by the same keyed
generators as the solo run with seed s_k and stacked along a leading model axis. The losses of all models
are one program (``torch.func.vmap`` over ``functional_call``, so linear layers become batched matmuls and
convolutions grouped ones), back-propagated together (no loss depends on another model's parameters, so the
gradient of their sum is each model's own gradient), and Adam runs on the stacked tensors: Adam is
elementwise, so this is K independent Adams, written out with torch.optim.Adam's own arithmetic.
A model whose losses stop being finite is taken out of the stack before that step's update; the others
go on.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vmap

from avb_zoo.catalogue.recipes import TrainSettings
from avb_zoo.compute.precision import autocast
from avb_zoo.errors import ConfigError
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.objectives import (
    adversary_only_loss,
    avb_losses_from_terms,
    avb_primal_terms,
    vae_losses_from_terms,
    vae_terms,
)
from avb_zoo.training.schedule import base_lrs, lr_factor
from avb_zoo.training.step import StepResult, draw_noise

PREFIX = "model."
FUSED = hasattr(torch, "_fused_adam_")  # torch's one-pass Adam kernel (CPU and CUDA)


class _BiasedProduct(torch.autograd.Function):
    """``F.linear(x, w, b)`` whose batched form (under vmap, over stacked weights) is one ``baddbmm``.

    vmap's own rule for ``linear`` is a batched product followed by a separate bias add over the whole output;
    ``baddbmm`` adds the bias inside the product. The backward is linear's (dx = g w, dw = g^T x, db = sum g),
    written once so that vmap batches it into batched products with one layout for every weight gradient.
    """

    generate_vmap_rule = False

    @staticmethod
    def forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, w, b)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, w, _ = inputs
        ctx.save_for_backward(x, w)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w = ctx.saved_tensors
        rows = grad.reshape(-1, grad.shape[-1])
        grad_x = grad @ w if ctx.needs_input_grad[0] else None
        grad_w = rows.mT @ x.reshape(-1, x.shape[-1]) if ctx.needs_input_grad[1] else None
        grad_b = rows.sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b

    @staticmethod
    def vmap(info, in_dims, x, w, b):
        x_dim, w_dim, b_dim = in_dims
        if w_dim is None or b_dim is None:  # shared weights: linear's own batching
            x = x if x_dim is None else x.movedim(x_dim, 0)
            return nn.functional.linear(x, w, b), None if x_dim is None else 0
        w, b = w.movedim(w_dim, 0), b.movedim(b_dim, 0)
        k = info.batch_size
        x = x.unsqueeze(0).expand(k, *x.shape) if x_dim is None else x.movedim(x_dim, 0)
        lead = x.shape[1:-1]
        out = torch.baddbmm(b.unsqueeze(1), x.reshape(k, -1, x.shape[-1]), w.mT)
        return out.reshape(k, *lead, w.shape[1]), 0


class _StackableLinear(nn.Linear):
    """nn.Linear computed through :class:`_BiasedProduct` (same values; one fused product when stacked)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return super().forward(x)
        return _BiasedProduct.apply(x, self.weight, self.bias)


def stackable(module: nn.Module) -> nn.Module:
    """``module`` with every nn.Linear computing through :class:`_StackableLinear` (in place; parameters kept)."""
    for m in module.modules():
        if type(m) is nn.Linear:
            m.__class__ = _StackableLinear
    return module


class Objective(nn.Module):
    """One model's losses as a module, so ``functional_call`` can run them on any model's parameters.

    The same objective functions the solo step calls (``PrimalPlayer`` + the adversary), in the same order.
    """

    def __init__(self, model: AVBModel, loss_scale: float) -> None:
        super().__init__()
        self.model, self.loss_scale = model, loss_scale

    def forward(
        self, x: torch.Tensor, eps: torch.Tensor, z_contrast: torch.Tensor, adversary_only: bool = False
    ) -> tuple[torch.Tensor, ...] | torch.Tensor:
        """(primal loss, adversary loss, mean ELBO estimate, mean reconstruction error); with
        ``adversary_only`` the adversary's loss with the encoder held fixed (the extra adversary updates)."""
        m = self.model
        if adversary_only:
            return adversary_only_loss(m, x, eps, z_contrast)
        if m.method == "vae":
            losses = vae_losses_from_terms(vae_terms(m.encoder, m.decoder, x, eps), self.loss_scale)
            adversary = losses.primal.new_zeros(())
        else:
            terms = avb_primal_terms(m.encoder, m.decoder, m.adaptive_contrast, x, eps)
            losses = avb_losses_from_terms(terms, m.adversary, x, z_contrast, self.loss_scale)
            adversary = losses.adversary
        return losses.primal, adversary, losses.elbo.mean(), losses.rec.mean()


def _dense(t: torch.Tensor) -> torch.Tensor:
    """``t`` or its transpose, whichever is contiguous (an elementwise update does not care which): the
    fused kernel copies non-contiguous tensors in and out."""
    return t.mT if not t.is_contiguous() and t.ndim >= 2 and t.mT.is_contiguous() else t


@dataclass
class StackedAdam:
    """Adam over stacked tensors [K, ...], every model at the same step count (torch.optim.Adam's arithmetic)."""

    lr: float
    betas: tuple[float, float]
    exp_avg: dict[str, torch.Tensor]
    exp_avg_sq: dict[str, torch.Tensor]
    steps: int = 0
    eps: float = 1e-8  # torch.optim.Adam's default, which make_optimizers keeps

    @torch.no_grad()
    def update(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        """One step with torch.optim.Adam's semantics (no weight decay, no amsgrad, eps added after the bias
        correction of sqrt(v)): model k's parameters change as its own optimiser would change them, to
        rounding. One fused pass over memory where torch has it (what makes the stacked update cheap)."""
        self.steps += 1
        names = list(grads)
        grads = {n: self._align(n, params, g) for n, g in grads.items()}
        tensors = [_dense(params[n]) for n in names], [_dense(grads[n]) for n in names]
        moments = [_dense(self.exp_avg[n]) for n in names], [_dense(self.exp_avg_sq[n]) for n in names]
        if FUSED:
            step = torch.tensor(float(self.steps), device=tensors[0][0].device)
            torch._fused_adam_(
                *tensors, *moments, [], [step] * len(names), lr=self.lr, beta1=self.betas[0], beta2=self.betas[1],
                weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False,
            )  # fmt: skip
            return
        beta1, beta2 = self.betas
        bias_correction1 = 1 - beta1**self.steps
        bias_correction2_sqrt = (1 - beta2**self.steps) ** 0.5
        step_size = self.lr / bias_correction1
        for param, grad, exp_avg, exp_avg_sq in zip(*tensors, *moments, strict=True):  # the single-tensor path's ops
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)

    def _align(self, name: str, params: dict[str, torch.Tensor], grad: torch.Tensor) -> torch.Tensor:
        """``grad`` in the memory layout of its parameter (the fused kernel reads flat memory). A gradient that
        comes out transposed (a batched matmul's weight gradient) once moves the parameter and its moments to
        that layout instead, which saves a transposing copy of every such gradient at every step."""
        param = params[name]
        if grad.stride() == param.stride():
            return grad
        if torch.empty_like(grad).stride() != grad.stride():  # not a dense layout: copy the gradient
            return torch.empty_like(param).copy_(grad)
        with torch.no_grad():
            params[name] = torch.empty_like(grad).copy_(param).requires_grad_(param.requires_grad)
            self.exp_avg[name] = torch.empty_like(grad).copy_(self.exp_avg[name])
            self.exp_avg_sq[name] = torch.empty_like(grad).copy_(self.exp_avg_sq[name])
        return grad

    def keep(self, rows: torch.Tensor) -> None:
        """Only the models at ``rows`` stay."""
        self.exp_avg = {n: t[rows] for n, t in self.exp_avg.items()}
        self.exp_avg_sq = {n: t[rows] for n, t in self.exp_avg_sq.items()}


def _player_params(model: AVBModel, player: str) -> list[str]:
    """Names (as in the Objective) of a player's parameters, in its torch optimiser's order."""
    parts = ("encoder", "decoder") if player == "primal" else ("adversary",)
    return [f"{PREFIX}{n}" for n, p in model.named_parameters() if n.split(".", 1)[0] in parts and p.requires_grad]


def stack_adam(models: list[AVBModel], optimizers: list[dict[str, torch.optim.Optimizer]], player: str) -> StackedAdam:
    """One StackedAdam from K torch Adams (fresh ones or ones restored from checkpoints) at one step count."""
    names = _player_params(models[0], player)
    group = optimizers[0][player].param_groups[0]
    moments: dict[str, dict[str, torch.Tensor]] = {"exp_avg": {}, "exp_avg_sq": {}}
    counts = set()
    for i, name in enumerate(names):
        for field in moments:
            rows = []
            for opts in optimizers:
                param = opts[player].param_groups[0]["params"][i]
                state = opts[player].state.get(param, {})
                counts.add(int(state["step"]) if "step" in state else 0)
                rows.append(state[field] if field in state else torch.zeros_like(param))
            moments[field][name] = torch.stack([r.detach().to(rows[0].device) for r in rows]).contiguous()
    if len(counts) > 1:
        raise ConfigError(f"the {player} optimisers of the stacked models are at different steps {sorted(counts)}")
    return StackedAdam(
        group["lr"], tuple(group["betas"]), moments["exp_avg"], moments["exp_avg_sq"], counts.pop() if counts else 0
    )


def unstack_adam(adam: StackedAdam, row: int, model: AVBModel, optimizer: torch.optim.Optimizer, player: str) -> None:
    """Write row ``row`` of a StackedAdam into a torch Adam over ``model``'s parameters (for its checkpoint)."""
    optimizer.state.clear()
    if adam.steps == 0:
        return  # a torch Adam that never stepped has no state
    for name, param in zip(_player_params(model, player), optimizer.param_groups[0]["params"], strict=True):
        optimizer.state[param] = {
            "step": torch.tensor(float(adam.steps), dtype=torch.float32),
            "exp_avg": adam.exp_avg[name][row].clone(memory_format=torch.contiguous_format),
            "exp_avg_sq": adam.exp_avg_sq[name][row].clone(memory_format=torch.contiguous_format),
        }


class StackedModels:
    """K models of one architecture as stacked tensors, stepped together; ``seeds`` names the models still in.

    ``models`` (one per seed, on the training device) give the starting point and are where ``write_back``
    puts each model's current parameters; ``optimizers`` are their torch Adams (fresh or restored).
    """

    def __init__(
        self,
        models: list[AVBModel],
        optimizers: list[dict[str, torch.optim.Optimizer]],
        seeds: list[int],
        settings: TrainSettings,
        precision: str = "float32",
    ) -> None:
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in models[0].modules()):
            raise ConfigError("models with batch normalisation cannot be stacked (their statistics are state)")
        self.models, self.seeds, self.settings, self.precision = models, list(seeds), settings, precision
        self.rows = list(range(len(models)))  # which of ``models`` each stacked row is
        first = models[0]
        self.objective = Objective(stackable(copy.deepcopy(first).to("meta")), settings.loss_scale)
        self.params = {
            f"{PREFIX}{n}": torch.stack([dict(m.named_parameters())[n].detach() for m in models]).requires_grad_()
            for n, _ in first.named_parameters()
        }
        self.buffers = {
            f"{PREFIX}{n}": torch.stack([dict(m.named_buffers())[n] for m in models]) for n, _ in first.named_buffers()
        }
        self.players = ["primal"] + (["adversary"] if first.adversary is not None else [])
        self.names = {p: _player_params(first, p) for p in self.players}
        self.adam = {p: stack_adam(models, optimizers, p) for p in self.players}
        self._losses = vmap(self._call_losses)
        self._adversary_only = vmap(self._call_adversary_only)

    def _call_losses(self, params, buffers, x, eps, z_contrast):
        return functional_call(self.objective, (params, buffers), (x, eps, z_contrast))

    def _call_adversary_only(self, params, buffers, x, eps, z_contrast):
        return functional_call(self.objective, (params, buffers), (x, eps, z_contrast), {"adversary_only": True})

    def _noise(self, step: int, sub: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Each model's (encoder noise, contrast samples), drawn as its solo run draws them, stacked."""
        draws = [
            draw_noise(self.models[r], s, step, self.settings.batch_size, sub)[:2]
            for r, s in zip(self.rows, self.seeds, strict=True)
        ]
        return torch.stack([d[0] for d in draws]), torch.stack([d[1] for d in draws])

    def _grads(self, loss: torch.Tensor, player: str, retain: bool) -> dict[str, torch.Tensor]:
        names = self.names[player]
        grads = torch.autograd.grad(loss.sum(), [self.params[n] for n in names], retain_graph=retain)
        return dict(zip(names, grads, strict=True))

    def step(self, x: torch.Tensor, step: int) -> tuple[list[StepResult], list[int]]:
        """One training step of every model on its minibatch ``x[k]``: (each model's result, the seeds whose
        losses were not finite, which are taken out of the stack without being updated)."""
        eps, z_contrast = self._noise(step)
        with autocast(x.device, self.precision):
            primal, adversary, elbo, rec = self._losses(self.params, self.buffers, x, eps, z_contrast)
        reported = torch.stack([primal.detach(), adversary.detach(), elbo.detach(), rec.detach()], 1).tolist()
        results = [StepResult(*r) for r in reported]
        finite = [r.finite() for r in results]
        dropped = [s for s, ok in zip(self.seeds, finite, strict=True) if not ok]
        keep = [i for i, ok in enumerate(finite) if ok]
        if not keep:
            self._keep(keep)
            return results, dropped
        if dropped:
            primal, adversary, x = primal[keep], adversary[keep], x[keep]
        has_adversary = "adversary" in self.players
        grads = {"primal": self._grads(primal, "primal", retain=has_adversary)}
        if has_adversary:
            grads["adversary"] = self._grads(adversary, "adversary", retain=False)
        if dropped:
            self._keep(keep)
            grads = {p: {n: g[keep] for n, g in gs.items()} for p, gs in grads.items()}
        factor = lr_factor(self.settings, step)
        for player in self.players:
            self.adam[player].lr = base_lrs(self.settings)[player] * factor
        for player in reversed(self.players):  # the solo step's order: adversary, then primal
            self.adam[player].update(self.params, grads[player])
        for sub in range(1, self.settings.adversary_steps if has_adversary else 1):
            eps, z_contrast = self._noise(step, sub)
            with autocast(x.device, self.precision):
                loss = self._adversary_only(self.params, self.buffers, x, eps, z_contrast)
            self.adam["adversary"].update(self.params, self._grads(loss, "adversary", retain=False))
        return results, dropped

    def _keep(self, keep: list[int]) -> None:
        index = torch.tensor(keep, dtype=torch.long, device=next(iter(self.params.values())).device)
        self.params = {n: p.detach()[index].requires_grad_() for n, p in self.params.items()}
        self.buffers = {n: b[index] for n, b in self.buffers.items()}
        for adam in self.adam.values():
            adam.keep(index)
        self.rows = [self.rows[i] for i in keep]
        self.seeds = [self.seeds[i] for i in keep]

    def finite_rows(self) -> list[bool]:
        """Whether each stacked model's parameters and buffers are all finite."""
        ok = torch.ones(len(self.rows), dtype=torch.bool, device=next(iter(self.params.values())).device)
        for t in (*self.params.values(), *self.buffers.values()):
            if t.is_floating_point():
                ok &= torch.isfinite(t.detach().flatten(1)).all(1)
        return ok.tolist()

    def drop(self, seeds: list[int]) -> None:
        self._keep([i for i, s in enumerate(self.seeds) if s not in seeds])

    @torch.no_grad()
    def write_back(self, optimizers: list[dict[str, torch.optim.Optimizer]]) -> None:
        """Copy each stacked model's parameters and Adam state into its own model and torch optimisers."""
        for i, r in enumerate(self.rows):
            model = self.models[r]
            for name, p in model.named_parameters():
                p.copy_(self.params[PREFIX + name][i])
            for name, b in model.named_buffers():
                b.copy_(self.buffers[PREFIX + name][i])
            for player in self.players:
                unstack_adam(self.adam[player], i, model, optimizers[r][player], player)
