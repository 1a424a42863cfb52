"""The defaults both XViT processors share: the original's test-time pixel pipeline and clip length."""

from transformers.image_utils import PILImageResampling


class XViTProcessingDefaults:
    """Class attributes of the original XViT test pipeline: short side 224, centre crop 224, [0, 1] pixels normalised
    with mean and std 0.5; 16-frame clips, TSN-style segment sampling by default."""

    resample = PILImageResampling.BILINEAR
    image_mean = [0.5, 0.5, 0.5]
    image_std = [0.5, 0.5, 0.5]
    size = {"shortest_edge": 224}
    default_to_square = False
    crop_size = {"height": 224, "width": 224}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True
    num_frames = 16
    sampling = "segment"
    sampling_rate = 16
    target_fps = 30.0
    model_input_names = ["pixel_values"]
