"""Training, evaluation and data tools (the [train] extra).

Without torch (numpy, OpenCV, ONNX Runtime; `emotiscope evaluate` and `data` use only these):
config (TrainConfig, AugmentConfig), data, fercsv, evaluate, calibrate, plots, runlog, mistakes,
duplicates. With torch: augment, models, optim, distill, checkpoint, export, prepare (data and
initial model of a run), loop (the Trainer) and runs (resume). Nothing here is imported by
`import emotiscope`; tests/test_training_without_torch.py keeps the first group torch-free.
"""
