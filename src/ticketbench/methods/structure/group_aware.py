"""Group-aware IMP (Structure-LTH Alg. 4, an ablation): an IMP variant that regroups its mask in every round."""

from __future__ import annotations

from typing import Any

from ...masks import Mask
from ...recipes import resolve_recipe
from ..imp import RoundInputs, StructureLth
from .stage import StructureHparams, regroup_with


def _regroup_hparams(block: dict) -> StructureHparams:
    return StructureHparams.from_sources({"structure": {**block, "method": "regroup"}})


class GroupAware(StructureLth):
    help = ("group-aware IMP (Structure-LTH Alg. 4, an ablation): regroup the mask inside every round; the next "
            "round prunes from the regrouped mask (regroup settings from the structure: block)")

    def mask(self, x: RoundInputs) -> tuple[Mask, dict[str, Any]]:
        pruned, _ = super().mask(x)
        convs = Mask({n: m for n, m in pruned.items() if m.dim() == 4})
        res = regroup_with(_regroup_hparams(x.config.get("structure") or {}), convs, x.pre.seed)
        return Mask({**pruned, **res.mask}), {"unstructured_sparsity": pruned.sparsity(),
                                              "fallback_layers": res.fallback}

    def settings_of_run(self, pre, config: dict) -> dict:
        """The structure block it regroups with: Structure-LTH's recipe for this dataset and backbone (the config's
        recipes:, else its structure: block)."""
        block = resolve_recipe(config, "structure_lth", pre.data_hp.dataset, pre.model_hp.backbone)["structure"] \
            if config.get("recipes") else dict(config.get("structure") or {})
        _regroup_hparams(block)
        return {"structure": block}
