"""XViT for Hugging Face Transformers. Importing this package registers XViT with the Auto classes."""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForVideoClassification,
    AutoVideoProcessor,
)
from transformers.utils import is_torchvision_available

from .configuration_xvit import XViTConfig
from .image_processing_xvit import XViTImageProcessor
from .modeling_xvit import XViTForVideoClassification, XViTModel, XViTPreTrainedModel

AutoConfig.register(XViTConfig.model_type, XViTConfig, exist_ok=True)
AutoModel.register(XViTConfig, XViTModel, exist_ok=True)
AutoModelForVideoClassification.register(XViTConfig, XViTForVideoClassification, exist_ok=True)
AutoImageProcessor.register(XViTConfig, slow_image_processor_class=XViTImageProcessor, exist_ok=True)
# save_pretrained then writes `auto_map` and copies the code files, so a saved folder loads with trust_remote_code.
XViTConfig.register_for_auto_class()
XViTModel.register_for_auto_class("AutoModel")
XViTForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
XViTImageProcessor.register_for_auto_class("AutoImageProcessor")

__all__ = [
    "XViTConfig",
    "XViTForVideoClassification",
    "XViTImageProcessor",
    "XViTModel",
    "XViTPreTrainedModel",
]

# The video processor builds on torchvision; the image processor and the model do not need it.
if is_torchvision_available():
    from .video_processing_xvit import XViTVideoProcessor

    AutoVideoProcessor.register(XViTConfig, XViTVideoProcessor, exist_ok=True)
    XViTVideoProcessor.register_for_auto_class("AutoVideoProcessor")
    __all__ += ["XViTVideoProcessor"]
