"""A faithful port of spineps 2.1.3's post-processing phase: the project's "reference mode".

Issue #22: with the same scan and models, the final masks should match ``spineps`` 2.1.3
(``-ml none``) voxel for voxel once this project's own extra rules are switched off. This
package re-implements ``phase_post.phase_postprocess_combined`` and what it calls with numpy
and scipy only; each function names the reference function it mirrors and the reference's
quirks it keeps on purpose. ``tests/pipeline/test_reference_post.py`` checks it against
masks captured from the reference (``benchmarks/fidelity_post_capture.py``).

Steps, in order (all on (P, I, R) arrays)::

    assign_articular_processes      # phase_post.assign_vertebra_inconsistency
    assign_missing_components       # phase_post.mask_cleaning_other + assign_missing_cc
    merge_split_top_vertebra        # phase_post.detect_and_solve_merged_vertebra
    fix_posterior_fragments         # proc_functions.fix_wrong_posterior_instance_label
    number_top_to_bottom            # phase_post.label_instance_top_to_bottom
    apply_overrides                 # sacrum / metal / dens assignments
    attach_discs_endplates          # phase_post.add_ivd_ep_vert_label (+ _split_endplates)

Reference behaviour kept on purpose (each pinned by a test):

- the one orientation-dependent step: the split-top-vertebra merge sorts by axis 1 of the
  scan's *own* orientation (``scan_orientation``), so on an A-S-R scan it looks at the bottom;
- the lowest id grows once from its voxels outside the semantic vertebra (on discs) before
  the mask clears them; later ids do not;
- an articular process dominated by unlabelled voxels is removed from its vertebra;
- a posterior fragment "touches" the ids found in its bounding box (+1), not its neighbours;
  only the 2nd and 3rd largest pieces of ids 1..25 are looked at;
- every id is renumbered from the top, so 25+ vertebrae run into 26 (S1) and 28 (T13);
- the sacrum counts as the top of the image when discs are attached: a disc above every
  vertebra becomes 126; both endplates of a disc take the vertebra above it;
- endplate voxels first reached by an unrelated vertebra end as 0 in the semantic mask.
"""

from spineps_dask.pipeline.reference.discs import attach_discs_endplates, split_endplates
from spineps_dask.pipeline.reference.instances import (
    apply_overrides,
    contact_threshold_voxels,
    fix_posterior_fragments,
    merge_split_top_vertebra,
    number_top_to_bottom,
)
from spineps_dask.pipeline.reference.phase import postprocess_like_reference
from spineps_dask.pipeline.reference.reconcile import (
    assign_articular_processes,
    assign_missing_components,
)

__all__ = [
    "apply_overrides",
    "assign_articular_processes",
    "assign_missing_components",
    "attach_discs_endplates",
    "contact_threshold_voxels",
    "fix_posterior_fragments",
    "merge_split_top_vertebra",
    "number_top_to_bottom",
    "postprocess_like_reference",
    "split_endplates",
]
