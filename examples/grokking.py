"""
Grokking through effective parameters (the paper's Fig 4)
=========================================================

A network whose initial weights are scaled up by ``init_scale=α`` fits its training set
early but generalises much later (Liu et al. 2022's large-initialisation grokking; the
paper's MNIST setting). ``sktelescope.lens.smoother_trace`` replays each run as a
smoother ``f(x) = s(x)·y + c(x)`` and counts its effective parameters on the training
inputs (p^train) and on held-out inputs (p^test). The paper's finding: the late jump in
test accuracy coincides with p^train and p^test *diverging*, later grokking (larger α)
comes with a later divergence, and a standard initialisation (α = 1) generalises about as
soon as it fits.
Each column of the figure is one α: accuracies (top) and p (bottom) over optimizer steps,
with the step at which training accuracy reaches 100%, the step from which test accuracy
stays at or above 90%, and the step at which p^train − p^test reaches half its largest
value. The title and the JSON say whether the paper's ordering held in this run. The
text in each column splits the network on the p^test images, at the step it fits the
training set and at the end, into its label-linear part ``s(x)·y`` (what p measures) and
the rest ``c(x)`` (what is left of the initial function, among others): it shows in
which part the late generalisation happens.

Setup, and why: scikit-learn's 8x8 digits 3 vs 5 with n = 100 training images (the
other 265 for testing; p^test on 100 of them), projected on the 32 leading principal
components of the training images (as in the Fig 3 example: near-blank pixels would be
blown up by standardisation on test images), a 32-32-32-1 ReLU network, squared loss on
±1 labels, full-batch AdamW (β = (0.9, 0.99)) with 100 warm-up steps, as in the paper.
The paper trains 10⁵ steps at γ = 1e-4 with weight decay 0.1; that is hours on a
laptop, so here γ = 3e-3 and weight decay 0.3 compress the run to a few thousand steps
(AdamW shrinks the weights by γλ per step, the time scale of large-initialisation
grokking). The smoother replay of AdamW keeps p x n channels (p = 2,145 parameters) and
costs tens of milliseconds a step, which is why n and the network are small.

Run::

    python examples/grokking.py          # α = 6 and 8, and α = 1; a few minutes
    python examples/grokking.py --fast   # α = 6 (shorter) and α = 1, for CI
"""

from __future__ import annotations

import numpy as np
from _figures import (
    digits,
    first_step_from,
    math_label,
    parse_args,
    pyplot,
    rounded,
    start,
    verdict,
    write_outputs,
)

from sktelescope import TelescopingMLPClassifier
from sktelescope.lens import smoother_trace

N_TRAIN, N_EVAL, N_COMPONENTS, HIDDEN, EVERY = 100, 100, 32, (32, 32), 10
LEARNING_RATE, WEIGHT_DECAY, WARMUP = 3e-3, 0.3, 100
GENERALISES = 0.9  # test accuracy from which a run counts as generalising
DEFAULT = {6.0: 3000, 8.0: 4000, 1.0: 500}  # init scale α -> optimizer steps
FAST = {6.0: 1500, 1.0: 200}


def network(alpha: float, steps: int) -> TelescopingMLPClassifier:
    """Two hidden ReLU layers, squared loss, full-batch AdamW with warm-up, init scaled by α."""
    return TelescopingMLPClassifier(
        HIDDEN, activation="relu", preset="paper", loss="squared_error", optimizer="adamw",
        learning_rate=LEARNING_RATE, beta_1=0.9, beta_2=0.99, weight_decay=WEIGHT_DECAY,
        lr_schedule="constant", warmup_steps=WARMUP, batch_size=None, max_iter=steps,
        early_stopping=False, n_iter_no_change=None, init_scale=alpha,
        stage_every=EVERY, max_stages=steps // EVERY + 1, random_state=0,
    )  # fmt: skip


def accuracy_curves(est, X, y) -> tuple[np.ndarray, np.ndarray]:
    """Stage-end steps and the accuracy of the network at each of them."""
    steps = np.array([stage.steps.stop - 1 for stage in est.stages_])
    accuracy = np.array([np.mean(pred == y) for pred in est.staged_predict(X)])
    return steps, accuracy


