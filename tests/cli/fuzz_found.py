"""The distinct failures the CLI fuzz harness (tests/cli/fuzz_cli.py) found, keyed by (command, reason), each
with the argv that showed it (placeholders: see fuzz_fixtures.build_fixtures). All are fixed; test_fuzz_cli.py
reruns every one."""

FIXED: dict[tuple[str, str], str] = {
    ('analyze check', 'AssertionError in workbench/analyze/attribution.py:attribute'):
        'analyze check @run --n 2 --steps 2 --batch-size 2 --cascade-steps 1 --randomization-n 2 --random-orders 1 --fractions 3 --json --steps=-1',
    ('analyze check', 'AttributeError in workbench/train/engine.py:load_run_model'):
        'analyze check @run_cfglist --n 2 --steps 2 --batch-size 2 --cascade-steps 1 --randomization-n 2 --random-orders 1 --fractions 3 --json',
    ('analyze check', 'FileExistsError in workbench/analyze/_load.py:write_folder'):
        "analyze check @run --n 2 --steps 2 --batch-size 2 --cascade-steps 1 --randomization-n 2 --random-orders 1 --fractions 3 --json --json --fill mean --fractions 3 --out ''",
    ('analyze check', 'IndexError in workbench/analyze/_plots.py:cascade_grid'):
        'analyze check @run --n 2 --steps 2 --batch-size 2 --cascade-steps 1 --randomization-n 2 --random-orders 1 --fractions 3 --json --n 99999999999999999999',
    ('analyze check', 'OSError in workbench/utils/io.py:ensure_new_dir'):
        "analyze check : --n 2 --steps 2 --batch-size 2 --cascade-steps 1 --randomization-n 2 --random-orders 1 --fractions 3 --json --target 0 --cascade-steps 1 --out @long --n 2",
    ('analyze check', 'OverflowError in workbench/analyze/_load.py:head'):
        'analyze check @run --n 2 --steps 2 --batch-size 2 --cascade-steps 1 --randomization-n 2 --random-orders 1 --fractions 3 --json --randomization-n=-99999999999999999999',
    ('analyze check', 'OverflowError in workbench/analyze/attribution.py:attribute'):
        'analyze check @run --n 2 --steps 2 --batch-size 2 --cascade-steps 1 --randomization-n 2 --random-orders 1 --fractions 3 --json --fractions 3 --steps 99999999999999999999 --target 0 --out out',
    ('analyze check', 'RuntimeError in workbench/analyze/_load.py:head'):
        'analyze check @run --n 2 --steps 2 --batch-size 2 --cascade-steps 1 --randomization-n 2 --random-orders 1 --fractions 3 --json --cascade-steps=-1 --randomization-n=-1',
    ('analyze check', 'TypeError in workbench/analyze/_load.py:load_subject'):
        'analyze check json:loads --n 2 --steps 2 --batch-size 2 --cascade-steps 1 --randomization-n 2 --random-orders 1 --fractions 3 --json',
    ('analyze check', 'ValueError in workbench/analyze/faithfulness.py:deletion'):
        'analyze check @run --n 2 --steps 2 --batch-size 2 --cascade-steps 1 --randomization-n 2 --random-orders 1 --fractions 3 --json --random-orders 0',
    ('analyze check', 'ValueError in workbench/analyze/saliency.py:<dictcomp>'):
        'analyze check @run --n 2 --steps 2 --batch-size 2 --cascade-steps 1 --randomization-n 2 --random-orders 1 --fractions 3 --json --randomization-n 0',
    ('analyze embeddings', 'AttributeError in workbench/train/engine.py:load_run_model'):
        'analyze embeddings @run_cfglist --n 16 --batch-size 8 --json',
    ('analyze embeddings', 'FileExistsError in workbench/analyze/_load.py:write_folder'):
        "analyze embeddings @run --n 16 --batch-size 8 --json --out ''",
    ('analyze embeddings', 'FileExistsError in workbench/utils/io.py:atomic_path'):
        'analyze embeddings @run --n 16 --batch-size 8 --json --out file.txt/sub',
    ('analyze embeddings', 'OSError in workbench/utils/io.py:ensure_new_dir'):
        "analyze embeddings tinyface --n 16 --batch-size 8 --json --out @long",
    ('analyze embeddings', 'ValueError in workbench/analyze/_load.py:slices'):
        'analyze embeddings gazenet --n 16 --batch-size 8 --json --batch-size 0',
    ('analyze embeddings', 'ValueError in workbench/analyze/embeddings.py:collect'):
        'analyze embeddings gazenet --n 16 --batch-size 8 --json --batch-size=-99999999999999999999',
    ('analyze fc-importance', 'AttributeError in workbench/train/engine.py:load_run_model'):
        'analyze fc-importance @run_cfglist --n 8 --max-ablate 2 --conductance-samples 2 --conductance-steps 2 --json',
    ('analyze fc-importance', 'FileExistsError in workbench/analyze/_load.py:write_folder'):
        "analyze fc-importance @run --n 8 --max-ablate 2 --conductance-samples 2 --conductance-steps 2 --json --format lam --out ''",
    ('analyze fc-importance', 'OverflowError in workbench/analyze/fc_importance.py:_conductance'):
        'analyze fc-importance gazenet --n 8 --max-ablate 2 --conductance-samples 2 --conductance-steps 2 --json --conductance-steps 99999999999999999999',
    ('analyze fc-importance', 'ValueError in workbench/analyze/_load.py:slices'):
        'analyze fc-importance tinyface --n 8 --max-ablate 2 --conductance-samples 2 --conductance-steps 2 --json --out out --task face_angles --batch-size 0',
    ('analyze saliency', 'AssertionError in workbench/analyze/attribution.py:attribute'):
        'analyze saliency @run --n 2 --steps 2 --batch-size 2 --json --steps=-99999999999999999999',
    ('analyze saliency', 'AttributeError in workbench/train/engine.py:load_run_model'):
        'analyze saliency @run_cfglist --n 2 --steps 2 --batch-size 2 --json',
    ('analyze saliency', 'FileExistsError in workbench/analyze/_load.py:write_folder'):
        "analyze saliency @run --n 2 --steps 2 --batch-size 2 --json --out '' --n 2",
    ('analyze saliency', 'FileExistsError in workbench/utils/io.py:atomic_path'):
        'analyze saliency @run --n 2 --steps 2 --batch-size 2 --json --json --force --batch-size 2 --out file.txt/sub',
    ('analyze saliency', 'OSError in workbench/utils/io.py:ensure_new_dir'):
        "analyze saliency - --n 2 --steps 2 --batch-size 2 --json --n 2 --out @long --baseline blur --data @npz",
    ('analyze saliency', 'OverflowError in workbench/analyze/attribution.py:attribute'):
        'analyze saliency @run --n 2 --steps 2 --batch-size 2 --json --steps 99999999999999999999',
    ('analyze saliency', 'TypeError in workbench/analyze/_load.py:load_subject'):
        'analyze saliency json:loads --n 2 --steps 2 --batch-size 2 --json',
    ('bench', 'AttributeError in workbench/train/engine.py:load_run_model'):
        'bench @run_cfglist --repeats 1 --warmup 0 --batch 2 --threads 1 --json',
    ('bench', 'InvalidArgument in workbench/profile/bench.py:<lambda>'):
        'bench @onnx --repeats 1 --warmup 0 --batch 2 --threads 1 --json --input face=3x112',
    ('bench', 'OverflowError in workbench/profile/inputs.py:repeat_batch'):
        'bench @run --repeats 1 --warmup 0 --batch 2 --threads 1 --json --batch 99999999999999999999',
    ('data inspect', 'FileExistsError in workbench/data/inspect.py:draw_grid'):
        'data inspect @npz --n 2 --out file.txt/sub',
    ('data inspect', 'IsADirectoryError in workbench/data/inspect.py:draw_grid'):
        'data inspect @npz --n 2 --out full',
    ('data inspect', 'OSError in workbench/data/inspect.py:draw_grid'):
        'data inspect @npz --n 2 --out @long --format npz',
    ('data inspect', 'ValueError in workbench/data/inspect.py:draw_grid'):
        "data inspect @npz --n 2 --out ''",
    ('data inspect', 'replaced an existing --out without --force'):
        'data inspect @npz --n 2 --out exists.png',
    ('data synth', 'FileExistsError in workbench/data/formats/evg.py:write_evg'):
        "data synth --n 3 --subjects 2 --out '' --format evg --force --json",
    ('data synth', 'FileExistsError in workbench/data/formats/mpiifacegaze.py:write_mpiifacegaze'):
        "data synth --n 3 --subjects 2 --out '' --format mpiifacegaze",
    ('data synth', 'FileExistsError in workbench/utils/io.py:atomic_path'):
        'data synth --n 3 --subjects 2 --out file.txt/sub',
    ('data synth', 'OSError in workbench/utils/io.py:atomic_path'):
        "data synth --n 3 --subjects 2 --out ''",
    ('data synth', 'OSError in workbench/utils/io.py:ensure_new_dir'):
        'data synth --n 3 --subjects 2 --out @long --force',
    ('data synth', 'ValueError in workbench/data/synth.py:_subject_ids'):
        'data synth --n 3 --subjects 2 --out out --subjects 99999999999999999999',
    ('data synth', 'ValueError in workbench/data/synth.py:render_chunk'):
        "data synth --n 3 --subjects 2 --out '' --seed=-1",
    ('distill', 'NotADirectoryError in workbench/compress/distill.py:distill'):
        'distill @run --epochs 1 --n-train 32 --set n_val=16 --device cpu --json --student tinyface --out exists.png',
    ('distill', 'OSError in workbench/compress/distill.py:distill'):
        "distill @run --epochs 1 --n-train 32 --set n_val=16 --device cpu --json --student tinylstm --out @long",
    ('distill', 'TypeError in workbench/compress/distill.py:distill'):
        'distill @run --epochs 1 --n-train 32 --set n_val=16 --device cpu --json --student tinyface --out out --n-train=-1 --seed 1 --set epochs=0',
    ('distill', 'files outside --out: student/, summary.json'):
        "distill @run --epochs 1 --n-train 32 --set n_val=16 --device cpu --json --student tinyface --out '' --epochs 1",
    ('eval', 'AttributeError in workbench/modelspec.py:parse_model_spec'):
        'eval @run_cfglist --device cpu --task face_angles',
    ('eval', 'AttributeError in workbench/train/engine.py:load_run_model'):
        'eval @run_cfglist --device cpu',
    ('export', 'AttributeError in workbench/train/engine.py:load_run_model'):
        'export @run_cfglist --samples 2 --onnx out.onnx',
    ('export', 'FileExistsError in workbench/utils/io.py:atomic_path'):
        'export @run --samples 2 --onnx file.txt/sub',
    ('export', 'OSError in workbench/cli/profile.py:export_cmd'):
        'export @run --samples 2 --onnx @long --force --task foo',
    ('live', 'AttributeError in workbench/train/engine.py:load_run_model'):
        'live @run_cfglist --frames 2 --json --source @video --out out',
    ('live', 'FileExistsError in workbench/utils/io.py:atomic_path'):
        'live @run --frames 2 --json --source @video --out out --out file.txt/sub',
    ('live', 'FileExistsError in workbench/visualize/video.py:__enter__'):
        "live @run --frames 2 --json --source @video --out out --out '' --ref 5",
    ('live', 'OSError in workbench/utils/io.py:ensure_new_dir'):
        "live @run --frames 2 --json --source @video --out out --out @long",
    ('predict', '--json output is not JSON'):
        'predict tinyface --n 4 --device cpu --data synth --out emptyd --json',
    ('predict', 'AttributeError in workbench/train/engine.py:load_run_model'):
        "predict @run_cfglist --n 4 --device cpu --data synth --out ''",
    ('predict', 'FileExistsError in workbench/utils/io.py:atomic_path'):
        'predict @run --n 4 --device cpu --data synth --out file.txt/sub',
    ('predict', 'IsADirectoryError in workbench/tasks/base.py:write_csv'):
        "predict @run --n 4 --device cpu --data synth --out ''",
    ('predict', 'KeyError in workbench/train/data.py:_read_unlabelled'):
        'predict @run --n 4 --device cpu --data synth --out emptyd --checkpoint last --format foo --data @npz',
    ('predict', 'OSError in workbench/faces/images.py:predict_images'):
        'predict gazenet --n 4 --device cpu --data synth --out @long --images @pt_trunc --device cpu --detector nosuchmod_xyz:X',
    ('predict', 'OSError in workbench/utils/io.py:atomic_path'):
        'predict gazenet --n 4 --device cpu --data synth --out @long',
    ('predict', 'replaced an existing --out without --force'):
        'predict tinyface --n 4 --device cpu --data synth --out full',
    ('profile', 'AttributeError in workbench/train/engine.py:load_run_model'):
        'profile @run_cfglist --json',
    ('profile', 'TypeError in workbench/profile/target.py:resolve_target'):
        'profile gazenet --json --model preset=paper --stride=-99999999999999999999',
    ('profile', 'TypeError in workbench/registry.py:random_inputs'):
        'profile tinyface --json --batch 99999999999999999999',
    ('profile', 'RuntimeError in .venv/lib/python3.11/site-packages/torch/nn/modules/linear.py:__init__'):
        'profile gazenet --json --model fc_hidden=-3',
    ('prune', 'FileExistsError in workbench/compress/prune.py:prune'):
        "prune @run --steps 1 --finetune-epochs 1 --finetune-samples 16 --calib-samples 16 --device cpu --json --out '' --target-params 0.9",
    ('prune', 'FileExistsError in workbench/utils/io.py:atomic_path'):
        'prune @run --steps 1 --finetune-epochs 1 --finetune-samples 16 --calib-samples 16 --device cpu --json --out file.txt/sub --target-macs 0.9 --calib-samples 16 --force --final-epochs 1',
    ('quantize', 'AttributeError in workbench/train/engine.py:load_run_model'):
        'quantize @run_cfglist --n-calib 8 --n-eval 8 --repeats 2 --json --out out',
    ('quantize', 'FileExistsError in workbench/compress/quantize.py:quantize'):
        "quantize @run --n-calib 8 --n-eval 8 --repeats 2 --json --out ''",
    ('quantize', 'FileExistsError in workbench/utils/io.py:atomic_path'):
        'quantize @run --n-calib 8 --n-eval 8 --repeats 2 --json --out file.txt/sub',
    ('quantize', 'OSError in workbench/utils/io.py:ensure_new_dir'):
        'quantize @run --n-calib 8 --n-eval 8 --repeats 2 --json --out @long',
    ('quantize', 'TypeError in workbench/profile/export.py:onnx_session'):
        'quantize @run --n-calib 8 --n-eval 8 --repeats 2 --json --out out --threads 99999999999999999999',
    ('report', 'FileExistsError in workbench/utils/io.py:atomic_path'):
        'report @run @run --out file.txt/sub',
    ('report', 'OSError in workbench/utils/io.py:atomic_path'):
        "report @run --out ''",
    ('report', 'OSError in workbench/utils/io.py:ensure_new_dir'):
        'report @run_ckptempty @run --out @long',
    ('run', 'OSError in workbench/pipeline/run.py:run_pipeline'):
        "run --out @long --data @missing",
    ('run', 'UnicodeDecodeError in workbench/pipeline/recipe.py:load_recipe'):
        'run @png',
    ('run', "exit 1: error: stage 'train' crashed for gazenet: KeyError: 'foo' (traceback i"):
        'run --teachers gazenet --format foo --json --out emptyd --data @png',
    ('run', 'exit 2 left --out'):
        'run --out out --data @missing',
    ('run', 'exit 2 left the default output'):
        'run --data @png',
    ('eval', 'RuntimeError in torch conv: a registered model with feature_channels=0'):
        'eval gazenet --device cpu --model feature_channels=0',
    ('eval', 'ValueError in teachers/_checks.py:expect_shape'):
        'eval gazenet --device cpu --json --model input_size=0',
    ('predict', 'ValueError in teachers/_checks.py:expect_shape'):
        'predict tinyface --n 4 --device cpu --data synth --out out.txt --model input_size=0 --device cpu --n 4',
    ('run', 'exit 2 left the default output: a stage failed on the data'):
        'run --json --teachers , --format npz --data @png',
    ('train', 'KeyError in workbench/train/data.py:_load_path'):
        'train tinyface --epochs 1 --n-train 32 --n-val 16 --batch-size 16 --set train_subjects=2 --set val_subjects=2 --device cpu --json --out out --n-val 8 --data @txt --format foo --seed=-1',
    ('train', 'NotADirectoryError in workbench/train/engine.py:_fit'):
        'train gazenet --epochs 1 --n-train 32 --n-val 16 --batch-size 16 --set train_subjects=2 --set val_subjects=2 --device cpu --json --out exists.png',
    ('train', 'NotADirectoryError in workbench/train/run.py:create'):
        'train gazenet --epochs 1 --n-train 32 --n-val 16 --batch-size 16 --set train_subjects=2 --set val_subjects=2 --device cpu --json --out file.txt/sub',
    ('train', 'OSError in workbench/train/engine.py:_fit'):
        'train gazenet --epochs 1 --n-train 32 --n-val 16 --batch-size 16 --set train_subjects=2 --set val_subjects=2 --device cpu --json --out @long',
    ('train', 'ValueError in workbench/data/synth.py:render_chunk'):
        'train tinyface --epochs 1 --n-train 32 --n-val 16 --batch-size 16 --set train_subjects=2 --set val_subjects=2 --device cpu --json --out out --batch-size 8 --preset tiny --epochs 1 --seed=-1',
    ('train', 'ValueError in workbench/train/engine.py:seed_everything'):
        'train tinyface --epochs 1 --n-train 32 --n-val 16 --batch-size 16 --set train_subjects=2 --set val_subjects=2 --device cpu --json --out out --seed 99999999999999999999',
    ('train', 'files outside --out: checkpoints/, config.json, log.jsonl'):
        "train gazenet --epochs 1 --n-train 32 --n-val 16 --batch-size 16 --set train_subjects=2 --set val_subjects=2 --device cpu --json --out ''",
    ('visualize', 'AttributeError in workbench/train/engine.py:load_run_model'):
        'visualize @run @run_cfglist --n 2 --json --out out',
    ('visualize', 'FileExistsError in workbench/utils/io.py:atomic_path'):
        'visualize @run --n 2 --json --out file.txt/sub',
    ('visualize', 'FileExistsError in workbench/visualize/video.py:__enter__'):
        "visualize @run --n 2 --json --out ''",
    ('visualize', 'OSError in workbench/utils/io.py:ensure_new_dir'):
        'visualize @run @txt --n 2 --json --out @long --force',
}
