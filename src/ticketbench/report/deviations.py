"""Every deliberate deviation from a paper or its released code, with the reason: the report's list of them.

To add one, append a ``Deviation`` to ``DEVIATIONS``: a unique ``key``, the paper (or "all"), the topic, what the
paper and/or its released code does, what ticketbench does (with the setting that changes it, if any), and why.
The report renders the list as a table; a test checks every field is filled and every key is unique.

Torch-free: ``ticketbench report`` must not import a training stack.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .render import Table


@dataclass(frozen=True)
class Deviation:
    key: str  # stable id, for finding and editing an entry
    paper: str  # PrAC, Structure-LTH, Lottery-Jackpots, or "all"
    topic: str
    source: str  # what the paper and/or its released code does
    ours: str  # what ticketbench does, and the setting that changes it
    why: str


DEVIATIONS: list[Deviation] = [
    # --- PrAC (Zhang et al., ICML 2021) ---------------------------------------------------------------------------
    Deviation(
        "prac-epoch-scaling", "PrAC", "training length on the PrAC set",
        "Paper (§3): a round on the PrAC set P trains N = |P|/|D0| x N0 iterations (linear). Released code "
        "(main_PrAC_imp.py): scales the number of epochs by |P|/|D0| and iterates over P in each epoch, about "
        "(|P|/|D0|)^2 x N0 iterations before early stopping (quadratic).",
        "Linear: the full schedule's epochs over the smaller set (imp.epoch_scaling: linear); "
        "imp.epoch_scaling: quadratic follows the released code.",
        "The paper states the rule. The quadratic scaling trains each round for far fewer iterations than the paper "
        "describes, which would inflate the savings."),
    Deviation(
        "prac-early-stop-eps", "PrAC", "early-stop threshold",
        "Paper (A1): mask-distance threshold eps = 0.07 (queue of 5). README command of the released code: 0.08.",
        "0.07, patience 5 (prac.eps, prac.patience).",
        "The paper is the primary source; the README shows one example command."),
    Deviation(
        "prac-round0-early-stop", "PrAC", "early stop in round 0",
        "Paper (Alg. 1) and released code: the dense round 0 already stops early on mask convergence.",
        "Round 0 replays the pretrain run with the same early stop. Where the schedule is too short for the stop to "
        "fire (fewer than patience + 2 epochs: the default grid's 6 epochs with patience 5), round 0 is the whole "
        "pretrain run, and metrics.json says why (round0.why).",
        "Round 0's iterations count towards PrAC-IMP's cost. This suite used to charge the whole pretrain run in "
        "every case, which the paper's algorithm does not spend."),
    Deviation(
        "prac-random-pruning", "PrAC", "random pruning baseline",
        "PrAC's random pruning: a random mask over all prunable weights at once, at the IMP ticket's overall "
        "sparsity.",
        "The same (imp variant random_prune). This suite's earlier baseline, a random mask with the IMP ticket's "
        "sparsity in every layer, is kept as the variant random_prune_layerwise.",
        "A layer-wise random mask inherits IMP's per-layer budgets, which a random baseline should not know; the "
        "claims use the paper's global baseline."),
    Deviation(
        "prac-lr-restart", "PrAC", "learning-rate schedule after rewinding",
        "Released code: the PrAC script restarts the schedule after rewinding; the vanilla-LT script (main_imp.py) "
        "first steps the scheduler rewind_epoch times.",
        "Full-data IMP and PrAC-IMP both restart it (imp.lr_resume: false); imp.lr_resume: true resumes the schedule "
        "at the rewind point.",
        "The savings compare the two methods: the same schedule keeps the comparison about the data, not the "
        "learning rate."),
    Deviation(
        "prac-within-1pct", "PrAC", "'within 1% of dense'",
        "Paper (§1, §4.3): the extreme matching sparsity is the highest sparsity within 1% of the dense accuracy; "
        "it does not say whether 1% is relative or absolute.",
        "1 percentage point of test accuracy, against the same seed's dense model (per-seed extremes) or the "
        "seed-mean dense accuracy (seed-mean curves).",
        "The report states every accuracy difference in points; at the papers' accuracies (above 90%) the two "
        "readings differ by less than 0.1 point."),
    Deviation(
        "prac-savings-one-seed", "PrAC", "savings matching rule with one seed",
        "Paper (§4.1): savings count up to the highest sparsity where PrAC matches vanilla LT within one standard "
        "deviation over three runs.",
        "One standard deviation over seeds of full-data IMP's accuracy; with one seed, which has none, 1 point.",
        "One seed gives no standard deviation; 1 point is PrAC's own tolerance for matching the dense model."),
    Deviation(
        "grid-dense-runs", "all", "which dense run each paper's methods start from",
        "Each paper trains its own dense model with its own recipe (PrAC 182 epochs, decay at 91/136; Structure-LTH "
        "160 epochs, decay at 80/120, weight decay per network; the jackpot's pre-trained models).",
        "config/paper.yaml gives each paper its recipe (recipes:) and its own dense run where the recipes differ; "
        "papers whose recipes coincide share one run. The embedded default grid has no recipes: one dense run per "
        "cell feeds all three papers' methods.",
        "Sharing where the recipes coincide saves jobs without changing any paper's inputs; on the default grid one "
        "short recipe keeps the whole grid within half an hour and puts every method on the same dense model."),
    Deviation(
        "prac-transfer", "PrAC", "transfer (reusability) experiment",
        "Paper (§4.2): PrAC sets found with ResNet-20 find tickets in ResNet-56 and VGG-16; whether the target "
        "replays the per-round sets or one final set is not stated, and no script is released.",
        "The target's IMP trains round r on the source run's round-r PrAC set (imp --subsets), and each ticket is "
        "retrained on the full data (--evaluate-tickets).",
        "The per-round sets are what the source run trained on; the released checkpoints store that sequence."),
    Deviation(
        "prac-random-subsets", "PrAC", "random subsets (A2.4)",
        "Paper (A2.4): random subsets must hold about 70% of the training data for their tickets to match PrAC's, "
        "whose sets hold 37-54%; the sizes tried and the procedure are not given.",
        "One run: PrAC-IMP whose every round trains on a random subset of that round's PrAC-set size "
        "(experiments.prac_ablations random_subset, prac.random_subset); the claim reads its savings and tickets "
        "against PrAC's.",
        "It tests the claim's point, that a subset of PrAC's size only works when it is the PrAC set, with one run "
        "instead of a sweep of subset sizes, each an IMP run of its own."),
    Deviation(
        "prac-pruning-at-init", "PrAC", "pruning-at-init baselines (§4.3)",
        "Paper (§1, §4.3): PrAC beats SynFlow, SNIP and GraSP at 93.13% sparsity 'iterative, same budget'; how the "
        "baselines were iterated and trained is not given.",
        "IMP variants snip, grasp and synflow (experiments.imp_runs): each round scores afresh to full IMP's kept "
        "count of that round, on the weights of PrAC's rewind point, and trains from there like an IMP round.",
        "Scoring where the IMP tickets start keeps the comparison about the mask; imp.rewind: init scores at "
        "initialisation proper."),
    Deviation(
        "prac-empty-set", "PrAC", "a round where no sample is critical for training",
        "Released code (main_PrAC_imp.py): selects argsort(counts)[-rest:], where rest counts the samples above the "
        "forgetting threshold; with rest = 0 the slice [-0:] selects every row, validation ids and untrained samples "
        "included.",
        "No sample is selected by that rule (the PrAC set is then the pruning-critical samples alone). No setting "
        "restores the released behaviour.",
        "The empty slice is a bug: it trains on the validation split, and the paper's rule selects nobody."),
    # --- Structure-LTH (Chen et al., ICML 2022) -------------------------------------------------------------------
    Deviation(
        "slth-rewind", "Structure-LTH", "rewind point",
        "Paper (§3.1): rewind to epoch 8, 5% of training, on every dataset. Released code: the README runs "
        "--rewind_epoch 16 (10% of 160 epochs); the ImageNet DDP script rewinds to epoch 15.",
        "5% of training for Structure-LTH's own IMP run (imp.structure_rewind: 5%; epoch 8 in config/paper.yaml).",
        "The paper states it for all datasets; a percentage names the same point of the default grid's short "
        "schedule."),
    Deviation(
        "slth-refill-criterion", "Structure-LTH", "Refill channel score",
        "Paper (§3.2): the l1 norm of each channel's remaining trained weights. Released code: the README passes no "
        "--criterion, so the default 'remain' (number of surviving weights) is used.",
        "l1 of the trained weights (structure.criterion: l1); 'remain', act_l1, act_l2 and saliency are available.",
        "The paper names l1 as its main criterion."),
    Deviation(
        "slth-refill-coupled-channels", "Structure-LTH", "Refill on coupled channels",
        "Paper (Alg. 2): each conv layer keeps its own top-scoring output channels, its budget filled by its own "
        "remaining weights. The released code slims only plain ResNet/VGG-style layers.",
        "Where Torch-Pruning's dependency graph couples layers' channels (a residual stream and its downsample conv, "
        "a depthwise or grouped conv after its pointwise one, a squeeze-excite gate), the coupled layers choose "
        "together: one budget from all their remaining weights, one score per channel summed over the layers (each "
        "layer's scores over their mean), whole convolution groups for grouped convs. Independent layers choose per "
        "layer as in the paper. Each emptied unit also loses its bias (a linear's or an SE conv's). Layers whose "
        "channels cannot be removed (a LayerNorm'd residual stream, attention's qkv, option-A padding) are still "
        "refilled per layer and listed with the reason; the classifier keeps its IMP mask. metrics.json: "
        "coupled_groups, units_removed, no_structure_reason.",
        "Per-layer choices in coupled layers empty different channels in each, and then no channel can be removed: "
        "on MobileNetV3 and RegNet the paper's rule removed 1-2 channels (FLOPs ratio 0.996)."),
    Deviation(
        "all-policy-body-linears", "all", "which layers a pruning policy covers",
        "The papers prune CNNs: every conv (Structure-LTH: but the stem), the classifier only in OpenLTH's ResNet-20 "
        "recipe. Their networks have no linear layer outside the classifier.",
        "The prac and structure_lth policies also prune the linear layers of the body (attention qkv and projection, "
        "MLP blocks), so on a ViT or ConvNeXt they cover 83-100% of the body's weights; on the papers' CNNs "
        "nothing changes. A policy covering under 80% of a backbone's body (conv and linear weights but the "
        "classifier's) is refused, except convs_only, "
        "which a user names for exactly that. Every run reports policy_coverage.",
        "A conv-only policy on a ViT prunes only the patch embedding (6-17% of the body) while its tables say "
        "\"36% sparsity\"."),
    Deviation(
        "slth-refill-plus-rho", "Structure-LTH", "Refill+ extra channels",
        "Paper: Refill+ re-activates an extra fraction of the emptied channels; the fraction is not given. Released "
        "code: --fillback-rate, default 0 (which is plain Refill).",
        "rho = 0.1 (structure.rho).",
        "Some rho above 0 is needed for Refill+ to differ from Refill; 0.1 is our choice."),
    Deviation(
        "slth-regroup-parts", "Structure-LTH", "Regroup: parts per layer and block size",
        "Released code: hMETIS partitions every layer's rows into a fixed 8 parts, and a part forms a block only "
        "with more than 16 rows (the paper's t1 and b1; no values in the paper).",
        "min(structure.parts = 8, C_out // (structure.row_threshold + 1)) parts per layer, a block needing more than "
        "row_threshold = 15 rows; structure.regroup_preset: released restores the code's constants.",
        "The parts are nearly equal, so with 8 of them a layer with well under 8 x 17 = 136 output channels (16-64 "
        "in CIFAR ResNets) forms no block and keeps its unstructured mask. Fewer parts, and a 16-row part, let "
        "narrow layers form blocks."),
    Deviation(
        "slth-blocksparse-rule", "Structure-LTH", "Regroup: which layers run block-sparse",
        "Released end-to-end script: every conv that has blocks runs Rumi et al.'s block-sparse CUDA kernels.",
        "Per-block gathered PyTorch convolutions, chosen by a fixed rule: a layer stays one dense masked conv when "
        "its blocks gather more than structure.blocksparse_max_work = 0.55 of the dense work or it has fewer than "
        "structure.blocksparse_min_macs = 36,864 weights (C_out x C_in x kh x kw). Per-layer timings of both "
        "paths are reported, never used to choose.",
        "The CUDA kernels need CUDA 10.2 and sm_52-75; on other devices small or scattered blocks run slower "
        "gathered than dense. Choosing by a timing made two runs build different models; a stored threshold "
        "(measured per device by tests/benchmarks/test_bench_blocksparse.py) keeps the model a function of the "
        "settings."),
    Deviation(
        "slth-partitioner", "Structure-LTH", "Regroup: hypergraph partitioner",
        "Released code: hMETIS's shmetis binary (UBfactor 10).",
        "KaHyPar (connectivity objective, imbalance 0.1: structure.imbalance).",
        "hMETIS is distributed as binaries only, without source or a package; KaHyPar is open source and installs "
        "with pip. Partitions, and so blocks, differ from the released code's."),
    Deviation(
        "slth-refill-rewind", "Structure-LTH", "what retraining a structured ticket starts from",
        "Released code: Refill retraining loads the trained checkpoint and rewinds only the prunable conv weights, "
        "so BatchNorm, the classifier and the stem keep trained values; Regroup retraining rewinds everything. "
        "Paper: the ticket is rewound.",
        "Every structured ticket (Refill, Refill+, Regroup) rewinds all parameters to the rewind point.",
        "The paper describes rewinding, and trained BatchNorm and classifier values would give Refill a head start "
        "that Regroup does not get."),
    Deviation(
        "slth-timing", "Structure-LTH", "time savings",
        "Paper: GPU time on an RTX 2080 Ti at batch 64: cuDNN for dense and channel-pruned layers, Rumi et al.'s "
        "block-sparse CUDA kernels for regrouped ones.",
        "End-to-end latency at batch 64 on the machine that runs the grid (a CPU in the default grid): refill "
        "tickets physically slimmed, regroup tickets through ticketbench.methods.structure.blocksparse.",
        "The released kernels target CUDA 10.2 and sm_52-75 only. Our savings are for our kernels and hardware and "
        "are not comparable in size with the paper's."),
    Deviation(
        "slth-a2-network", "Structure-LTH", "Table A2: the transferred network",
        "Paper (Table A2): tickets found on ImageNet, retrained on CIFAR-10 (dense 95.37%); the caption says "
        "ResNet-50, the text ResNet-18. How the tickets meet CIFAR-10 is not described.",
        "ResNet-50 with its ImageNet stem (the caption's network): round r's structured conv masks of the ImageNet "
        "refill or regroup run, on a CIFAR-10 ResNet-50 trained with the base CIFAR recipe and rewound to its own "
        "epoch 8 (experiments.structure_transfers, structure --transfer-from); layers of another shape and the "
        "classifier stay dense. Each row is read at our round nearest its remaining weight (within 2.5 points).",
        "The grid's ImageNet network is ResNet-50; a ResNet-18 on ImageNet would be a network no other table "
        "runs. Rows are given by remaining weight, not round."),
    Deviation(
        "slth-mask-sources", "Structure-LTH", "mask sources of regrouped tickets (§5)",
        "Paper (§5): regrouped tickets from IMP, OMP, random pruning, SNIP, GraSP, SynFlow and ADMM masks; their "
        "sparsities and settings are not given.",
        "Each source is an IMP variant that follows Structure-LTH's own IMP run (experiments.structure_ablations "
        "regroup-from-<variant>): its kept count per round, its layers and its rewind point; OMP prunes the dense "
        "final weights once, ADMM trains imp.admm_epochs with imp.admm_rho first.",
        "At equal sparsity and rewind point the tickets differ in the mask alone, which is what the ablation "
        "compares."),
    Deviation(
        "slth-validation-split", "Structure-LTH", "model selection on CIFAR-100",
        "Released code: the CIFAR-100 loader uses the test set as the validation set.",
        "A validation split held out of the training set, for every dataset; accuracy is the test accuracy at the "
        "best-validation epoch.",
        "Selecting on the test set biases the reported accuracy upwards."),
    Deviation(
        "slth-stem-rule", "Structure-LTH", "which conv is left unpruned as the stem",
        "Paper (§3.1): every conv layer but the first is pruned. Released code (pruning_utils.pruning_model, "
        "conv1=False): skips only a module named exactly 'conv1', so a ResNet's stem is kept but VGG's first conv "
        "(features.0) is pruned, and no linear layer is pruned.",
        "The network's stem (timm's first_conv) is kept on every network (imp.structure_policy: structure_lth); "
        "imp.structure_policy: structure_lth_released restores the name rule (tests/conformance/test_structure_lth.py).",
        "The paper's rule is about the first layer, which a module's name only finds on the networks the code was "
        "written for."),
    Deviation(
        "slth-regroup-loop", "Structure-LTH", "Regroup: how a part's columns are chosen",
        "Paper (Alg. 3): a part's block takes the columns most of its rows use, widening until every row has fewer "
        "than width / 1.5 weights outside. Released code (pruning_utils.regroup): at width i it subtracts natural "
        "column i (not the i-th ranked one) from the rows' counts, checks the rows in order and stops at the first "
        "that fails (the later rows' counts go stale), and never tries the full width. Its blocks come out wider: "
        "on a CIFAR ResNet-18 (the conformance fixtures: same masks, partitions and constants) 10.7% IMP density "
        "becomes 14.1% regrouped with the released loop and 9.9% with the paper's rule, 21.0% becomes 30.2% and "
        "21.2%.",
        "The paper's rule (structure.regroup_preset: adaptive); structure.regroup_preset: released runs the released "
        "loop with the released constants, identical to the released code for the same partition "
        "(tests/conformance/test_regroup_released.py). The structure ablation regroup-released runs it beside the "
        "default regroup (the default grid's cells; RN-18 CIFAR-10 in config/paper.yaml), and the report's tables "
        "grid_regroup_loop_<cell> compare the two round by round.",
        "The loop's index and early exit are bugs against the paper's description; the preset shows what they cost."),
    Deviation(
        "slth-refill-batchnorm", "Structure-LTH", "Refill: BatchNorm of emptied channels during retraining",
        "Released code (prune_model_custom_fillback, main_imp_fillback.py): only conv weights are masked, so an "
        "emptied channel's BatchNorm scale and shift keep training and the channel outputs a trainable constant "
        "ReLU(beta).",
        "The scale and shift of emptied channels are zeroed and frozen, so the ticket computes what its slimmed "
        "model computes (structure.refill_batchnorm: zero); structure.refill_batchnorm: released leaves them "
        "trainable as the released code does.",
        "A channel that still outputs a constant is not removed: the slimmed model, which drops it, would compute "
        "something else than the ticket that was trained and evaluated."),
    Deviation(
        "slth-refill-rule", "Structure-LTH", "Refill: how many channels a layer keeps, and ties",
        "Released code (prune_model_custom_fillback): with x = remaining / row size + (C - that) x rho, it fills the "
        "rows scoring above the (C - int(x))-th smallest score and ONE row drawn by torch.randperm among those scoring "
        "exactly that value: int(x) + 1 channels where scores are distinct (one more than x when x is whole), one "
        "random channel of a layer IMP emptied, and the other tied rows keep their partial IMP rows (common with "
        "criterion 'remain').",
        "ceil(x) channels (rounded up to structure.round_to), the highest scores with ties to the lower index, every "
        "channel whole or empty, none for an emptied layer (structure.refill_rule: exact); structure.refill_rule: "
        "released (with coupled: per_layer) reproduces the released choice for the same torch seed "
        "(tests/conformance/test_structure_lth.py).",
        "A partly pruned channel is neither structured nor removable; the paper's budget is what the remaining "
        "weights fill, and a seed-dependent pick makes two runs differ."),
    Deviation(
        "slth-refill-activation-counter", "Structure-LTH", "Refill: activation-based channel scores",
        "Released code: criteria l1, l2 and saliency score channels from feature maps, but the layer counter never "
        "advances, so every layer is scored from the first pruned conv's output (and layers of another width fail "
        "or score the wrong channels).",
        "Each layer is scored from its own output (structure.criterion act_l1, act_l2, saliency). The released "
        "behaviour is a bug and is not the default of anything; structure.criterion: released_stale_act_l1 "
        "reproduces it, by that name only.",
        "Scores from another layer's output choose channels at random with respect to the layer being slimmed."),
    # --- Lottery Jackpots (Zhang et al., TPAMI 2023) --------------------------------------------------------------
    Deviation(
        "jp-batchnorm", "Lottery-Jackpots", "BatchNorm statistics during the search",
        "Paper (abstract): the jackpot matches dense 'without modifying any weight'. Released code: the search runs "
        "in train mode, so BatchNorm running statistics are re-estimated for the masked network (scale and shift "
        "stay frozen).",
        "As the code: statistics re-estimated; every weight and bias, BatchNorm's included, frozen and checked by "
        "hash (weights_unchanged). The claim says so.",
        "The released numbers include the re-estimation; without it the masked network is normalised with the "
        "dense network's statistics."),
    Deviation(
        "jp-selection", "Lottery-Jackpots", "reported accuracy",
        "Released code: the best test accuracy over search epochs.",
        "The test accuracy at the best-validation epoch.",
        "Selecting on the test set biases the reported accuracy upwards."),
    Deviation(
        "jp-load-order", "Lottery-Jackpots", "pre-trained weights in the CIFAR search",
        "Released 2023 CIFAR script: computes the per-layer rates from the pre-trained weights, then builds a fresh "
        "model and never reloads them, so it searches on random weights.",
        "The pre-trained weights are loaded before masking, as in the 2021 code.",
        "The method searches a pre-trained model; the 2023 order is a bug."),
    Deviation(
        "jp-short-restriction", "Lottery-Jackpots", "short restriction",
        "Paper (TPAMI abstract): a 'short restriction' limits mask changes that may hurt the loss; its definition is "
        "not public. 2023 code: budget-preserving swaps whose released rate schedules always evaluate to 1.",
        "Swaps of at most ceil(r x c) of the c candidate pairs per step (jackpot.update: swap, jackpot.rate r, "
        "default 1 as the code; jackpot.rate_schedule).",
        "The code is the only definition available; r below 1 is our reading of the restriction, an ablation."),
    Deviation(
        "jp-random-init", "Lottery-Jackpots", "random-initialised search",
        "Paper: the 'at least 3x cheaper' claim compares magnitude with random score initialisation; no released "
        "code version initialises scores randomly.",
        "Edge-popup-style scores (absolute Kaiming-uniform; jackpot.init: random).",
        "The claim's baseline must exist to test the claim; its settings are ours."),
    Deviation(
        "jp-overlap", "Lottery-Jackpots", "mask-overlap study",
        "Paper: masks of many pruning criteria overlap strongly with the jackpot mask, magnitude the most; the "
        "metric, criteria and numbers are not public.",
        "Overlap = share of the jackpot's kept weights that a criterion also keeps at the jackpot's per-layer "
        "budgets (magnitude, random, SNIP, GraSP, SynFlow, IMP); the claim reads the random-initialised search.",
        "A magnitude-initialised search starts from the magnitude mask, so its overlap with magnitude is 100% by "
        "construction."),
    Deviation(
        "jp-matching-rule", "Lottery-Jackpots", "'matches the dense model'",
        "Paper (abstract): a 90%-sparse VGGNet-19 jackpot reaches the dense accuracy; no numeric rule is public.",
        "Holds when the paired interval of jackpot minus dense lies above minus the dense model's standard "
        "deviation over seeds (0 with one seed).",
        "A rule is needed to decide; the dense model's own seed spread is the smallest gap the seeds can resolve."),
    Deviation(
        "jp-budget-rounding", "Lottery-Jackpots", "per-layer budget rounding",
        "Released code: each layer keeps int(n x (1 - s)) weights, n the layer's size and s its sparsity from the "
        "global magnitude threshold.",
        "Exactly round(s x N) weights are pruned over all N prunable weights (one global count), which can keep one "
        "weight more in some layers; jackpot.budget_rounding: released restores int(n x (1 - s)) per layer "
        "(tests/conformance/test_jackpot.py).",
        "One global count keeps the sparsity the tables report exact; the per-layer floor drops up to one weight per "
        "layer below it."),
    Deviation(
        "jp-lr-schedule", "Lottery-Jackpots", "learning-rate steps of the search",
        "Released code: torch's CosineAnnealingLR(T_max = epochs) stepped once per epoch, so the score learning rate "
        "is constant within an epoch.",
        "Cosine annealing at every iteration (jackpot.lr_schedule: cosine); jackpot.lr_schedule: cosine_epoch steps "
        "it once per epoch, equal to the released rate at every step (tests/conformance/test_jackpot.py).",
        "The suite anneals every training schedule per iteration; over 30 epochs the two differ by at most half an "
        "epoch's decay."),
    Deviation(
        "jp-swap-single", "Lottery-Jackpots", "swap step on a layer with one candidate pair",
        "Released code (final_pop_up): with exactly one revive and one remove candidate, torch.squeeze turns the index "
        "tensors 0-d and the layer never swaps (a layer keeping one weight, or pruning one, keeps its mask).",
        "The pair swaps, as every other budget-preserving swap does. No setting reproduces it.",
        "A shape accident of the released code, not a rule; it only touches layers with one kept or one pruned "
        "weight."),
    Deviation(
        "jp-resnet32-network", "Lottery-Jackpots", "the ResNet-32 of the jackpot tables",
        "Released code (models/resnet_cifar.py): ResNet-32 with 32/64/128 channels and zero-pad (option-A) "
        "shortcuts.",
        "config/paper.yaml runs cifar_wrn32_2 for every paper's ResNet-32 cells: the same widths with 1x1 projection "
        "shortcuts (Structure-LTH's networks use projections). The registered cifar_wrn32_2a is the released "
        "network; naming it as the backbone of the jackpot cells restores it.",
        "One ResNet-32 per grid lets the jackpot, IMP and structure rows share their dense models; the projections "
        "add 2 convs (about 10k weights, 0.5%) to the searched layers."),
    # --- All three papers -----------------------------------------------------------------------------------------
    Deviation(
        "grid-imp-rate", "all", "pruning rate of the default grid",
        "All three papers prune 20% of the remaining weights per round (PrAC 16 rounds, Structure-LTH 10).",
        "The embedded default grid (config/config.yaml) prunes 60% per round for 5 rounds (99.0% sparsity); "
        "config/paper.yaml prunes 20% for 16 rounds.",
        "The CPU budget allows five rounds; at 50% per round (96.9%) IMP's lead over random pruning (1.8 points, "
        "seed sd 1.1) was too small for three seeds to decide. Bigger steps make each round's ticket differ, so "
        "matching sparsities are not comparable with the papers'."),
    Deviation(
        "grid-schedules", "all", "data and schedules of the default grid",
        "Papers: CIFAR-10/100, Tiny-ImageNet, ImageNet; 160-182 epochs (95 Tiny-ImageNet, 90 ImageNet), lr 0.1 "
        "multistep, batch 128; PrAC rewinds to epoch 3; jackpot searches 30 or 160 epochs at batch 256.",
        "Default grid: scikit-learn's 8x8 digits upscaled to 16x16, 6 epochs, cosine lr 0.05, batch 64, rewind to "
        "epoch 1 (Structure-LTH's run: 5%); jackpot search 10 epochs at batch 128; three seeds. config/paper.yaml "
        "holds the papers' recipes.",
        "The default grid runs on a 2-core CPU in about half an hour without downloads. It tests how the methods "
        "behave, not the papers' values."),
    Deviation(
        "all-precision", "all", "numeric precision of the paper grid",
        "All three released codes train in fp32.",
        "config/paper.yaml trains in bf16 autocast (train.precision: bf16); train.precision: fp32 restores fp32. The "
        "embedded default grid trains in fp32.",
        "bf16 halves the memory traffic of a grid of about 1,400 GPU jobs; the report's numerics table lists the "
        "precision of every run."),
    Deviation(
        "all-magnitude-ties", "all", "magnitude pruning: weights tied at the threshold",
        "PrAC's and Structure-LTH's released IMP (torch.topk, torch.nn.utils.prune's L1Unstructured) keep or drop "
        "weights of exactly the threshold magnitude in torch.topk's order, which PyTorch leaves unspecified and "
        "which differs between devices and versions.",
        "The lower flat index (layers in module order) is pruned first, on every device; the count is the same. No "
        "setting reproduces an unspecified order; tests/conformance compares every other weight exactly.",
        "A tie order that depends on the device makes the same run give different tickets on a CPU and a GPU."),
    Deviation(
        "openlth-prune-count", "all", "IMP step: how many weights a round removes",
        "open_lth (sparse_global): the threshold is the ceil(0.2 n)-th smallest remaining magnitude (0-based), and "
        "every weight not above it goes: ceil(0.2 n) + 1 weights, plus all ties at the threshold; n counts the "
        "layers it does not prune too (its VGG's classifier).",
        "round(0.2 n) weights of the pruned layers, ties to the lower index, so every round's sparsity is exact "
        "(imp.prune_rule: exact); imp.prune_rule: openlth reproduces open_lth's count and ties "
        "(tests/conformance/test_openlth.py).",
        "An exact count makes the sparsity of round r the same on every network and seed, which the tables compare "
        "at; the released count differs by one weight and by the ties."),
    Deviation(
        "openlth-vgg-classifier", "all", "open_lth's VGG classifier",
        "open_lth's VGG (default pruning_layers_to_ignore fc.weight) never prunes its classifier; its ResNets do.",
        "The openlth policy prunes the classifier on every network; imp.policy: openlth_vgg leaves it out as "
        "open_lth's VGG does.",
        "One policy means one layer set on every backbone; the VGG exception is a model default of open_lth."),
]

COLUMNS = ["paper", "topic", "the paper / its released code", "ours", "why"]


def check(entries: list[Deviation] = DEVIATIONS) -> None:
    """Every field filled and every key unique; raises ValueError naming the first entry that is not."""
    seen = set()
    for d in entries:
        empty = [f.name for f in fields(d) if not str(getattr(d, f.name)).strip()]
        if empty:
            raise ValueError(f"deviation {d.key or d.topic!r} has empty fields: {', '.join(empty)}")
        if d.key in seen:
            raise ValueError(f"deviation key {d.key!r} is used twice")
        seen.add(d.key)


def deviations_table(entries: list[Deviation] = DEVIATIONS) -> Table:
    check(entries)
    return Table("deviations", "Deviations from the papers and their released code", COLUMNS,
                 [[d.paper, d.topic, d.source, d.ours, d.why] for d in entries],
                 "Each deliberate difference between ticketbench and a paper or its released code, and the reason. "
                 "Settings in parentheses change it.")