def split_network(trace, y_eval) -> dict:
    """Test accuracy of the network and of its label-linear part ``s(x)·y`` alone, and the
    root mean square of the rest, ``c(x)`` (mostly what is left of the initial function)."""
    target = np.where(y_eval == 5, 1.0, -1.0)
    label_part = trace.s_eval @ trace.y_network * trace.t_scale
    return {
        "test_accuracy_network": float(np.mean(np.sign(trace.predict_eval()) == target)),
        "test_accuracy_label_part": float(np.mean(np.sign(label_part) == target)),
        "rms_c_test": float(np.sqrt(np.mean((trace.c_eval * trace.t_scale) ** 2))),
    }


def run(alpha: float, steps: int) -> dict:
    """Fit, follow accuracies over steps, replay the fit as a smoother (p over steps, and
    the split ``s(x)·y + c(x)`` at the end and at the step the training set is fitted)."""
    X_tr, X_te, y_tr, y_te = digits((3, 5), N_TRAIN, seed=0, n_components=N_COMPONENTS)
    X_eval, y_eval = X_te[:N_EVAL], y_te[:N_EVAL]
    est = network(alpha, steps).fit(X_tr, y_tr)
    acc_steps, acc_train = accuracy_curves(est, X_tr, y_tr)
    _, acc_test = accuracy_curves(est, X_te, y_te)
    trace = smoother_trace(est, X_tr, y_tr, X_eval, every=EVERY)
    gap = trace.p_train - trace.p_test
    fit_step = first_step_from(acc_steps, acc_train == 1.0)
    at_fit = None
    if fit_step:  # the same run stopped there (constant schedule after warm-up)
        at_fit = smoother_trace(network(alpha, fit_step), X_tr, y_tr, X_eval, every=fit_step)
    return {
        "acc_steps": acc_steps, "acc_train": acc_train, "acc_test": acc_test,
        "p_steps": trace.steps, "p_train": trace.p_train, "p_test": trace.p_test,
        "fit_step": fit_step,
        "generalisation_step": first_step_from(acc_steps, acc_test >= GENERALISES),
        "divergence_step": int(trace.steps[np.argmax(gap >= 0.5 * gap.max())]),
        "final_test_accuracy": acc_test[-1],
        "split_at_fit": None if at_fit is None else split_network(at_fit, y_eval),
        "split_at_end": split_network(trace, y_eval),
    }  # fmt: skip


def coincide(r: dict) -> bool:
    """The divergence falls within a factor 2 of the step the test accuracy settles."""
    t_gen, t_div = r["generalisation_step"], r["divergence_step"]
    return t_gen is not None and t_gen / 2 <= t_div <= 2 * t_gen


def judge(results: dict[float, dict]) -> dict[str, bool]:
    """The paper's findings as checks on the measured steps (on the α that ran)."""
    large = sorted(a for a in results if a > 1)
    checks = {}
    for a in large:
        r = results[a]
        late = r["fit_step"] is not None and r["generalisation_step"] is not None
        late = late and r["generalisation_step"] >= 3 * r["fit_step"]
        checks[f"α={a:g} groks (test settles >= 3x later than train fits)"] = late
        checks[f"α={a:g}: p^train - p^test diverge when the test accuracy jumps"] = coincide(r)
    if len(large) > 1:
        lo, hi = results[large[0]], results[large[-1]]
        checks[f"α={large[-1]:g} groks and diverges later than α={large[0]:g}"] = (
            hi["generalisation_step"] or np.inf
        ) > (lo["generalisation_step"] or np.inf) and hi["divergence_step"] > lo["divergence_step"]
    if 1.0 in results and large:
        first, ref = results[1.0]["generalisation_step"], results[large[0]]
        checks[f"α=1 generalises >= 3x sooner than α={large[0]:g}"] = (
            first is not None and 3 * first <= (ref["generalisation_step"] or np.inf)
        )
    return checks


