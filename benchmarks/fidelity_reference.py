"""Run `spineps` 2.1.3 on scans and capture what it feeds its networks, stage by stage.

Runs with the *reference's* Python (its own virtual environment), never this project's; it
imports only spineps, TPTBox, numpy and torch. `benchmarks/fidelity.py` starts it and compares
the captures with this project's. One ``.npz`` per scan in the output folder:

- ``net_input``: the semantic network's preprocessed input (float16, nnU-Net axis order) and
  ``n_windows``, the number of sliding-window forward passes;
- ``raw`` (+ ``raw_affine``): the semantic argmax at model resolution (class indices), before
  cleaning; ``clean`` (+ ``clean_affine``): the cleaned model-resolution mask (labels);
- ``inst_grid`` (+ ``inst_grid_affine``): the mask on the instance grid, cropped as spineps
  crops it; ``cutout_centres`` and ``cutouts``: each cutout's centre on that grid and its
  mapped labels, in the order the model sees them; ``inst_pred``: the model's answer for each;
  ``vert_grid`` (+ affine): the merged vertebrae on the (uncropped) instance grid;
- ``semantic`` / ``instance`` (+ ``scan_affine``): the final masks on the scan grid.

    /work/refvenv/bin/python benchmarks/fidelity_reference.py OUT SEM_FOLDER INST_FOLDER SCAN...
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("SPINEPS_NO_CITATION_REMINDER", "1")

import numpy as np
import torch
from reference_runs import reference_runs


def _capture_hooks(store: dict) -> None:
    """Wrap the reference's functions so each stage's array lands in ``store``."""
    from spineps import phase_instance, seg_model, seg_run
    from TPTBox.segmentation.nnUnet_utils import predictor as tpt_predictor

    cls = tpt_predictor.nnUNetPredictor
    orig_logits = cls.predict_logits_from_preprocessed_data
    orig_forward = cls._internal_maybe_mirror_and_predict

    def logits(self, data, *a, **k):
        store.setdefault("net_input", np.asarray(data.detach().cpu().numpy()))
        out = orig_logits(self, data, *a, **k)
        if os.environ.get("FIDELITY_LOGITS") == "1":  # large: for diagnosis only
            store.setdefault("logits", out.detach().cpu().numpy())
        return out

    def forward(self, x, *a, **k):
        store["n_windows"] = store.get("n_windows", 0) + int(x.shape[0])
        store.setdefault("net_input_dtype", str(x.dtype))
        return orig_forward(self, x, *a, **k)

    cls.predict_logits_from_preprocessed_data = logits
    cls._internal_maybe_mirror_and_predict = forward

    orig_run_inference = seg_model.run_inference

    def run_inference(input_nii, predictor, *a, **k):
        out = orig_run_inference(input_nii, predictor, *a, **k)
        store["raw"] = out[0].get_seg_array()
        store["raw_affine"] = np.asarray(out[0].affine)
        return out

    seg_model.run_inference = run_inference

    orig_semantic = seg_run.predict_semantic_mask

    def predict_semantic_mask(*a, **k):
        out = orig_semantic(*a, **k)
        store["clean"] = out[0].get_seg_array()
        store["clean_affine"] = np.asarray(out[0].affine)
        return out

    seg_run.predict_semantic_mask = predict_semantic_mask

    orig_collect = phase_instance.collect_vertebra_predictions

    def collect(seg_nii, *a, **k):
        store["inst_grid"] = seg_nii.get_seg_array()
        store["inst_grid_affine"] = np.asarray(seg_nii.affine)
        return orig_collect(seg_nii, *a, **k)

    phase_instance.collect_vertebra_predictions = collect

    orig_crop = phase_instance.nii_calc_crop_around_centerpoint

    def crop(poi, arr, cutout_size, *a, **k):
        out = orig_crop(poi, arr, cutout_size, *a, **k)
        store.setdefault("cutout_centres", []).append([float(v) for v in poi])
        store.setdefault("cutouts", []).append(out[0].get_seg_array().astype(np.uint8))
        return out

    phase_instance.nii_calc_crop_around_centerpoint = crop

    orig_batch = seg_model.SegmentationModelUnet3D.segment_scan_batch

    def segment_scan_batch(self, inputs, *a, **k):
        out = orig_batch(self, inputs, *a, **k)
        from spineps.seg_enums import OutputType

        store["inst_pred"] = np.stack([r[OutputType.seg].get_seg_array() for r in out])
        return out

    seg_model.SegmentationModelUnet3D.segment_scan_batch = segment_scan_batch

    orig_instance = seg_run.predict_instance_mask

    def predict_instance_mask(*a, **k):
        out = orig_instance(*a, **k)
        if out[0] is not None:
            store["vert_grid"] = out[0].get_seg_array()
            store["vert_grid_affine"] = np.asarray(out[0].affine)
        return out

    seg_run.predict_instance_mask = predict_instance_mask


def main(argv: list[str]) -> int:
    out, sem_folder, inst_folder, *scans = argv
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    n4 = os.environ.get("FIDELITY_N4", "0") == "1"
    torch.set_num_threads(int(os.environ.get("FIDELITY_THREADS", "1")))
    store: dict = {}
    _capture_hooks(store)
    for name, result, seconds in reference_runs(
        sem_folder, inst_folder, scans, store, n4=n4, tag="fidelity"
    ):
        arrays = {k: v for k, v in store.items() if isinstance(v, np.ndarray)}
        if "cutouts" in store:
            arrays["cutouts"] = np.stack(store["cutouts"])
            arrays["cutout_centres"] = np.asarray(store["cutout_centres"])
        meta = {
            "seconds": seconds,
            "n_windows": store.get("n_windows", 0),
            "net_input_dtype": store.get("net_input_dtype", ""),
        }
        if len(result) == 4:
            seg, vert, _ctd, err = result
            arrays["semantic"] = seg.get_seg_array()
            arrays["instance"] = vert.get_seg_array()
            arrays["scan_affine"] = np.asarray(seg.affine)
            meta["error"] = str(err)
        else:  # (paths, ErrCode): spineps gave up; the stages it reached are kept
            meta["error"] = str(result[-1])
        np.savez_compressed(out_dir / f"{name}.npz", meta=json.dumps(meta), **arrays)
        print(f"{name}: {meta}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
