"""A results row is its job's row, or the run stops and names it: rows of another run, damaged
scores, re-typed keys and an edited ``run.json`` are refused with one line (exit status 2),
and refitted only when asked (``--refit-bad-rows``); never a silent refit, never a silent NaN.
The last test draws damage with hypothesis: a correct resume or the one-line refusal."""

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sktelescope.bench import COLUMNS, run_benchmark
from sktelescope.bench._models import available_models
from sktelescope.cli import main

DIABETES = ["sklearn:diabetes"]
RUN = dict(budget=2, n_splits=2, quick=True, progress=False, lens=False)
HEADER_LINES = 1
pytestmark = pytest.mark.usefixtures("one_openmp_thread")


def _resume(folder: Path, **kwargs):
    return run_benchmark(DIABETES, ["hgb"], out=folder, **{**RUN, **kwargs})


@pytest.fixture(scope="module")
def template(tmp_path_factory, one_openmp_thread) -> Path:
    """A finished run (4 hgb rows: configurations 0 and 1 on splits 0 and 1) with its summary."""
    folder = tmp_path_factory.mktemp("template")
    assert _resume(folder).n_run == 4
    return folder


@pytest.fixture(scope="module")
def foreign_rows(tmp_path_factory, one_openmp_thread) -> list[str]:
    """The CSV lines of the same jobs run with ``--seed 1``."""
    folder = tmp_path_factory.mktemp("seed1")
    _resume(folder, seed=1)
    return (folder / "results.csv").read_text().splitlines(keepends=True)[HEADER_LINES:]


@pytest.fixture
def folder(template, tmp_path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(template, out)
    return out


def _lines(folder: Path, name: str = "results.csv") -> list[str]:
    return (folder / name).read_text().splitlines(keepends=True)


def _edit_cell(folder: Path, line: int, column: str, value: str, name: str = "results.csv"):
    """Set one cell of the row on ``line`` (line 1 is the header)."""
    rows = list(csv.reader(io.StringIO((folder / name).read_text(), newline="")))
    rows[line - 1][rows[0].index(column)] = value
    _write_rows(folder / name, rows)


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    path.write_text(buffer.getvalue())


def _snapshot(folder: Path) -> dict:
    return {name: (folder / name).read_text() for name in ("results.csv", "summary.md")}


def _refused(folder: Path, match: str, **kwargs) -> str:
    """Resume, expecting the one-line refusal; the folder is left as it was."""
    before = _snapshot(folder)
    with pytest.raises(ValueError, match=match) as info:
        _resume(folder, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "--refit-bad-rows" in message
    assert _snapshot(folder) == before
    return message


def test_a_row_of_another_seed_with_the_same_key_is_refused(folder, foreign_rows, template):
    with open(folder / "results.csv", "a") as fh:
        fh.write(foreign_rows[0])  # (diabetes, split 0, hgb, config 0) of the --seed 1 run
    _refused(folder, r"results\.csv line 6: the row of job \(sklearn:diabetes, 0, hgb, 0\) "
                     r"has seed '\d+', the job's is '45530766' \(a row of another run")  # fmt: skip
    with pytest.warns(UserWarning, match=r"Moved 1 bad row of results\.csv to results\.csv\.ref"):
        res = _resume(folder, refit_bad_rows=True)
    assert res.n_run == 0  # the job's own row (line 2) stands
    assert (folder / "results.csv.refused").read_text().splitlines()[1:] == [foreign_rows[0][:-1]]
    assert _snapshot(folder) == _snapshot(template)


def test_another_runs_row_in_place_of_the_jobs_is_refitted_only_when_asked(
    folder, foreign_rows, template
):
    lines = _lines(folder)
    lines[1] = foreign_rows[0]
    (folder / "results.csv").write_text("".join(lines))
    _refused(folder, r"line 2: .* has seed")
    with pytest.warns(UserWarning, match="Moved 1 bad row"):
        res = _resume(folder, refit_bad_rows=True)
    assert (res.n_run, res.n_skipped) == (1, 3)
    assert (folder / "summary.md").read_text() == (template / "summary.md").read_text()


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("params", '{"max_iter": 5}', "has params"),
        ("n_train", "300", "has n_train '300', the job's is '266'"),
        ("task", "binary", "has task 'binary'"),
        ("family", "network", "has family 'network'"),
    ],
)
def test_an_identity_cell_that_is_not_the_jobs_is_refused(folder, column, value, problem):
    _edit_cell(folder, 3, column, value)
    _refused(folder, rf"results\.csv line 3: the row of job \(sklearn:diabetes, 1, hgb, 0\) "
                     rf"{problem}")  # fmt: skip