def plot(results: dict[float, dict], title: str):
    """Per α: accuracies (top) and effective parameters (bottom) against steps."""
    plt = pyplot()
    fig, axes = plt.subplots(2, len(results), figsize=(4.4 * len(results), 6.5), sharex="col")
    for col, (alpha, r) in enumerate(results.items()):
        top, bottom = axes[0, col], axes[1, col]
        top.plot(r["acc_steps"], r["acc_train"], label="train accuracy")
        top.plot(r["acc_steps"], r["acc_test"], label="test accuracy")
        bottom.plot(r["p_steps"][1:], r["p_train"][1:], label=math_label("p_train"))
        bottom.plot(r["p_steps"][1:], r["p_test"][1:], label=math_label("p_test"))
        bottom.axhline(N_TRAIN, color="grey", lw=0.8, ls="--", label=f"n = {N_TRAIN}")
        for ax in (top, bottom):
            _mark_steps(ax, r)
            ax.set_xscale("log")
        top.set(title=f"init scale α = {alpha:g}", ylim=(0.4, 1.02))
        top.text(0.02, 0.97, _split_text(r), transform=top.transAxes, fontsize=7, va="top")
        bottom.set(xlabel="optimizer step", ylabel="effective parameters" if col == 0 else None)
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    axes[1, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _split_text(r: dict) -> str:
    """Where the network's test accuracy comes from, at the fit step and at the end."""
    lines = ["f = s(x)·y + c(x) on test images:"]
    for key, when in (("split_at_fit", f"step {r['fit_step']}"), ("split_at_end", "end")):
        if r[key]:
            sp = r[key]
            lines.append(f"{when}: acc f {sp['test_accuracy_network']:.0%}, "
                         f"s·y alone {sp['test_accuracy_label_part']:.0%}, "
                         f"rms c {sp['rms_c_test']:.2f}")  # fmt: skip
    return "\n".join(lines)


def _mark_steps(ax, r: dict) -> None:
    marks = (("fit_step", ":", "train acc = 1"), ("generalisation_step", "--", "test acc >= 0.9"),
             ("divergence_step", "-.", "p gap at half max"))  # fmt: skip
    for key, style, label in marks:
        if r[key]:
            ax.axvline(r[key], color="k", ls=style, lw=0.9, label=label)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(__doc__, argv)
    started = start()
    plan = FAST if args.fast else DEFAULT
    results = {alpha: run(alpha, steps) for alpha, steps in plan.items()}
    checks = judge(results)
    reproduces, reason = verdict(checks)
    keys = ("fit_step", "generalisation_step", "divergence_step", "final_test_accuracy",
            "split_at_fit", "split_at_end")  # fmt: skip
    for alpha, r in results.items():
        measured = ", ".join(f"{k} {r[k]}" for k in keys[:4])
        p_final = f"final p_train {r['p_train'][-1]:.1f}, p_test {r['p_test'][-1]:.1f}"
        print(f"α={alpha:g}: {measured}, {p_final}")
        print("    " + _split_text(r).replace("\n", "\n    "))
    for name, ok in checks.items():
        print(f"[{'yes' if ok else 'NO '}] {name}")
    title = (
        f"Digits 3 vs 5, n={N_TRAIN}, AdamW γ={LEARNING_RATE:g} λ={WEIGHT_DECAY:g}: "
        f"paper's grokking finding {'reproduces' if reproduces else 'does NOT reproduce'}"
    )
    summary = {
        "figure": "Fig 4", "mode": "fast" if args.fast else "default",
        "setup": {"data": "digits 3 vs 5", "n_train": N_TRAIN, "n_eval_p_test": N_EVAL,
                  "n_components": N_COMPONENTS,
                  "hidden": list(HIDDEN), "optimizer": "full-batch AdamW",
                  "learning_rate": LEARNING_RATE, "weight_decay": WEIGHT_DECAY,
                  "warmup_steps": WARMUP, "steps": {f"{a:g}": s for a, s in plan.items()}},
        "runs": {f"alpha={a:g}": {**{k: r[k] for k in keys},
                                  "final_p_train": rounded(r["p_train"][-1:])[0],
                                  "final_p_test": rounded(r["p_test"][-1:])[0]}
                 for a, r in results.items()},
        "reproduces": reproduces, "reason": reason,
    }  # fmt: skip
    write_outputs(plot(results, title), summary, args.out, "grokking", started)
    return summary


if __name__ == "__main__":
    main()
