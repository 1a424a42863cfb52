"""XViT for Hugging Face Transformers. Importing this package registers XViT with the Auto classes.

`save_pretrained` writes a folder that loads where this package is imported; `modeling_xvit.hub.folder` writes the
folder that loads anywhere as remote code (`trust_remote_code=True`), with its code files and `auto_map`.
"""

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
    __all__ += ["XViTVideoProcessor"]
