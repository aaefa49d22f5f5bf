"""
Linear mode connectivity and gradient stability (the paper's Fig 6)
===================================================================

A parent network is trained; at each spawn step t' its run is replayed to t' and two
children continue it with different data orders (``sktelescope.lens.spawn_children``).
On held-out data ``sktelescope.lens.interpolate`` measures the loss barrier on the
straight line between the children and the accuracy gap (mean accuracy of the children
minus that of their weight average), and ``sktelescope.lens.gradient_change`` measures,
per layer, how much the per-example gradients change over the next epoch of the parent's
run. The paper (ResNet-20 on CIFAR-10) finds that the barrier disappears once the
gradients stop changing, most clearly in the output layer: read the figure top to
bottom at the same spawn step. Lines are means over parent seeds, shaded bands the range.
The title and the JSON say whether the ordering held in this run.

Setup, and why: all ten classes of scikit-learn's 8x8 digits (two thirds for training,
the rest for validation), a narrow 64-16-16-16-10 ReLU network with log-loss, plain SGD
with a large step (γ = 0.3), batch 16 and a cosine-decayed learning rate (the paper
decays its learning rate in steps), 20 epochs, 5 parent seeds. Wider networks and
smaller steps were linearly connected from initialisation, so no ordering could show:
with 64 units per layer (same γ, 3 seeds) the mean barrier stayed at or below 0.006
nats from spawn step 0 on while the gradients kept changing until step 300-450; with
SGD + momentum 0.9 at γ = 0.05 no barrier exceeded 0.02 nats (one seed each), with or
without 20-30% label noise, except at a constant rate with 30% noise, where barriers of
0.1-0.6 nats lasted to late spawn steps and the gradients never settled. Caveat: with
a decaying learning rate the gradient change shrinks with the schedule, and children
spawned late have fewer steps left to drift apart; the paper's protocol shares both.

Run::

    python examples/mode_connectivity.py          # 5 parent seeds, 12 spawn steps
    python examples/mode_connectivity.py --fast   # 2 seeds, 10 epochs, 6 spawn steps, for CI
"""

from __future__ import annotations

import numpy as np
from _figures import (
    band,
    digits,
    first_step_from,
    parse_args,
    pyplot,
    rounded,
    start,
    verdict,
    write_outputs,
)

from sktelescope import TelescopingMLPClassifier
from sktelescope.lens import (
    evaluate_parameters,
    gradient_change,
    interpolate,
    spawn_children,
    weight_average,
)

HIDDEN, LEARNING_RATE, BATCH, EVERY = (16, 16, 16), 0.3, 16, 2
BARRIER_TOL = 0.01  # nats: a barrier at or below this counts as linearly connected
STABLE = 0.1  # gradient change at or below this share of its peak counts as stable
SPAWNS = (0, 2, 4, 10, 20, 50, 100, 200, 300, 500, 700, 1000)
DEFAULT = dict(epochs=20, seeds=(0, 1, 2, 3, 4), spawns=SPAWNS)
FAST = dict(epochs=10, seeds=(0, 1), spawns=(0, 4, 20, 100, 300, 600))


def parent(n_train: int, epochs: int, seed: int) -> TelescopingMLPClassifier:
    """Plain SGD, cosine decay, a checkpoint every EVERY steps (for the gradient change)."""
    n_steps = epochs * int(np.ceil(n_train / BATCH))
    return TelescopingMLPClassifier(
        HIDDEN, activation="relu", preset="paper", loss="log_loss", optimizer="sgd",
        learning_rate=LEARNING_RATE, momentum=0.0, nesterov=False, weight_decay=0.0,
        lr_schedule="cosine", warmup_steps=0, batch_size=BATCH, max_iter=epochs,
        early_stopping=False, n_iter_no_change=None, init_scale=1.0,
        stage_every=EVERY, max_stages=n_steps // EVERY + 1, random_state=seed,
    )  # fmt: skip


def load():
    """Digits, all ten classes: two thirds for training, one third for validation."""
    return digits(tuple(range(10)), 2 / 3, seed=0)


def connectivity(est, spawn: int, data) -> dict:
    """Barrier and accuracy gap of two children spawned at ``spawn``."""
    X, X_val, y, y_val = data
    kids = spawn_children(est, X, y, spawn_step=spawn, n_children=2, seeds=[101, 202])
    line = interpolate(est, X_val, y_val, kids.children[0], kids.children[1])
    accs = [evaluate_parameters(est, X_val, y_val, c)[1] for c in kids.children]
    averaged = evaluate_parameters(est, X_val, y_val, weight_average(kids.children))[1]
    return {"barrier": line.barrier, "accuracy_gap": float(np.mean(accs)) - averaged,
            "max_accuracy_drop": line.max_accuracy_drop}  # fmt: skip


