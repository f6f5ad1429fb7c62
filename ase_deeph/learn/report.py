"""Text of ``ase-deeph learn``: the preflight report and the model card ``model.md``."""

from __future__ import annotations

import math
import shlex
import textwrap

__all__ = ["describe_plan", "card", "command_line", "usage"]


def _min(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _axes(flags) -> str:
    return " ".join("abc"[i] for i, p in enumerate(flags) if p) or "none"


def command_line(plan, out_dir: str, more: int = 0) -> str:
    """Return the ``ase-deeph learn`` command that makes (or resumes) this run."""
    parts = ["ase-deeph", "learn", shlex.quote(plan.structure), "-o", shlex.quote(str(out_dir)),
             "--budget", f"{plan.budget_min:g}", "--seed", str(plan.seed)]
    if more:
        parts += ["--more", str(more)]
    if plan.transfer:
        parts.append("--transfer")
    return " ".join(parts)


def usage(model_file: str) -> str:
    """Return the two lines that put the learned model on an ASE Atoms object."""
    return ("from ase_deeph import DeepHCalculator\n"
            f'atoms.calc = DeepHCalculator(model="{model_file}")')


def describe_plan(plan) -> str:
    """Return the preflight report: structure, DFT settings, sizes, estimated times."""
    pre = plan.preflight
    orb = ", ".join(f"{el} {plan.ke_sources[el]}" for el in sorted(plan.ke_sources))
    gap = "n/a (needed smearing)" if not math.isfinite(plan.gap) else f"{plan.gap:.3f} eV"
    rep = "x".join(map(str, plan.supercell))
    lines = [
        f"ase-deeph learn: plan for {plan.name} ({plan.structure}; {len(plan.symbols)} atoms "
        "in the unit cell)",
        f"  periodic directions: {_axes(plan.pbc)}"
        + (f" (vacuum found along {_axes([i in plan.vacuum_axes for i in range(3)])})"
           if plan.vacuum_axes and not plan.molecule else ""),
        (f"  training cell: {rep} unit cells, {plan.n_atoms} atoms, perpendicular widths "
         + " ".join(f"{w:.1f}" for w, p in zip(plan.cell_widths, plan.pbc, strict=True) if p)
         + f" A (rule: every width >= {plan.min_width:g} A"
         + (", so no atom meets its own image within the cutoff)"
            if plan.min_width >= plan.r_cut else f", lowered from r_cut = {plan.r_cut:g} A "
            "for the budget)")) if not plan.molecule else
        f"  isolated molecule: {plan.n_atoms} atoms, no repetition",
        f"  basis {plan.basis}, {plan.pseudo}, {plan.xc.upper()}: {plan.n_orbitals} orbitals, "
        f"{plan.n_electrons:g} valence electrons per structure",
        f"  density cutoff {plan.ke_cutoff:g} Ha (per element: {orb})"
        + ("; unused for a molecule (atom-centred grids)" if plan.molecule else ""),
        f"  SCF k-mesh {'x'.join(map(str, plan.kmesh))} (spacing {plan.kspacing:g} 1/A), "
        + (f"Fermi smearing {plan.smearing:g} eV (metal)" if plan.smearing else
           "no smearing (insulator)"),
        f"  preflight SCF of the unit cell (strained and rattled as a training structure): "
        f"{_min(pre['seconds'])}, {pre['n_orbitals']} orbitals, {pre['n_kpoints']} k-points, "
        f"gap {gap}",
        f"  perturbations: rattle {plan.rattle[0]:.3f}-{plan.rattle[1]:.3f} A, strain "
        f"+-{100 * plan.strain:g} %",
        f"  estimated SCF time per structure: {_min(plan.seconds_per_structure)} (an estimate:"
        f" preflight time x (orbital ratio)^3 x k-point ratio"
        + (f"; measured {_min(plan.calibrated_seconds)}" if plan.calibrated_seconds else "")
        + ")",
        f"  budget {plan.budget_min:g} min: {plan.n_structures} structures "
        f"(~{_min(plan.n_structures * (plan.calibrated_seconds or plan.seconds_per_structure))}"
        f"), training up to {plan.epochs} epochs (~{_min(plan.train_seconds)}, "
        f"{plan.init_reason})"
        + (f", transfer cell {'x'.join(map(str, plan.transfer_supercell))} "
           f"(~{_min(plan.transfer_seconds)})" if plan.transfer else ""),
        f"  estimated total: {_min(plan.total_seconds)}",
    ]
    lines += [f"  note: {n}" for n in plan.notes]
    return "\n".join(lines)


def _fmt(x, unit: str = "meV") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.2f} {unit}"


