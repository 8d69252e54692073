"""The sweep YAML parser: every bad key or value is refused with where, what and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spineps_dask.sweep import Setting, SweepConfig, SweepConfigError, resolve_grid

EXAMPLES = Path(__file__).resolve().parents[2] / "benchmarks" / "sweeps"
GOOD = {"cohort": {"phantom": {"subjects": 2, "seed": 1}}, "grid": {"postprocess": [True, False]}}


def _with(**changes):
    raw = {**GOOD, **changes}
    return {k: v for k, v in raw.items() if v is not None}


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (_with(gird={}), r"sweep config: unknown key 'gird'; allowed: cohort, out, cluster"),
        (_with(grid=None), r"missing 'grid'"),
        (
            _with(grid={"postprocess": "yes"}),
            r"grid.postprocess: 'yes' is not allowed; give a list",
        ),
        (_with(grid={"postprocess": [1]}), r"grid.postprocess\[0\]: 1 is not allowed; use true or"),
        (_with(grid={"step_size": [0.5, 1.5]}), r"grid.step_size\[1\]: 1.5 .* number in \(0, 1\]"),
        (_with(grid={"n4": [True, True]}), r"grid.n4: \[True, True\] repeats a value"),
        (
            _with(grid={"merge.foo": [1]}),
            r"unknown setting 'merge.foo'; allowed: n4, recipe, reference_mode, step_size",
        ),
        (
            _with(grid={"merge": {"couple_dice": [2]}}),
            r"grid.merge.couple_dice\[0\]: 2 is not allowed; use a number in \[0, 1\]",
        ),
        (
            _with(grid={"merge.neighbour_range": [0]}),
            r"merge.neighbour_range\[0\]: 0 .* whole number >= 1",
        ),
        (_with(grid={"folds": [[]]}), r"grid.folds\[0\]: \[\] is not allowed; use a fold"),
        (_with(fixed={"postprocess": True}), r"fixed: 'postprocess' is also in grid"),
        (_with(fixed={"n4": "off"}), r"fixed.n4: 'off' is not allowed; use true or false"),
        (_with(baseline={"n4": True}), r"baseline: 'n4' is not swept; baseline keys: postprocess"),
        (_with(baseline={"postprocess": None}), r"baseline.postprocess: None is not allowed"),
        (
            _with(cohort={"phantom": {"subjects": 2}, "store": "x.zarr"}),
            r"cohort: give exactly one of phantom, bids, store \(got \['phantom', 'store'\]\)",
        ),
        (_with(cohort={"references": "r"}), r"cohort: give exactly one of .* \(got none\)"),
        (
            _with(cohort={"phantom": {"subjects": 2, "region": "neck"}}),
            r"cohort.phantom.region: 'neck' is not allowed; use one of cervical, thoracic",
        ),
        (_with(cohort={"phantom": {"subjects": 0}}), r"cohort.phantom.subjects: 0 .* >= 1"),
        (
            _with(cohort={"phantom": {"n": 2}}),
            r"cohort.phantom: unknown key 'n'; allowed: subjects",
        ),
        (_with(workers=0), r"workers: 0 is not allowed"),
        (_with(models={"semantc": "x"}), r"models: unknown key 'semantc'; allowed: semantic"),
    ],
)
def test_bad_config_is_refused_with_the_key_and_what_is_allowed(raw, match):
    """Each mistake names where it is, the bad value and what would be accepted."""
    with pytest.raises(SweepConfigError, match=match):
        SweepConfig.from_dict(raw)


def test_grid_is_the_product_in_file_order_over_fixed_settings():
    """Fixed settings reach every point; the baseline is the first point matching ``baseline``."""
    cfg = SweepConfig.from_dict(
        {
            **GOOD,
            "fixed": {"n4": False},
            "grid": {"postprocess": [True, False], "merge": {"couple_dice": [0.3, 0.5]}},
            "baseline": {"postprocess": False},
        }
    )
    points = cfg.settings(Setting())
    assert [(p.postprocess, dict(p.merge)["couple_dice"]) for p in points] == [
        (True, 0.3),
        (True, 0.5),
        (False, 0.3),
        (False, 0.5),
    ]
    assert all(p.n4 is False for p in points)
    assert cfg.baseline_index() == 2
    assert points[1].label(tuple(cfg.grid)) == "postprocess=on, merge.couple_dice=0.5"


def test_relative_paths_resolve_against_the_yaml_folder(tmp_path):
    """Paths in the file are relative to the file, so a config works from any directory."""
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "s.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "cohort": {"bids": "data"}, "out": "o"}))
    cfg = SweepConfig.from_file(path)
    assert cfg.cohort.bids == tmp_path / "conf" / "data"
    assert cfg.out == tmp_path / "conf" / "o"
    assert SweepConfig.from_file(path, out=tmp_path / "x").out == tmp_path / "x"
    # a path given on the command line is relative to where the command runs
    assert SweepConfig.from_file(path, out="rel").out == Path.cwd() / "rel"


def test_unreadable_yaml_says_so(tmp_path):
    """Broken YAML or a non-mapping file is a SweepConfigError, not a traceback."""
    path = tmp_path / "s.yaml"
    path.write_text("grid: [unclosed\n")
    with pytest.raises(SweepConfigError, match="is not valid YAML"):
        SweepConfig.from_file(path)
    path.write_text("- a list\n")
    with pytest.raises(SweepConfigError, match="expected a mapping"):
        SweepConfig.from_file(path)


def test_fold_the_model_lacks_is_refused_before_any_work():
    """A fold missing from the semantic model folder is caught when the grid is resolved."""
    cfg = SweepConfig.from_dict({**GOOD, "grid": {"folds": [[0], [3]]}})
    with pytest.raises(SweepConfigError, match=r"folds: \[3\] not in the semantic model .*fold_0"):
        resolve_grid(cfg)


def test_shipped_examples_parse():
    """The example configs in benchmarks/sweeps/ stay valid as the schema evolves."""
    paths = sorted(EXAMPLES.glob("*.yaml"))
    assert paths
    for path in paths:
        cfg = SweepConfig.from_file(path)
        _, settings, labels = resolve_grid(cfg)
        assert len(settings) == len(labels) >= 2
