"""JASRNet: joint super-resolution and alignment of tiny faces. Imports nothing from the video code."""
from .checkpoint import DEFAULT_WEIGHTS, available_weights, load_model, resolve_weights, save_checkpoint
from .config import HR_SIZE, LR_SIZE, ModelConfig, TrainConfig, model_config
from .inference import FaceEnhancer, Prediction
from .network import JASRNet, count_parameters

__all__ = [
    "DEFAULT_WEIGHTS", "HR_SIZE", "LR_SIZE", "FaceEnhancer", "JASRNet", "ModelConfig", "Prediction",
    "TrainConfig", "available_weights", "count_parameters", "load_model", "model_config", "resolve_weights",
    "save_checkpoint",
]