def _bands_row(res: dict | None) -> str:
    if not res or not res.get("n_states"):
        return "no states within 2 eV of E_F"
    return (f"{_fmt(res['mae_meV'])} mean, {_fmt(res['max_meV'])} max "
            f"({res['n_states']} states)")


def _para(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=92, break_on_hyphens=False,
                         break_long_words=False)


def card(plan, out_dir: str, results: dict, more: int = 0) -> str:
    """Return the model card ``model.md`` of a finished ``learn`` run."""
    gen, tr, ev = results["generate"], results["train"], results["evaluation"]
    tf = ev.get("transfer")
    rep = "x".join(map(str, plan.supercell))
    model_file = f"{out_dir}/model.safetensors"
    gauge = "" if plan.molecule else " (gauge mu S removed)"
    rows = [
        (f"H block MAE, {tr['n_test']} held-out test structure(s){gauge}",
         _fmt(ev.get("test_h_mae_meV")), f"`{tr['run_dir']}/test_metrics.json`"),
        ("bands within 2 eV of E_F, held-out structures (E_F aligned)",
         _bands_row(ev.get("heldout_bands")), "PySCF data of the test structures"),
    ]
    if tf:
        rows += [
            (f"transfer cell {'x'.join(map(str, plan.transfer_supercell))} "
             f"({tf['n_atoms']} atoms, 2x the training cell): H MAE", _fmt(tf["h_mae_meV"]),
             f"PySCF, {_min(tf['pyscf_seconds'])}"),
            ("transfer cell: bands within 2 eV of E_F", _bands_row(tf["bands"]), ""),
        ]
        if plan.smearing:  # a metal: E_F relative to the bands is meaningful
            rows.append(("transfer cell: E_F error (band offset removed)",
                         _fmt(tf["fermi_error_meV"]), ""))
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    smear = f"Fermi smearing {plan.smearing:g} eV" if plan.smearing else "no smearing"
    cell = (f"an isolated {plan.name} ({plan.n_atoms} atoms)" if plan.molecule else
            f"the unit cell {plan.name} repeated {rep} ({plan.n_atoms} atoms)")
    paragraphs = [
        f"# Model card: `model.safetensors` ({plan.name}), made by `ase-deeph learn`",
        f"**Use.**\n\n```python\n{usage(model_file)}\n```",
        _para(f"**Command.** `{command_line(plan, out_dir, more)}` (structure "
              f"`{plan.structure}`; a rerun resumes, `--more N` adds N structures and "
              f"retrains). Wall time of the runs that made it: "
              f"{_min(results['wall_seconds'])}."),
        _para(f"**Data.** {gen['n_done']} PySCF structures ({gen['n_failed']} failed) of "
              f"{cell}, rattled {plan.rattle[0]:.3f}-{plan.rattle[1]:.3f} A, strained "
              f"+-{100 * plan.strain:g} %, seed {plan.seed} (`generate.toml`, `data.h5`). "
              f"{plan.xc.upper()}, {plan.pseudo}, basis {plan.basis}, density cutoff "
              f"{plan.ke_cutoff:g} Ha, SCF k-mesh {'x'.join(map(str, plan.kmesh))}, {smear}, "
              f"labels to {plan.r_cut:g} A. Seconds per structure: "
              f"{_fmt(gen.get('seconds_mean'), 's')} measured, "
              f"{plan.seconds_per_structure:.1f} s estimated by the plan."),
        _para(f"**Training.** {tr['init_reason']}; {tr['n_train']} train, {tr['n_val']} "
              f"validation, {tr['n_test']} test structures; up to {plan.epochs} epochs, "
              f"early stopping after {plan.early_stop_patience} without improvement; best "
              f"epoch {tr['best_epoch']} of {tr['epochs_run']} run "
              f"(`train.toml`, `{tr['run_dir']}`, {_min(tr['seconds'])})."),
        "**Errors (measured by this run).**\n\n| what | value | source |\n|---|---|---|\n"
        + table,
        _para(f"**Limits.** Only {plan.name} near the sampled geometries (the rattles and "
              "strains above); the model carries an arbitrary rigid energy offset (compare "
              "band energies relative to E_F). Density cutoffs per element: "
              + "; ".join(f"{el} {v}" for el, v in sorted(plan.ke_sources.items())) + "."),
    ] + [_para(f"Note: {n}") for n in plan.notes]
    return "\n\n".join(paragraphs) + "\n"
