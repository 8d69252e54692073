"""`training.demo.train_demo_models`: which phantoms each model trains on."""

from spineps_dask.training import demo
from spineps_dask.training.demo import DemoTrainConfig


def test_t2w_drawn_sac_reaches_the_semantic_model_and_not_the_instance_model(tmp_path, monkeypatch):
    """``--t2w-drawn-sac`` (issue 17, session 25) changes the T2w phantoms the semantic model
    trains on; the instance model, which never sees the sac, keeps the T2w phantoms as they
    were, so its training is not changed by a semantic option."""

    def load_cases(seeds, cache, plans, *, appearance="t2w", drawn_sac=0.0, **kw):
        return [(appearance, drawn_sac, kw.get("textbook_sac", 0.0))]

    got = {}
    monkeypatch.setattr(demo, "load_cases", load_cases)
    monkeypatch.setattr(demo, "train_semantic", lambda out, cases, *a: got.update(sem=cases))
    monkeypatch.setattr(demo, "train_instance", lambda out, cases, cfg: got.update(inst=cases))
    monkeypatch.setattr(demo, "write_cards", lambda *a, **k: None)
    cfg = DemoTrainConfig().with_options(
        n_train=2, n_random_looks=2, textbook_sac=0.3, t2w_drawn_sac=0.5
    )
    demo.train_demo_models(tmp_path, cfg, which="both")
    assert got["sem"] == [("t2w", 0.5, 0.0), ("random", 0.0, 0.3)]
    assert got["inst"] == [("t2w", 0.0, 0.0)]


def test_a_semantic_run_with_drawn_sacs_does_not_load_the_instance_models_phantoms(
    tmp_path, monkeypatch
):
    """``--which semantic --t2w-drawn-sac`` prepares and loads only the drawn T2w set: the
    textbook set is the instance model's, and loading it too would double the T2w memory."""
    loaded = []

    def load_cases(seeds, cache, plans, *, appearance="t2w", drawn_sac=0.0, **kw):
        loaded.append((appearance, drawn_sac))
        return []

    monkeypatch.setattr(demo, "load_cases", load_cases)
    monkeypatch.setattr(demo, "train_semantic", lambda *a: None)
    monkeypatch.setattr(demo, "write_cards", lambda *a, **k: None)
    cfg = DemoTrainConfig().with_options(n_train=2, n_random_looks=2, t2w_drawn_sac=0.5)
    demo.train_demo_models(tmp_path, cfg, which="semantic")
    assert loaded == [("t2w", 0.5), ("random", 0.0)]