def run_seed(seed: int, epochs: int, spawns) -> dict:
    """One parent: connectivity at each spawn step, per-layer gradient change over steps."""
    data = load()
    X, X_val, y, y_val = data
    est = parent(len(X), epochs, seed).fit(X, y)
    epoch = int(np.ceil(len(X) / BATCH))
    change = gradient_change(est, X, y, X_val[:256], lag=max(epoch // EVERY, 1))
    rows = [connectivity(est, t, data) for t in spawns if t < est.n_steps_]
    return {
        "spawns": [t for t in spawns if t < est.n_steps_], "epoch": epoch,
        "validation_accuracy": est.score(X_val, y_val),
        **{k: np.array([r[k] for r in rows]) for k in rows[0]},
        "change_steps": change.steps_from, "change": change.values, "layers": change.layers,
    }  # fmt: skip


def judge(spawns, barrier, change_steps, change, layers) -> tuple[dict, dict]:
    """Spawn step from which the children are connected vs steps the gradients stabilise."""
    t_lmc = first_step_from(spawns, barrier <= BARRIER_TOL)
    stable = {
        name: first_step_from(change_steps, change[:, k] <= STABLE * change[:, k].max())
        for k, name in enumerate(layers)
    }
    t_out = stable[layers[-1]]
    share = {}
    if t_lmc is not None:
        row = change[np.searchsorted(change_steps, t_lmc).clip(max=len(change) - 1)]
        share = {
            name: round(float(row[k] / change[:, k].max()), 3) for k, name in enumerate(layers)
        }
    checks = {
        f"children spawned at step 0 have a barrier > {BARRIER_TOL} nats": barrier[0] > BARRIER_TOL,
        "the barrier vanishes from some spawn step on": t_lmc is not None,
        f"the output layer's gradient change is <= {STABLE:.0%} of its peak from that step "
        "on, and not from 3x earlier": (
            t_lmc is not None and t_out is not None and t_lmc / 3 <= t_out <= t_lmc
        ),
    }
    return checks, {"lmc_step": t_lmc, "stable_steps": stable, "change_share_at_lmc": share}


def plot(runs: list[dict], where: dict, title: str):
    """Barrier and accuracy gap (top) and per-layer gradient change (bottom) on one x axis."""
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7.4), sharex=True)
    x = np.array(runs[0]["spawns"]) + 1
    band(top, x, [r["barrier"] for r in runs], "loss barrier (nats)", marker="o")
    band(top, x, [r["accuracy_gap"] for r in runs], "accuracy gap", marker="s")
    top.axhline(0.0, color="grey", lw=0.8)
    top.set(ylabel="children vs their average", xscale="log")
    steps = runs[0]["change_steps"] + 1
    for k, name in enumerate(runs[0]["layers"]):
        band(bottom, steps, [r["change"][:, k] for r in runs], name)
    bottom.set(xscale="log", yscale="log", xlabel="spawn step t' + 1",
               ylabel=f"gradient change over one epoch ({runs[0]['epoch']} steps)")  # fmt: skip
    for ax in (top, bottom):
        if where["lmc_step"] is not None:
            ax.axvline(where["lmc_step"] + 1, color="k", ls="--", lw=1,
                       label=f"barrier <= {BARRIER_TOL} from here")  # fmt: skip
        out = where["stable_steps"][runs[0]["layers"][-1]]
        if out is not None:
            ax.axvline(out + 1, color="k", ls=":", lw=1, label="output layer stable")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _share_text(where: dict) -> str:
    """A title line: each layer's gradient change at the LMC step, as a share of its peak."""
    if not where["change_share_at_lmc"]:
        return ""
    shares = ", ".join(f"{v:.0%}" for v in where["change_share_at_lmc"].values())
    return f"\nat t'={where['lmc_step']}, gradient change / its peak, input to output: {shares}"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(__doc__, argv)
    started = start()
    config = FAST if args.fast else DEFAULT
    runs = [run_seed(seed, config["epochs"], config["spawns"]) for seed in config["seeds"]]
    mean = {k: np.mean([r[k] for r in runs], axis=0) for k in ("barrier", "accuracy_gap")}
    change = np.mean([r["change"] for r in runs], axis=0)
    spawns, layers = runs[0]["spawns"], runs[0]["layers"]
    checks, where = judge(np.array(spawns), mean["barrier"], runs[0]["change_steps"],
                          change, layers)  # fmt: skip
    reproduces, reason = verdict(checks)
    at_spawns = np.searchsorted(runs[0]["change_steps"], spawns).clip(max=len(change) - 1)
    print("| t' | barrier | accuracy gap | " + " | ".join(layers) + " |  (means over seeds)")
    for i, t in enumerate(spawns):
        grads = " | ".join(f"{v:.2e}" for v in change[at_spawns[i]])
        print(f"| {t} | {mean['barrier'][i]:.4f} | {mean['accuracy_gap'][i]:+.4f} | {grads} |")
    for name, ok in checks.items():
        print(f"[{'yes' if ok else 'NO '}] {name}")
    print(f"gradient change at t'={where['lmc_step']} as a share of each layer's peak: "
          f"{where['change_share_at_lmc']}")  # fmt: skip
    title = (
        f"Digits (10 classes), {'-'.join(map(str, HIDDEN))} ReLU, SGD γ={LEARNING_RATE:g}, "
        f"{len(runs)} seed(s)\nbarrier <= {BARRIER_TOL} from t'={where['lmc_step']}, "
        "output layer stable from "
        f"t'={where['stable_steps'][layers[-1]]} - paper's ordering "
        f"{'reproduces' if reproduces else 'does NOT reproduce'}{_share_text(where)}"
    )
    summary = {
        "figure": "Fig 6", "mode": "fast" if args.fast else "default",
        "setup": {"data": "digits, 10 classes", "hidden": list(HIDDEN), "optimizer": "SGD",
                  "learning_rate": LEARNING_RATE, "lr_schedule": "cosine", "batch_size": BATCH,
                  "epochs": config["epochs"], "seeds": list(config["seeds"]),
                  "barrier_tol": BARRIER_TOL, "stable_share": STABLE},
        "spawn_steps": spawns, "barrier": rounded(mean["barrier"]),
        "accuracy_gap": rounded(mean["accuracy_gap"]),
        "gradient_change_at_spawns": {name: rounded(change[at_spawns, k], 6)
                                      for k, name in enumerate(layers)},
        "validation_accuracy": rounded([r["validation_accuracy"] for r in runs]),
        **where, "reproduces": reproduces, "reason": reason,
    }  # fmt: skip
    write_outputs(plot(runs, where, title), summary, args.out, "mode_connectivity", started)
    return summary


if __name__ == "__main__":
    main()
