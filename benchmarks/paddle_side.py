"""The original stack's half of compare_original.py. Runs INSIDE a PaddlePaddle 2.6 + PaddleSeg 2.8 venv.

Builds PaddleSeg's PPLiteSeg (T or B, 19 classes) with seeded random weights (BN statistics and UAFM _scale
included, as in ../shared/fixtures), saves the .pdparams and dygraph logits, exports a fixed-shape inference model,
converts it with paddle2onnx (opset 11) and writes parity facts into --out/results.json. Then it stays up and
times blocks of calls on request, so that compare_original.py can interleave them with liteseg's: one line
``<engine> <warmup> <runs>`` on stdin (engine ``paddle`` = Paddle Inference with oneDNN, ``p2o`` = ONNX Runtime on
the paddle2onnx model) is answered by one line ``@@ <json list of ms>`` on stdout; ``quit`` ends it.
Not imported by liteseg; never run in CI.
"""
import argparse
import json
import os
import subprocess
import sys
import time

# scipy/sklearn/cv2 must be imported before paddle in this environment (importing them after paddle crashes).
import cv2  # noqa: F401
import numpy as np
import scipy.ndimage  # noqa: F401
import scipy.signal  # noqa: F401

os.environ["PADDLESEG_EXPORT_STAGE"] = "True"
import paddle  # noqa: E402
from paddleseg.models import PPLiteSeg  # noqa: E402
from paddleseg.models.backbones import STDC1, STDC2  # noqa: E402

VARIANTS = {"t": (STDC1, [32, 64, 128], [32, 64, 64]), "b": (STDC2, [64, 96, 128], [64, 64, 64])}


def build(name, seed):
    backbone, arm, heads = VARIANTS[name]
    paddle.seed(seed)
    model = PPLiteSeg(19, backbone(), arm_out_chs=arm, seg_head_inter_chs=heads)
    rng = np.random.RandomState(seed)
    state = {}
    for key, value in model.state_dict().items():
        shape = value.shape
        if key.endswith("_scale"):
            arr = rng.uniform(0.8, 1.2, shape)
        elif key.endswith("_mean"):
            arr = rng.normal(0, 0.2, shape)
        elif key.endswith("_variance"):
            arr = rng.uniform(0.5, 2.0, shape)
        elif len(shape) == 4:
            arr = rng.normal(0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
        elif "_batch_norm" in key or ".bn." in key or "avd_layer.1" in key:
            arr = rng.uniform(0.5, 1.5, shape) if key.endswith("weight") else rng.normal(0, 0.1, shape)
        else:  # conv bias (SPPM)
            arr = rng.normal(0, 0.05, shape)
        state[key] = arr.astype("float32")
    model.set_state_dict(state)
    model.eval()
    return model


def timed(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def reply(payload):
    sys.stdout.write("@@ " + json.dumps(payload) + "\n")
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=sorted(VARIANTS), required=True)
    p.add_argument("--shape", default="1,3,512,1024")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=2024)
    args = p.parse_args()
    shape = [int(v) for v in args.shape.split(",")]
    os.makedirs(args.out, exist_ok=True)
    paddle.set_device("cpu")
    model = build(args.model, args.seed)
    paddle.save(model.state_dict(), os.path.join(args.out, "model.pdparams"))
    x = np.random.RandomState(0).standard_normal(shape).astype("float32")
    np.save(os.path.join(args.out, "input.npy"), x)
    with paddle.no_grad():
        logits = model(paddle.to_tensor(x))[0].numpy()
    np.save(os.path.join(args.out, "paddle_logits.npy"), logits)

    infer_dir = os.path.join(args.out, "inference")
    static = paddle.jit.to_static(model, input_spec=[paddle.static.InputSpec(shape, "float32", "x")])
    paddle.jit.save(static, os.path.join(infer_dir, "model"))
    config = paddle.inference.Config(os.path.join(infer_dir, "model.pdmodel"),
                                     os.path.join(infer_dir, "model.pdiparams"))
    config.disable_gpu()
    config.enable_mkldnn()
    config.set_cpu_math_library_num_threads(args.threads)
    config.disable_glog_info()
    predictor = paddle.inference.create_predictor(config)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    out_handle = predictor.get_output_handle(predictor.get_output_names()[0])

    def run_paddle():
        handle.copy_from_cpu(x)
        predictor.run()
        return out_handle.copy_to_cpu()

    paddle_infer = run_paddle()
    results = {"paddle": paddle.__version__, "shape": shape, "threads": args.threads,
               "diff_inference_vs_dygraph": float(np.abs(paddle_infer - logits).max())}

    onnx_path = os.path.join(args.out, "paddle2onnx.onnx")
    p2o = os.path.join(os.path.dirname(sys.executable), "paddle2onnx")
    subprocess.run([p2o, "--model_dir", infer_dir, "--model_filename", "model.pdmodel", "--params_filename",
                    "model.pdiparams", "--save_file", onnx_path, "--opset_version", "11", "--enable_onnx_checker",
                    "True"], check=True, capture_output=True)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    ort_out = sess.run(None, {name: x})[0]
    results["diff_ort_vs_dygraph"] = float(np.abs(ort_out - logits).max())
    results["onnxruntime"] = ort.__version__
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    engines = {"paddle": run_paddle, "p2o": lambda: sess.run(None, {name: x})}
    reply("ready")
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        reply(timed(engines[words[0]], int(words[1]), int(words[2])))


if __name__ == "__main__":
    main()
