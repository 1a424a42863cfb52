"""
Image processor for XViT: the image-processor API (decoded frames in, `pixel_values` out) with the same resize, crop
and normalisation as `XViTVideoProcessor`, on PIL and NumPy only, so it works without torchvision.
"""

import numpy as np
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import ImageInput, PILImageResampling, SizeDict, make_nested_list_of_images
from transformers.processing_utils import ImagesKwargs, Unpack
from transformers.utils import TensorType

from .clip_sampling import sample_clip_indices, spatial_crop_boxes
from .processing_defaults import XViTProcessingDefaults


class XViTImageProcessorKwargs(ImagesKwargs, total=False):
    """
    num_frames (`int`, *optional*, defaults to 16):
        Frames per clip. A video with a different number of frames is resampled with `sampling` (clamped indices, so
        a shorter video repeats frames); a video with exactly `num_frames` frames is used as it is.
    sampling (`str`, *optional*, defaults to `"segment"`):
        `"segment"` or `"dense"` evaluation sampling, see `clip_sampling.py`.
    sampling_rate (`int`, *optional*, defaults to 16):
        Dense sampling only: distance between two sampled frames.
    target_fps (`float`, *optional*, defaults to 30.0):
        Dense sampling only: the frames are taken to be at this rate (their real rate is unknown here).
    """

    num_frames: int | None
    sampling: str | None
    sampling_rate: int | None
    target_fps: float | int | None


class XViTImageProcessor(XViTProcessingDefaults, PilBackend):
    r"""
    Image processor for XViT. Takes one video as a list of frames (PIL images or `(height, width, channels)` arrays)
    or a `(frames, height, width, channels)` array, or a batch of those, and returns `pixel_values` of shape
    `(batch, num_frames, 3, crop_height, crop_width)`: short side resized to `size["shortest_edge"]`, centre crop,
    rescale to [0, 1], normalise with mean and std 0.5. It evaluates one view per video; for multi-view testing,
    decoding and training augmentation use `XViTVideoProcessor`.
    """

    valid_kwargs = XViTImageProcessorKwargs

    def __init__(self, **kwargs: Unpack[XViTImageProcessorKwargs]):
        super().__init__(**kwargs)

    def preprocess(self, videos: ImageInput, **kwargs: Unpack[XViTImageProcessorKwargs]) -> BatchFeature:
        r"""
        videos (`ImageInput`):
            A video (list of frames or a 4D array) or a batch of videos, pixel values in [0, 255].
        """
        return super().preprocess(videos, **kwargs)

    def _prepare_images_structure(self, images: ImageInput, expected_ndims: int = 3) -> ImageInput:
        return make_nested_list_of_images(images, expected_ndims=expected_ndims)

    def _preprocess(
        self,
        images: list[list[np.ndarray]],
        do_resize: bool,
        size: SizeDict,
        resample: PILImageResampling | None,
        do_center_crop: bool,
        crop_size: SizeDict,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | list[float] | None,
        image_std: float | list[float] | None,
        num_frames: int,
        sampling: str,
        sampling_rate: int,
        target_fps: float,
        return_tensors: str | TensorType | None,
        **kwargs,
    ) -> BatchFeature:
        pixel_values = []
        for frames in images:
            if len(frames) != num_frames:
                indices = sample_clip_indices(
                    len(frames), num_frames, sampling, sampling_rate=sampling_rate, target_fps=target_fps
                )[0]
                frames = [frames[index] for index in indices]
            clip = []
            for frame in frames:
                if do_resize:
                    frame = self.resize(frame, size, resample)
                if do_center_crop:
                    height, width = frame.shape[-2:]
                    ((top, left),) = spatial_crop_boxes(height, width, crop_size.height, crop_size.width)
                    frame = frame[:, top : top + crop_size.height, left : left + crop_size.width]
                if do_rescale:
                    frame = self.rescale(frame, rescale_factor)
                if do_normalize:
                    frame = self.normalize(frame, image_mean, image_std)
                clip.append(frame)
            pixel_values.append(np.stack(clip))
        return BatchFeature(data={"pixel_values": np.stack(pixel_values)}, tensor_type=return_tensors)


__all__ = ["XViTImageProcessor"]