def test_params_written_with_other_spacing_are_the_same_params(folder):
    _edit_cell(folder, 3, "params", '{"max_iter":20}')
    assert _resume(folder).n_run == 0


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("test_r2", "oops"),
        ("test_r2", ""),
        ("val_r2", "nan"),
        ("test_r2", "1.5"),
        ("test_r2", "-inf"),
        ("test_rmse", "-3"),
        ("val_rmse", "1,5"),
    ],
)
def test_a_damaged_score_in_an_ok_row_is_refused_not_read_as_nan(folder, column, value):
    _edit_cell(folder, 4, column, value)
    _refused(folder, rf"results\.csv line 4: {column} is '{value}', not a valid \w+ \(a ")


def test_a_score_of_the_other_task_and_a_damaged_timing_are_refused(folder):
    _edit_cell(folder, 2, "test_accuracy", "0.9")
    _edit_cell(folder, 5, "fit_seconds", "")
    message = _refused(folder, r"line 2: test_accuracy is '0.9', but a regression row has no")
    assert "(and 1 more bad row: line 5)" in message


def test_a_flipped_status_is_refused(folder):
    _edit_cell(folder, 2, "status", "error")
    _refused(folder, r"line 2: an error row without its error message")
    _edit_cell(folder, 2, "error", "ValueError: made up")
    _refused(folder, r"line 2: an error row with a score \(val_r2 is")
    _edit_cell(folder, 2, "status", "done")
    _refused(folder, r"line 2: status is 'done', not ok or error")


def test_a_spreadsheet_resave_that_retypes_split_is_refused_not_refit(folder, template):
    rows = list(csv.reader(io.StringIO((folder / "results.csv").read_text(), newline="")))
    for row in rows[1:]:
        row[1] = f"{float(row[1])}"  # 0 -> 0.0, as a spreadsheet writes a number column
    _write_rows(folder / "results.csv", rows)
    message = _refused(folder, r"line 2: split is '0\.0', not an integer \(re-typed as a decimal")
    assert "(and 3 more bad rows: line 3, 4, 5)" in message
    with pytest.warns(UserWarning, match=r"Moved 4 bad rows .*their jobs run again"):
        res = _resume(folder, refit_bad_rows=True)
    assert res.n_run == 4 and len(_lines(folder)) == 5  # refitted once each, not doubled
    assert len(_lines(folder, "results.csv.refused")) == 5
    assert (folder / "summary.md").read_text() == (template / "summary.md").read_text()


def test_a_line_with_a_cell_too_many_or_too_few_is_refused(folder):
    lines = _lines(folder)
    (folder / "results.csv").write_text("".join(lines[:3]) + lines[3][:-1] + ",x\n" + lines[4])
    _refused(folder, r"line 4: it has 26 cells, the header 25")


def test_a_second_row_after_a_jobs_ok_row_is_refused(folder):
    lines = _lines(folder)
    (folder / "results.csv").write_text("".join(lines) + lines[1])
    _refused(folder, r"line 6: a second row of job \(sklearn:diabetes, 0, hgb, 0\), after its "
                     r"ok row on line 2")  # fmt: skip


def test_an_error_row_then_its_ok_row_is_a_finished_job(folder):
    """What --retry-errors writes: the error row first, the ok row that replaced it after."""
    rows = list(csv.reader(io.StringIO((folder / "results.csv").read_text(), newline="")))
    error = [cell if not name.startswith(("val_", "test_", "predict")) else ""
             for name, cell in zip(rows[0], rows[1])]  # fmt: skip
    error[rows[0].index("status")], error[rows[0].index("error")] = "error", "ValueError: x"
    _write_rows(folder / "results.csv", [rows[0], error, *rows[1:]])
    assert _resume(folder).n_run == 0


