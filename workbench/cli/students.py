"""`workbench students`."""

from __future__ import annotations

import typer
from rich.table import Table

from workbench.cli._common import console, fail, macs_text, print_json, user_errors


def students_cmd(
    task: str | None = typer.Option(None, "--task", help="Only the students of this task."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the registered students: task, family, params and MACs per preset, and the hyper-parameter that
    sets the hint layer's width (what `distill --preset auto` sizes)."""
    from students import example_inputs, get_student, list_students, student_spec
    from workbench.profile.quick import count_macs
    from workbench.registry import width_value
    from workbench.tasks import list_tasks

    if task is not None and task not in list_tasks():
        fail(f"unknown task {task!r}; expected one of {', '.join(list_tasks())}")
    rows = []
    for name in list_students(task):
        spec = student_spec(name)
        row = {"name": name, "task": spec.task, "description": spec.description, "inputs": list(spec.inputs),
               "hint_layer": spec.hint_layer, "width_param": spec.width_param, "width_factor": spec.width_factor,
               "presets": {}}
        for preset in spec.presets:
            model = get_student(name, preset=preset).eval()
            ex = example_inputs(name, preset, batch=1)
            row["presets"][preset] = {"params": sum(p.numel() for p in model.parameters()),
                                      "macs": count_macs(model, tuple(ex.values())),
                                      "input_shapes": {k: list(v.shape[1:]) for k, v in ex.items()},
                                      "width": width_value(model.config, spec.width_param)}
        rows.append(row)
    if as_json:
        print_json(rows)
        return
    table = Table(title="Students")
    for col in ("name", "task", "preset", "params", "MACs", "hint width", "family"):
        table.add_column(col, justify="right" if col in ("params", "MACs") else "left")
    for r in rows:
        for k, (preset, p) in enumerate(r["presets"].items()):
            width = "-" if r["width_param"] is None else f"{r['width_param']} = {p['width']}"
            table.add_row(r["name"] if k == 0 else "", r["task"] if k == 0 else "", preset, f"{p['params']:,}",
                          macs_text(p["macs"]), width, r["description"] if k == 0 else "")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `students` to the top-level app."""
    app.command("students")(user_errors(students_cmd))
