"""The trainers' shared config base (`training.config.TrainConfig`).

Protects: both configs keep their own defaults and field order with the shared fields first
(the ``settings`` their records write are unchanged), the seed blocks both draw phantoms from,
and the ``train-demo`` options mapped onto each config's own fields (the demo config's limits
on both of its models, its learning rate and starting weights on the semantic one).
"""

from __future__ import annotations

from dataclasses import asdict, fields

import pytest

from spineps_dask.training.config import TrainConfig
from spineps_dask.training.demo import HELD_OUT_OFFSET, DemoTrainConfig, _heldout
from spineps_dask.training.labeling import TRAIN_OFFSET, LabelingTrainConfig


def test_shared_fields_come_first_with_each_trainers_defaults():
    demo, lab = DemoTrainConfig(), LabelingTrainConfig()
    shared = [f.name for f in fields(TrainConfig)]
    assert shared == ["seed", "threads", "n_train"]
    assert list(asdict(demo))[:3] == shared and list(asdict(lab))[:3] == shared
    assert (demo.seed, demo.threads, demo.n_train) == (0, 2, 32)
    assert (lab.seed, lab.threads, lab.n_train) == (0, 1, 600)


def test_seed_blocks():
    assert DemoTrainConfig(seed=2).seeds(500, 3) == [2500, 2501, 2502]
    assert _heldout(DemoTrainConfig(seed=1, n_heldout=2)) == [
        HELD_OUT_OFFSET + 1000 + k for k in (0, 1)
    ]
    assert LabelingTrainConfig(seed=1, n_train=2).train_seeds() == [
        TRAIN_OFFSET + 1000,
        TRAIN_OFFSET + 1001,
    ]


def test_options_set_each_configs_own_fields():
    demo = DemoTrainConfig().with_options(
        iterations=5, budget_s=9.0, lr=0.01, init_from="start", n_train=4, n_random_looks=None
    )
    assert (demo.sem_iterations, demo.inst_iterations) == (5, 5)
    assert (demo.sem_budget_s, demo.inst_budget_s) == (9.0, 9.0)
    assert (demo.sem_lr, demo.inst_lr, demo.sem_init) == (0.01, DemoTrainConfig().inst_lr, "start")
    assert (demo.n_train, demo.n_random_looks) == (4, 0)
    lab = LabelingTrainConfig().with_options(
        iterations=5, lr=0.01, init_from="start", budget_s=None
    )
    assert (lab.iterations, lab.lr, lab.init_from, lab.budget_s) == (5, 0.01, "start", 2400.0)
    with pytest.raises(ValueError, match="n_random_looks"):
        LabelingTrainConfig().with_options(n_random_looks=3)


def test_a_chained_runs_record_carries_every_earlier_command(tmp_path):
    """A model fine-tuned from a fine-tuned model records every run before it, oldest first
    (issue 17: the card must give the command; a chained model's own names only its start),
    and its card lists them; a start this project did not train (published weights, a bare
    nnU-Net folder) or with a damaged config adds none and stops nothing."""
    import json
    import shutil

    from spineps_dask.config import folder_version
    from spineps_dask.models.folders import demo_model
    from spineps_dask.training.config import init_record, lineage_lines

    start = tmp_path / "semantic"
    shutil.copytree(demo_model("semantic"), start)
    config_path = start / "inference_config.json"
    config = json.loads(config_path.read_text())
    first = {"command": "train-demo A", "iterations": 5, "version": "semantic@00000000"}
    config["training"] = {"command": "train-demo B", "iterations": 7, "lineage": [first]}
    config_path.write_text(json.dumps(config))

    record = init_record(str(start))
    second = {"command": "train-demo B", "iterations": 7, "version": folder_version(start)}
    assert record["lineage"] == [first, second]
    card = "\n".join(lineage_lines(record))
    assert card.index("`train-demo A` (5 steps") < card.index("`train-demo B` (7 steps")

    config.pop("training")
    config_path.write_text(json.dumps(config))
    assert "lineage" not in init_record(str(start))
    assert lineage_lines({}) == []
    config_path.write_text("{ broken")  # the record is written after training: no traceback
    assert init_record(str(start))["initialised_from_version"] == folder_version(start)
    config_path.unlink()
    assert "lineage" not in init_record(str(start))
