#!/usr/bin/python3
"""PyTorch reference trajectories for tests/unit/test_optim.c.

Usage: optim_ref.py DIR

DIR/cases.txt, written by the C test, has one case per line:

  opt NAME kind=sgd|adamw sizes=N,N,... groups=G,G,... decay=0|1,... steps=S
      ngroups=K momentum= dampening= nesterov= beta1= beta2= eps= wd=
  sched NAME kind=constant|step|cosine|onecycle total= warmup= warmup_start=
      size= gamma= min= pct= div= final_div=

For an `opt` case the C test also wrote raw little-endian files
  NAME.init.f32    all parameters concatenated
  NAME.grad.f32    S x (all gradients concatenated), one block per step
  NAME.lr.f64      S x K learning rates, per step and group
  NAME.frozen.u8   S x nparams, 1 = frozen during that step (grad None)
and this script writes NAME.ref.f32: S x (all parameters after each step),
from torch.optim.SGD / AdamW (foreach=False, one param group per tensor so
each gets its group's lr and weight decay only when decay=1).

For a `sched` case it writes NAME.ref.f64: the lr of a base-1.0 optimiser
at steps 0..total-1 from torch.optim.lr_scheduler (StepLR,
CosineAnnealingLR, OneCycleLR, warm-up as SequentialLR(LinearLR, main)).

Exit 77 when torch or numpy is missing.
"""
import os
import sys
import warnings

try:
    import numpy as np
    import torch
except ImportError as exc:  # pragma: no cover
    print("missing module: %s" % exc)
    sys.exit(77)

from torch.optim import lr_scheduler as lrs


def ints(s):
    return [int(x) for x in s.split(",")] if s else []


def run_opt(d, name, kv):
    sizes, groups, decay = ints(kv["sizes"]), ints(kv["groups"]), ints(kv["decay"])
    steps, ngroups, total = int(kv["steps"]), int(kv["ngroups"]), sum(ints(kv["sizes"]))
    base = os.path.join(d, name)
    init = np.fromfile(base + ".init.f32", "<f4")
    grads = np.fromfile(base + ".grad.f32", "<f4").reshape(steps, total)
    lr = np.fromfile(base + ".lr.f64", "<f8").reshape(steps, ngroups)
    frozen = np.fromfile(base + ".frozen.u8", "u1").reshape(steps, len(sizes))
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    params = [torch.tensor(init[offs[i]:offs[i + 1]].copy(), dtype=torch.float32) for i in range(len(sizes))]
    wd = float(kv["wd"])
    pgroups = [{"params": [p], "lr": 0.0, "weight_decay": wd if decay[i] else 0.0} for i, p in enumerate(params)]
    if kv["kind"] == "sgd":
        opt = torch.optim.SGD(pgroups, lr=0.0, momentum=float(kv["momentum"]), dampening=float(kv["dampening"]),
                              nesterov=kv["nesterov"] == "1", foreach=False)
    else:
        opt = torch.optim.AdamW(pgroups, lr=0.0, betas=(float(kv["beta1"]), float(kv["beta2"])),
                                eps=float(kv["eps"]), foreach=False)
    out = np.empty((steps, total), np.float32)
    for s in range(steps):
        for i, p in enumerate(params):
            opt.param_groups[i]["lr"] = float(lr[s, groups[i]])
            p.grad = None if frozen[s, i] else torch.tensor(grads[s, offs[i]:offs[i + 1]].copy())
        opt.step()
        for i, p in enumerate(params):
            out[s, offs[i]:offs[i + 1]] = p.detach().numpy()
    out.astype("<f4").tofile(base + ".ref.f32")


def run_sched(d, name, kv):
    total, warmup, kind = int(kv["total"]), int(kv["warmup"]), kv["kind"]
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0, momentum=0.9)
    if kind == "onecycle":
        sch = lrs.OneCycleLR(opt, max_lr=1.0, total_steps=total, pct_start=float(kv["pct"]),
                             div_factor=float(kv["div"]), final_div_factor=float(kv["final_div"]),
                             anneal_strategy="cos", cycle_momentum=False)
    else:
        if warmup > 0:
            warm = lrs.LinearLR(opt, start_factor=float(kv["warmup_start"]), end_factor=1.0, total_iters=warmup)
        if kind == "constant":
            main = lrs.LambdaLR(opt, lambda t: 1.0)
        elif kind == "step":
            main = lrs.StepLR(opt, step_size=int(kv["size"]), gamma=float(kv["gamma"]))
        else:
            main = lrs.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=float(kv["min"]))
        sch = lrs.SequentialLR(opt, [warm, main], milestones=[warmup]) if warmup > 0 else main
    out = np.empty(total, np.float64)
    for t in range(total):
        out[t] = opt.param_groups[0]["lr"]
        opt.step()
        sch.step()
    out.astype("<f8").tofile(os.path.join(d, name + ".ref.f64"))


def main():
    d = sys.argv[1]
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    for line in open(os.path.join(d, "cases.txt")):
        f = line.split()
        if not f:
            continue
        kv = dict(x.split("=", 1) for x in f[2:])
        (run_opt if f[0] == "opt" else run_sched)(d, f[1], kv)
    print("ok")


if __name__ == "__main__":
    main()
