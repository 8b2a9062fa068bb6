#!/usr/bin/env python
"""Trains and evaluates any project of this plugin with detectron2's stock tooling.

    python tools/train_net.py --config-file configs/LowLightNL/demo.yaml
    python tools/train_net.py --config-file CFG --num-gpus 2 SOLVER.IMS_PER_BATCH 4
    python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS output/model_final.pth
    python tools/train_net.py --config-file CFG --resume

The config names its trainer (``TRAINER.NAME``), evaluator (``TEST.EVALUATOR``) and dataset
mapper (``INPUT.DATASET_MAPPER``); every installed project is registered before it is read.
"""
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.evaluation import verify_results
from detectron2.utils import comm

from d2common.engine import build_trainer, resolve_device, trainer_class, write_results
from d2common.projects import get_plugin_cfg, import_all_projects


def setup(args):
    import_all_projects()
    cfg = get_plugin_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    resolve_device(cfg)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        trainer_cls = trainer_class(cfg)
        model = trainer_cls.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        results = trainer_cls.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, results)
            write_results(results, cfg.OUTPUT_DIR, "eval_only_results.json")
        return results

    trainer = build_trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    trainer.train()
    # EvalHook keeps the results of the final evaluation on the trainer.
    results = getattr(trainer, "_last_eval_results", None)
    write_results(results, cfg.OUTPUT_DIR)
    return results


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
