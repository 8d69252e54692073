"""The demo models' cards (`training.demo.write_cards`): real-data figures and held-out scores
measured again with the current pipeline, written back into the folder.
"""

from __future__ import annotations

import pytest

from spineps_dask.models.folders import DEMO_MODELS, demo_model

pytestmark = pytest.mark.skipif(
    not (DEMO_MODELS / "instance" / "inference_config.json").is_file(),
    reason="demo models not trained yet (spineps-dask models train-demo)",
)

HELD_OUT_SEED = 100_003  # a held-out phantom (training.demo.HELD_OUT_OFFSET + 3), never trained on


def test_model_card_reports_the_real_tptbox_crops(tmp_path) -> None:
    """`write_cards` measures the instance demo model on the real masks tptbox ships and writes
    the figures into the card (issue 4, item 5): real vertebrae, so Dice well above chance."""
    import json
    import re
    import shutil

    pytest.importorskip("TPTBox")
    from spineps_dask.training.demo import write_cards

    shutil.copytree(demo_model("instance"), tmp_path / "instance")
    write_cards(tmp_path, heldout=False)
    card = (tmp_path / "instance" / "MODEL_CARD.md").read_text()
    assert "## Real data" in card
    block = re.findall(r"```json\n(.*?)\n```", card, flags=re.S)[-1]
    real = json.loads(block)
    for crop in ("sample_mri", "sample_ct"):
        scores = real[f"{crop}: instance phase on the real semantic mask"]
        assert scores["instance/vertebra/DSC"] > 0.9


def test_cards_measure_held_out_scores_again(tmp_path) -> None:
    """``--which cards`` measures the held-out phantoms a folder names with the current pipeline
    and writes the scores back into its inference_config.json (one phantom here, for time)."""
    import json
    import shutil

    pytest.importorskip("TPTBox")
    from spineps_dask.training.demo import write_cards

    folder = tmp_path / "instance"
    shutil.copytree(demo_model("instance"), folder)
    config_path = folder / "inference_config.json"
    config = json.loads(config_path.read_text())
    config["training"]["heldout_phantom_seeds"] = f"{HELD_OUT_SEED}..{HELD_OUT_SEED}"
    config["training"]["heldout"] = {"stale": True}
    config_path.write_text(json.dumps(config))
    write_cards(tmp_path)
    heldout = json.loads(config_path.read_text())["training"]["heldout"]
    assert heldout["n_subjects"] == 1 and heldout["subjects"][0]["seed"] == HELD_OUT_SEED
    assert heldout["pipeline"]["vertebra_dice_mean"] > 0.9
    assert '"n_subjects": 1' in (folder / "MODEL_CARD.md").read_text()


def test_a_chained_models_card_lists_every_earlier_command(tmp_path) -> None:
    """The shipped semantic model was trained in six chained runs (issue 17); its card gives
    the command of each, oldest first, not only the last run's (`training.config.lineage`)."""
    from spineps_dask.models.config import CONFIG_NAME, load_config
    from spineps_dask.training.demo import _write_card

    config = load_config(demo_model("semantic") / CONFIG_NAME)
    runs = config.training["lineage"]
    assert len(runs) == 5
    _write_card(tmp_path, "semantic", config, None)
    card = (tmp_path / "MODEL_CARD.md").read_text()
    places = [card.index(f"`{run['command']}`") for run in runs]
    assert places == sorted(places) and places[0] > card.index("- command:")
