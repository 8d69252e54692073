"""Demo training: the small models the package ships, trained on synthetic phantoms on a CPU.

Above `models` (folders, networks, checkpoints), `phantom` (the training data), `pipeline` (the
same functions inference feeds the networks through) and `metrics`; only the CLI
(``models train-demo``) imports it, so loading and running a model never pulls training in::

    config.py          TrainConfig: what both trainers share (seed, threads, training-set
                       size, seed blocks, the train-demo options), the record's common parts
    demo.py            the semantic and instance demo models: train, record, model cards
    demo_data.py       their phantoms in model space (cached) and patch samplers
    demo_loops.py      their training loops (cross-entropy + soft Dice, AdamW)
    demo_eval.py       their held-out accuracy on phantoms and on the tptbox crops
    labeling.py        the demo labelling model: views, training, record
    labeling_data.py   its phantom views and their patches and targets
    labeling_eval.py   its held-out naming scores and model card
"""