@pytest.mark.parametrize("seed", [1, 0])
def test_a_hand_edited_run_json_seed_is_refused(folder, seed):
    settings = json.loads((folder / "run.json").read_text())
    settings["protocol"]["seed"] = 1
    (folder / "run.json").write_text(json.dumps(settings))
    with pytest.raises(ValueError, match=r"run\.json says seed 1, but none of the 4 rows of "
                       r"results\.csv was made with it \(line 2 has seed '45530766', seed 1 "
                       r"gives '\d+'\): run\.json was edited"):  # fmt: skip
        _resume(folder, seed=seed)


@pytest.mark.parametrize(
    ("edit", "kwargs", "problem"),
    [
        (("quick", None, False), {"quick": False}, "has params '{\"max_iter\": 20}', the job's is"),
        (
            ("protocol", "max_train", 100),
            {"max_train": 100},
            "has n_train '266', the job's is '100'",
        ),
    ],
)
def test_another_hand_edited_run_json_setting_is_refused_by_the_rows(folder, edit, kwargs, problem):
    settings = json.loads((folder / "run.json").read_text())
    section, key, value = edit
    if key is None:
        settings[section] = value
    else:
        settings[section][key] = value
    (folder / "run.json").write_text(json.dumps(settings))
    _refused(folder, rf"results\.csv line 2: the row of job .* {problem}", **kwargs)


