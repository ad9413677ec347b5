"""Readers and writers for foreign and own model formats: one pure function per format."""
from .inference_model import InferenceModel, read_inference_model
from .native import load_native, save_native
from .pdiparams import read_pdiparams, write_pdiparams
from .pdparams import infer_config, normalize_paddle_keys, read_pdparams
from .pir import PirProgram, parse_pir
from .pir_info import analyze_pir
from .program import analyze_program, read_program, recover_architecture
from .safe_pickle import RestrictedUnpickler, load_pickle

__all__ = [
    "InferenceModel", "read_inference_model", "load_native", "save_native", "read_pdiparams", "write_pdiparams",
    "infer_config", "normalize_paddle_keys", "read_pdparams", "analyze_program", "read_program",
    "recover_architecture", "RestrictedUnpickler", "load_pickle", "PirProgram", "parse_pir", "analyze_pir",
]
