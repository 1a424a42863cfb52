"""
Image processor for XViT: the image-processor API (decoded frames in, `pixel_values` out) with the same resize, crop
and normalisation as `XViTVideoProcessor`, on PIL, NumPy and torch only, so it works without torchvision.
"""

import numpy as np
import torch
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import (
    ImageInput,
    PILImageResampling,
    SizeDict,
    is_scaled_image,
    make_nested_list_of_images,
)
from transformers.processing_utils import ImagesKwargs, Unpack
from transformers.utils import TensorType

from .clip_sampling import sample_clip_indices, spatial_crop_boxes
from .processing_defaults import (
    XViTProcessingDefaults,
    check_pixel_budget,
    check_pixel_options,
    check_sampling_options,
    frame_bytes,
    resize_size,
    resized_pixels,
    warn_already_rescaled,
)

# The interpolations of the original's resize (`torch.nn.functional.interpolate`, without antialiasing).
INTERPOLATE_MODES = {PILImageResampling.BILINEAR: "bilinear", PILImageResampling.BICUBIC: "bicubic"}


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
    antialias (`bool`, *optional*, defaults to `False`):
        `False` resizes as the original (and `XViTVideoProcessor`) does: bilinear interpolation of float frames
        without antialiasing, with torch. `True` uses PIL's antialiased resize.
    """

    num_frames: int | None
    sampling: str | None
    sampling_rate: int | None
    target_fps: float | int | None
    antialias: bool | None


class XViTImageProcessor(XViTProcessingDefaults, PilBackend):
    r"""
    Image processor for XViT. Takes one video as a list of frames (PIL images or `(height, width, channels)` arrays)
    or a `(frames, height, width, channels)` array, or a batch of those, and returns `pixel_values` of shape
    `(batch, num_frames, 3, crop_height, crop_width)`: short side resized to `size["shortest_edge"]` (bilinear,
    without antialiasing, as the original: the same pixels as `XViTVideoProcessor`), centre crop, rescale to [0, 1],
    normalise with mean and std 0.5. It evaluates one view per video; for multi-view testing, decoding and training
    augmentation use `XViTVideoProcessor`. Options are checked when the processor is built and on every call.
    """

    valid_kwargs = XViTImageProcessorKwargs

    def __init__(self, **kwargs: Unpack[XViTImageProcessorKwargs]):
        super().__init__(**kwargs)
        self._validate_preprocess_kwargs(**{name: getattr(self, name, None) for name in self._valid_kwargs_names})

    def preprocess(self, videos: ImageInput, **kwargs: Unpack[XViTImageProcessorKwargs]) -> BatchFeature:
        r"""
        videos (`ImageInput`):
            A video (list of frames or a 4D array) or a batch of videos, pixel values in [0, 255].
        """
        return super().preprocess(videos, **kwargs)

    def resize(self, image: np.ndarray, size: SizeDict, resample=None, antialias: bool = True, **kwargs) -> np.ndarray:
        """
        Resize a `(channels, height, width)` frame; a `shortest_edge` target is rounded as the original (see
        `resize_size`). Without antialiasing, the frame is interpolated in float32 as the original does.
        """
        size = resize_size(*image.shape[-2:], size)
        if antialias:
            return super().resize(image, size, resample, **kwargs)
        mode = INTERPOLATE_MODES.get(resample if resample is not None else PILImageResampling.BILINEAR)
        if mode is None:
            raise ValueError(f"`antialias=False` resizes with {list(INTERPOLATE_MODES)}, got `resample={resample!r}`.")
        frame = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
        resized = torch.nn.functional.interpolate(frame, (size.height, size.width), mode=mode, align_corners=False)
        return resized[0].numpy()

    def _validate_preprocess_kwargs(self, **kwargs) -> None:
        """The base checks, the options both XViT processors share and the memory the clip needs."""
        super()._validate_preprocess_kwargs(**kwargs)
        check_sampling_options(kwargs)
        check_pixel_options(kwargs, crops=kwargs["do_center_crop"])
        crop = kwargs["crop_size"] if kwargs["do_center_crop"] else None
        resized = resized_pixels(kwargs["size"]) if kwargs["do_resize"] else None
        check_pixel_budget(
            kwargs["num_frames"], frame_bytes(resized, crop), f"`num_frames={kwargs['num_frames']}` at these sizes"
        )

    def _prepare_images_structure(self, images: ImageInput, expected_ndims: int = 3) -> ImageInput:
        return make_nested_list_of_images(images, expected_ndims=expected_ndims)

    def _preprocess(
        self,
        images: list[list[np.ndarray]],
        do_resize: bool,
        size: SizeDict,
        resample: PILImageResampling | None,
        antialias: bool,
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
            if do_rescale and is_scaled_image(frames[0]):
                warn_already_rescaled()
            clip = []
            for frame in frames:
                if do_resize:
                    frame = self.resize(frame, size, resample, antialias=antialias)
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
            if not np.isfinite(pixel_values[-1]).all():  # the model would give NaN scores, silently
                raise ValueError(
                    f"Video #{len(pixel_values) - 1} of the batch gives non-finite pixel values (NaN or infinity): "
                    "its frames hold non-finite values, or `rescale_factor`, `image_mean` or `image_std` push them "
                    "out of the float range."
                )
        return BatchFeature(data={"pixel_values": np.stack(pixel_values)}, tensor_type=return_tensors)


__all__ = ["XViTImageProcessor"]