def test_the_cli_refuses_a_bad_row_with_exit_2_and_names_the_flag(folder, capsys):
    _edit_cell(folder, 4, "test_r2", "oops")
    argv = ["bench", "--datasets", "sklearn:diabetes", "--models", "hgb", "--budget", "2",
            "--splits", "2", "--quick", "--no-lens", "--no-progress",
            "--out", str(folder)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "results.csv line 4: test_r2 is 'oops'" in err
    assert "rerun with --refit-bad-rows" in err
    assert main([*argv, "--refit-bad-rows"]) == 0
    out, err = capsys.readouterr()
    assert "1 fit run, 3 already in" in out
    assert err.startswith("sktelescope: note: Moved 1 bad row of results.csv to results.csv.ref")


@pytest.mark.slow
@pytest.mark.skipif(
    "telescoping_mlp" not in available_models(), reason="the lens needs telescoping_mlp (torch)"
)
def test_a_lens_row_of_another_seed_or_with_a_damaged_number_is_refused(tmp_path):
    kwargs = dict(budget=1, n_splits=1, quick=True, progress=False, report=False,
                  lens_trees="hgb", out=tmp_path)  # fmt: skip
    res = run_benchmark(DIABETES, ["hgb", "telescoping_mlp"], **kwargs)
    assert res.n_lens_run == 1
    lens = (tmp_path / "lens.csv").read_text()
    _edit_cell(tmp_path, 2, "seed", "7", "lens.csv")
    with pytest.raises(ValueError, match=r"lens\.csv line 2: the row of job \(sklearn:diabetes, "
                       r"0, hgb, 0, 0, telescoping_mlp\|step\|[^)]*\) has seed '7', the job's "
                       r"is '\d+'"):  # fmt: skip
        run_benchmark(DIABETES, ["hgb", "telescoping_mlp"], **kwargs)
    (tmp_path / "lens.csv").write_text(lens)
    _edit_cell(tmp_path, 2, "gap_p000", "oops", "lens.csv")
    with pytest.raises(ValueError, match=r"lens\.csv line 2: gap_p000 is 'oops', not a number"):
        run_benchmark(DIABETES, ["hgb", "telescoping_mlp"], **kwargs)


# --------------------------------------------------------------------------- generated damage

#: Values that no cell of an ok row can hold (scores: non-numbers, out of range, non-finite).
NOT_A_SCORE = ["", "oops", "nan", "inf", "-inf", "1,5", "2", "-1e300", "1e999", " 0.5x"]
REGRESSION_SCORES = ["val_r2", "test_r2", "val_rmse", "test_rmse"]
CLASSIFICATION_SCORES = ["test_accuracy", "val_log_loss", "test_roc_auc"]
IDENTITY = ("dataset", "split", "model", "config", "task", "family", "seed", "n_train", "n_val",
            "n_test", "params", "status", "error")  # fmt: skip


def _other_texts(value: str) -> st.SearchStrategy:
    """Another text for an identity cell: re-typed numbers, neighbours, blanks, junk."""
    variants = ["", " ", "oops", value + " ", value.upper(), "'" + value, value + ".0"]
    if value.lstrip("-").isdigit():
        variants += [str(int(value) + 1), str(int(value) - 1), f"{float(value)}", f"{value}e0"]
    if value.startswith("{"):
        variants += ['{"max_iter": 19}', "{}", value.replace("20", "21"), value[:-1]]
    return st.sampled_from([v for v in variants if v != value] or ["oops"])


#: The kinds of damage, cell edits more often.
KINDS = (["identity"] * 4 + ["score"] * 3 + ["copy_cell"] * 2 + ["timing", "drop_cell",
         "extra_cell", "duplicate", "delete_row", "swap_rows", "blank_line", "header",
         "stray_quote"])  # fmt: skip


@st.composite
def damage(draw) -> tuple[str, tuple]:
    """One edit of the CSV's data rows (or its header)."""
    kind = draw(st.sampled_from(KINDS))
    row = draw(st.integers(0, 3))
    if kind == "identity":
        return kind, (row, draw(st.sampled_from(IDENTITY)))
    if kind == "score":
        column = draw(st.sampled_from(REGRESSION_SCORES + CLASSIFICATION_SCORES))
        wrong_task = ["0.5"] if column in CLASSIFICATION_SCORES else []  # no such score here
        return kind, (row, column, draw(st.sampled_from(NOT_A_SCORE + wrong_task)))
    if kind == "timing":
        return kind, (row, draw(st.sampled_from(["fit_seconds", "predict_seconds"])),
                      draw(st.sampled_from(["", "oops", "-1", "nan", "12.5", "0"])))  # fmt: skip
    if kind in ("swap_rows", "copy_cell"):
        return kind, (row, draw(st.integers(0, 3)), draw(st.sampled_from(IDENTITY)))
    return kind, (row, draw(st.integers(0, len(COLUMNS) - 1)))


def _apply(path: Path, kind: str, args: tuple, draw) -> None:
    rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
    header, data = rows[0], rows[1:]
    row = args[0]
    if kind == "identity":
        column = header.index(args[1])
        data[row][column] = draw(_other_texts(data[row][column]))
    elif kind in ("score", "timing"):
        data[row][header.index(args[1])] = args[2]
    elif kind == "drop_cell":
        del data[row][args[1]]
    elif kind == "extra_cell":
        data[row].insert(args[1], "x")
    elif kind == "duplicate":
        data.insert(args[1] % 5, list(data[row]))
    elif kind == "delete_row":
        del data[row]
    elif kind == "swap_rows":
        data[row], data[args[1]] = data[args[1]], data[row]
    elif kind == "copy_cell":
        column = header.index(args[2])
        data[row][column] = data[args[1]][column]
    elif kind == "blank_line":
        data.insert(args[1] % 5, [])
    elif kind == "header":
        header[args[1]] = header[args[1]].upper()
    _write_rows(path, [header, *data])
    if kind == "stray_quote":  # a quote opened in a cell and never closed: CSV swallows lines
        lines = path.read_text().splitlines(keepends=True)
        cells = lines[row + 1].split(",")
        cells[args[1]] = '"' + cells[args[1]].lstrip('"')
        lines[row + 1] = ",".join(cells)
        path.write_text("".join(lines))


DAMAGE = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@DAMAGE
@given(change=damage(), data=st.data())
def test_generated_damage_gives_a_correct_resume_or_a_one_line_refusal(template, change, data):
    """Whatever the damage, the run either refuses it in one line naming results.csv (and
    changes nothing), or resumes to the undamaged run's summary with every job ok."""
    out = Path(tempfile.mkdtemp()) / "out"
    try:
        shutil.copytree(template, out)
        (out / "summary.md").unlink()
        _apply(out / "results.csv", *change, data.draw)
        damaged = (out / "results.csv").read_text()
        with pytest.MonkeyPatch.context() as patch:  # the plots are not under test: faster
            patch.setattr("sktelescope.bench._report._plots", lambda *args: None)
            try:
                res = _resume(out)
            except ValueError as exc:
                message = str(exc)
                assert "\n" not in message and "results.csv" in message
                assert (out / "results.csv").read_text() == damaged
                assert not (out / "summary.md").exists()
                event(f"{change[0]}: refused")
                return
        event(f"{change[0]}: resumed, {res.n_run} refitted")
        assert res.n_failed == 0
        assert (out / "summary.md").read_text() == (template / "summary.md").read_text()
    finally:
        shutil.rmtree(out.parent)
