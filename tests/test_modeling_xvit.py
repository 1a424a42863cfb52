import copy
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification, ViTConfig, ViTModel

from modeling_xvit import XViTForVideoClassification, XViTModel
from modeling_xvit.hub.folder import write_code_files
from modeling_xvit.modeling_xvit import XViTSpaceTimeMixingAttention, shift_channels_in_time, space_time_mixing


def reference_space_time_mixing(states: torch.Tensor, segment_length: int, num_channels: int) -> torch.Tensor:
    """Slow reference from the paper's description: frame by frame, with explicit zeros at segment borders."""
    mixed = states.clone()
    num_frames = states.shape[1]
    for frame in range(num_frames):
        position = frame % segment_length
        next_frame = states[:, frame + 1] if position + 1 < segment_length else torch.zeros_like(states[:, frame])
        previous_frame = states[:, frame - 1] if position > 0 else torch.zeros_like(states[:, frame])
        mixed[:, frame, :, :num_channels] = next_frame[..., :num_channels]
        mixed[:, frame, :, num_channels : 2 * num_channels] = previous_frame[..., num_channels : 2 * num_channels]
    return mixed


def reference_attention(
    module: XViTSpaceTimeMixingAttention, hidden_states: torch.Tensor, segment_length: int
) -> torch.Tensor:
    """Per-frame softmax attention over mixed keys and values, written from the paper, heads split by hand."""
    batch_size, num_frames, num_tokens, hidden_size = hidden_states.shape
    heads, head_dim = module.num_attention_heads, module.head_dim
    query = module.q_proj(hidden_states)
    key = reference_space_time_mixing(module.k_proj(hidden_states), segment_length, module.mixing_channels)
    value = reference_space_time_mixing(module.v_proj(hidden_states), segment_length, module.mixing_channels)
    output = torch.empty_like(query)
    for b in range(batch_size):
        for f in range(num_frames):
            for h in range(heads):
                channels = slice(h * head_dim, (h + 1) * head_dim)
                q, k, v = query[b, f, :, channels], key[b, f, :, channels], value[b, f, :, channels]
                output[b, f, :, channels] = torch.softmax(q @ k.T * head_dim**-0.5, dim=-1) @ v
    return module.o_proj(output)


def eval_model(model_class, config, seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return model_class._from_config(copy.deepcopy(config), **kwargs).eval()  # _from_config edits the config


@pytest.mark.parametrize(("segment_length", "num_channels"), [(8, 4), (16, 8), (4, 0), (2, 16)])
def test_space_time_mixing_matches_the_slow_reference(segment_length, num_channels):
    states = torch.randn(2, 16, 5, 32)
    expected = reference_space_time_mixing(states, segment_length, num_channels)
    torch.testing.assert_close(
        space_time_mixing(states.clone(), segment_length, num_channels), expected, rtol=0, atol=0
    )
    if num_channels:  # without autograd, the keys or values are mixed where they are, not copied
        assert space_time_mixing(states, segment_length, num_channels) is states
        torch.testing.assert_close(states, expected, rtol=0, atol=0)


@pytest.mark.parametrize(("segment_length", "num_channels"), [(8, 4), (16, 8), (2, 16), (1, 3)])
def test_out_of_place_mixing_matches_the_slow_reference_and_leaves_its_input(segment_length, num_channels):
    states = torch.randn(2, 16, 5, 32)
    before = states.clone()
    expected = reference_space_time_mixing(states, segment_length, num_channels)
    torch.testing.assert_close(shift_channels_in_time(states, segment_length, num_channels), expected, rtol=0, atol=0)
    assert torch.equal(states, before)


def test_space_time_mixing_zeroes_the_borrowed_channels_at_segment_borders():
    states = torch.randn(1, 8, 3, 16) + 10.0  # nowhere zero
    mixed = space_time_mixing(states.clone(), segment_length=4, num_channels=2)
    for last in (3, 7):  # no frame t+1 inside the segment
        assert mixed[:, last, :, :2].eq(0).all()
        assert mixed[:, last, :, 2:].ne(0).all()
    for first in (0, 4):  # no frame t-1 inside the segment
        assert mixed[:, first, :, 2:4].eq(0).all()
    torch.testing.assert_close(mixed[:, 1, :, :2], states[:, 2, :, :2])
    torch.testing.assert_close(mixed[:, 1, :, 2:4], states[:, 0, :, 2:4])
    torch.testing.assert_close(mixed[:, 1, :, 4:], states[:, 1, :, 4:])


def test_attention_matches_the_per_frame_reference_with_channels_counted_across_heads(tiny_config):
    config = tiny_config(num_frames=8, space_time_mixing_segment_length=4, space_time_mixing_fraction=0.25)
    torch.manual_seed(0)
    attention = XViTSpaceTimeMixingAttention(config, layer_idx=0).eval()
    assert attention.mixing_channels == 8  # a quarter of 32 channels, across the 4 heads
    hidden_states = torch.randn(2, 8, 5, 32)
    output, _ = attention(hidden_states.flatten(1, 2), num_frames=8)
    expected = reference_attention(attention, hidden_states, 4).flatten(1, 2)
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-5)


def test_output_shapes(tiny_config, clip):
    config = tiny_config(summary_token_layers=[1])
    outputs = eval_model(XViTModel, config)(clip(), output_hidden_states=True, output_attentions=True)
    tokens = config.num_patches + 1
    assert outputs.last_hidden_state.shape == (2, 4 * tokens, 32)
    assert outputs.pooler_output.shape == (2, 32)
    assert outputs.frame_features.shape == (2, 4, 32)
    assert len(outputs.hidden_states) == config.num_hidden_layers + 1
    assert all(state.shape == (2, 4 * tokens, 32) for state in outputs.hidden_states)
    assert outputs.attentions[0].shape == (2, 4, 4, tokens, tokens)
    assert outputs.attentions[1].shape == (2, 4, 4, tokens, tokens + 4)  # + one summary token per frame
    torch.testing.assert_close(outputs.attentions[1].sum(-1), torch.ones(2, 4, 4, tokens))
    # frame-major layout: frame f's CLS token sits at f * tokens
    torch.testing.assert_close(outputs.last_hidden_state[:, ::tokens], outputs.frame_features)

    logits = eval_model(XViTForVideoClassification, config)(clip()).logits
    assert logits.shape == (2, 3)


def test_hidden_states_and_attentions_are_in_the_autograd_graph(tiny_config, clip):
    config = tiny_config(summary_token_layers=[1], temporal_attention_num_layers=2)
    model = eval_model(XViTForVideoClassification, config)  # sdpa: the call asking for attentions runs eager
    outputs = model(clip(), output_hidden_states=True, output_attentions=True)
    # the backbone's layers only: the temporal-attention head's two layers are not recorded
    assert (len(outputs.hidden_states), len(outputs.attentions)) == (3, 2)
    watched = [outputs.hidden_states[0], outputs.hidden_states[-1], outputs.attentions[0], outputs.attentions[1]]
    for tensor in watched:
        tensor.retain_grad()
    outputs.logits[:, 0].sum().backward()
    for tensor in watched:
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0
    # gradient x input, as attribution methods compute it, has the documented frame-major shape
    assert (outputs.hidden_states[0].grad * outputs.hidden_states[0]).shape == (2, 4 * (config.num_patches + 1), 32)


def test_recorded_outputs_match_the_final_layer_norm_and_eager_attention(tiny_config, clip):
    config = tiny_config()
    sdpa = eval_model(XViTModel, config)
    eager = eval_model(XViTModel, config, attn_implementation="eager")
    with torch.no_grad():
        recorded = sdpa(clip(), output_hidden_states=True, output_attentions=True)
        reference = eager(clip(), output_attentions=True)
    torch.testing.assert_close(sdpa.layernorm(recorded.hidden_states[-1]), recorded.last_hidden_state)
    for recorded_attention, eager_attention in zip(recorded.attentions, reference.attentions, strict=True):
        torch.testing.assert_close(recorded_attention, eager_attention)
    assert sdpa(clip()).attentions is None and sdpa(clip()).hidden_states is None


def test_tuple_output_when_return_dict_is_false(tiny_config, clip):
    model = eval_model(XViTForVideoClassification, tiny_config())
    logits = model(clip(), return_dict=False)[0]
    torch.testing.assert_close(logits, model(clip()).logits)


# flex_attention compiles its kernel: tens of seconds on a CPU
@pytest.mark.parametrize("implementation", ["sdpa", pytest.param("flex_attention", marks=pytest.mark.slow)])
def test_attention_implementations_agree_with_eager(tiny_config, clip, implementation):
    config = tiny_config(summary_token_layers=[0])
    eager = eval_model(XViTForVideoClassification, config, attn_implementation="eager")
    other = eval_model(XViTForVideoClassification, config, attn_implementation=implementation)
    assert (eager.config._attn_implementation, other.config._attn_implementation) == ("eager", implementation)
    with torch.no_grad():  # flex attention has no backward on the CPU
        torch.testing.assert_close(other(clip()).logits, eager(clip()).logits, rtol=1e-5, atol=1e-5)


def test_flex_attention_outside_no_grad_falls_back_to_sdpa_on_the_cpu(tiny_config, clip):
    config = tiny_config(summary_token_layers=[0])
    eager = eval_model(XViTForVideoClassification, config, attn_implementation="eager")
    flex = eval_model(XViTForVideoClassification, config, attn_implementation="flex_attention")
    logits = flex(clip()).logits  # eval() but no torch.no_grad(): torch's flex attention has no CPU backward
    torch.testing.assert_close(logits, eager(clip()).logits, rtol=1e-5, atol=1e-5)
    logits.sum().backward()
    assert flex.xvit.layers[0].attention.q_proj.weight.grad is not None


def test_keyword_arguments_reach_the_attention_function(tiny_config, clip):
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    received = []

    def recording_attention(module, query, key, value, attention_mask, **kwargs):
        received.append(kwargs.get("kernel_option"))
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register("recording_sdpa", recording_attention)
    model = eval_model(XViTForVideoClassification, tiny_config(), attn_implementation="recording_sdpa")
    with torch.no_grad():
        model(clip(), kernel_option="fast")
    # every backbone layer; the temporal head attends over frames and takes no options meant for the backbone
    assert received == ["fast", "fast", None]


def test_sdpa_is_the_default(tiny_config):
    assert XViTModel(tiny_config()).config._attn_implementation == "sdpa"


def test_gradient_checkpointing_gives_the_same_gradients(tiny_config, clip):
    config = tiny_config(summary_token_layers=[1])
    labels = torch.tensor([0, 2])
    gradients = []
    for checkpointing in (False, True):
        model = eval_model(XViTForVideoClassification, config).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        calls = []
        model.xvit.layers[0].layernorm_before.register_forward_hook(lambda *args, calls=calls: calls.append(1))
        model(clip(), labels=labels).loss.backward()
        assert len(calls) == (2 if checkpointing else 1)  # recomputed in the backward pass
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters()})
    assert gradients[0].keys() == gradients[1].keys()
    for name in gradients[0]:
        torch.testing.assert_close(gradients[1][name], gradients[0][name], msg=name)
    assert gradients[0]["xvit.embeddings.temporal_embeddings"].abs().sum() > 0


def test_save_and_load_round_trip_through_auto_classes(tmp_path, tiny_config, clip):
    model = eval_model(XViTForVideoClassification, tiny_config())
    model.save_pretrained(tmp_path)
    loaded = AutoModelForVideoClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, XViTForVideoClassification)
    torch.testing.assert_close(loaded(clip()).logits, model(clip()).logits, rtol=0, atol=0)
    assert isinstance(AutoModel.from_config(AutoConfig.from_pretrained(tmp_path)), XViTModel)
    assert (tmp_path / "model.safetensors").exists()


def test_building_a_model_leaves_the_config_as_it_was(tiny_config):
    config = tiny_config()
    before = config.to_dict()
    XViTForVideoClassification(config)
    XViTModel(config)
    assert config.to_dict() == before
    assert getattr(config, "auto_map", None) is None


def test_drop_path_is_an_identity_at_rate_0_and_drops_everything_at_rate_1(tiny_config, clip):
    model = eval_model(XViTForVideoClassification, tiny_config(num_hidden_layers=3, drop_path_rate=1.0)).train()
    rates = [layer.drop_path for layer in model.xvit.layers]
    assert isinstance(rates[0], torch.nn.Identity)  # linspace(0, 1, 3): 0, 0.5, 1
    assert [rate.drop_prob for rate in rates[1:]] == [0.5, 1.0]
    hidden_states = torch.randn(4, 5, 32)
    assert torch.equal(rates[2](hidden_states), torch.zeros_like(hidden_states))  # no 0 / 0
    outputs = model(clip(), labels=torch.tensor([0, 2]))
    assert torch.isfinite(outputs.logits).all()
    outputs.loss.backward()


@pytest.mark.slow
def test_compiles_as_one_graph_for_inference_and_training(tiny_config, clip):
    assert XViTForVideoClassification._can_compile_fullgraph
    model = eval_model(XViTForVideoClassification, tiny_config(summary_token_layers=[1], drop_path_rate=0.1))
    expected = model(clip()).logits
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # tracing only: a graph break raises
    with torch.no_grad():
        torch.testing.assert_close(compiled(clip()).logits, expected)
    model.train()
    compiled(clip(), labels=torch.tensor([0, 2])).loss.backward()
    assert model.xvit.layers[0].attention.k_proj.weight.grad is not None
    torch._dynamo.reset()


@pytest.mark.slow
def test_saved_folder_loads_with_remote_code_in_a_fresh_process(tmp_path, tiny_config, clip):
    model = eval_model(XViTForVideoClassification, tiny_config())
    model.save_pretrained(tmp_path / "model")
    write_code_files(tmp_path / "model")  # the code files and `auto_map` are the Hub folder writer's
    for name in ("configuration_xvit.py", "modeling_xvit.py"):
        assert (tmp_path / "model" / name).exists()
    torch.save(clip(), tmp_path / "clip.pt")
    torch.save(model(clip()).logits, tmp_path / "expected.pt")
    script = textwrap.dedent(
        """
        import sys
        import torch

        class RefuseThePackage:  # the installed package must not be what gets loaded
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "modeling_xvit":
                    raise ImportError("modeling_xvit must not be imported")

        sys.meta_path.insert(0, RefuseThePackage())
        from transformers import AutoModel, AutoModelForVideoClassification

        model = AutoModelForVideoClassification.from_pretrained("model", trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            logits = model(torch.load("clip.pt", weights_only=True)).logits
        torch.testing.assert_close(logits, torch.load("expected.pt", weights_only=True), rtol=1e-6, atol=1e-6)
        backbone = AutoModel.from_pretrained("model", trust_remote_code=True)
        assert type(backbone).__name__ == "XViTModel", type(backbone)
        torch.testing.assert_close(backbone.layernorm.weight, model.xvit.layernorm.weight)
        print("REMOTE-CODE-OK", type(model).__name__)
        """
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REMOTE-CODE-OK XViTForVideoClassification" in result.stdout


def test_frame_order_matters_with_mixing_and_not_without(tiny_config, clip):
    pixel_values = clip(num_frames=4)
    reversed_frames = pixel_values.flip(1)
    for mixing_layers, order_matters in (([0, 1], True), ([], False)):
        config = tiny_config(space_time_mixing_layers=mixing_layers)
        model = eval_model(XViTModel, config)  # temporal embedding is zero at initialisation
        features = model(pixel_values).frame_features
        reversed_features = model(reversed_frames).frame_features.flip(1)
        assert torch.allclose(features, reversed_features, atol=1e-5) != order_matters


def test_segments_never_mix_inside_the_backbone(tiny_config, clip):
    config = tiny_config(num_frames=16, space_time_mixing_segment_length=8, num_hidden_layers=3)
    model = eval_model(XViTModel, config)
    pixel_values = clip(batch_size=1, num_frames=16)
    changed = pixel_values.clone()
    changed[:, 8:] = torch.randn_like(changed[:, 8:])
    before, after = model(pixel_values).frame_features, model(changed).frame_features
    torch.testing.assert_close(after[:, :8], before[:, :8], rtol=0, atol=0)
    assert not torch.allclose(after[:, 8:], before[:, 8:])
    # with one segment of 16 frames, the change reaches frame 7 through frame 8
    whole = eval_model(XViTModel, tiny_config(num_frames=16, num_hidden_layers=3))
    assert not torch.allclose(whole(changed).frame_features[:, 7], whole(pixel_values).frame_features[:, 7])


def test_without_mixing_the_backbone_is_a_per_frame_vit(tiny_config, clip):
    config = tiny_config(space_time_mixing_layers=[])
    model = eval_model(XViTModel, config)
    vit_config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=32,
        patch_size=16,
        layer_norm_eps=config.layer_norm_eps,
    )
    vit = ViTModel(vit_config, add_pooling_layer=False).eval()
    missing, unexpected = vit.load_state_dict(model.state_dict(), strict=False)
    assert missing == [] and all(k.startswith(("embeddings.temporal", "temporal_aggregation")) for k in unexpected)
    pixel_values = clip()
    expected = vit(pixel_values.flatten(0, 1)).last_hidden_state.view(2, -1, 32)
    torch.testing.assert_close(model(pixel_values).last_hidden_state, expected, rtol=1e-5, atol=1e-5)


def test_summary_token_carries_information_between_distant_frames_in_one_layer(tiny_config, clip):
    pixel_values = clip(batch_size=1, num_frames=8)
    changed = pixel_values.clone()
    changed[:, 7] = torch.randn_like(changed[:, 7])
    base = dict(num_frames=8, num_hidden_layers=1, space_time_mixing_segment_length=2)
    for summary_layers, reaches_frame_0 in (([0], True), ([], False)):
        model = eval_model(XViTModel, tiny_config(**base, summary_token_layers=summary_layers))
        before, after = model(pixel_values).frame_features[:, 0], model(changed).frame_features[:, 0]
        assert torch.allclose(before, after, atol=1e-6) != reaches_frame_0


def test_batch_independence(tiny_config, clip):
    model = eval_model(XViTForVideoClassification, tiny_config(summary_token_layers=[0]))
    pixel_values = clip(batch_size=3)
    torch.testing.assert_close(model(pixel_values[1:2]).logits, model(pixel_values).logits[1:2], rtol=1e-5, atol=1e-5)


def test_deterministic_in_eval_and_stochastic_in_training(tiny_config, clip):
    config = tiny_config(
        hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2, drop_path_rate=0.2, frame_dropout_prob=0.5
    )
    model = eval_model(XViTForVideoClassification, config)
    torch.testing.assert_close(model(clip()).logits, model(clip()).logits, rtol=0, atol=0)
    model.train()
    assert not torch.allclose(model(clip()).logits, model(clip()).logits)


def test_bfloat16_forward_on_cpu(tiny_config, clip):
    model = eval_model(XViTForVideoClassification, tiny_config(summary_token_layers=[1]))
    reference = model(clip()).logits
    logits = model.to(torch.bfloat16)(clip()).logits  # float32 input is cast to the weights' dtype
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), reference, rtol=0.1, atol=0.1)


def test_other_resolutions_with_interpolated_position_embedding(tiny_config, clip):
    model = eval_model(XViTModel, tiny_config())
    outputs = model(clip(size=48), interpolate_pos_encoding=True)
    assert outputs.last_hidden_state.shape == (2, 4 * (9 + 1), 32)
    same_size = model(clip(), interpolate_pos_encoding=True).last_hidden_state
    torch.testing.assert_close(same_size, model(clip()).last_hidden_state)


def test_fewer_frames_and_cyclic_temporal_embedding(tiny_config, clip):
    model = eval_model(XViTModel, tiny_config(num_frames=4, space_time_mixing_segment_length=2))
    assert model(clip(num_frames=2)).frame_features.shape == (2, 2, 32)
    assert model(clip(num_frames=8)).frame_features.shape == (2, 8, 32)
    temporal = torch.randn_like(model.embeddings.temporal_embeddings)
    model.embeddings.temporal_embeddings.data.copy_(temporal)
    torch.testing.assert_close(model.embeddings.temporal_embedding(8), torch.cat([temporal, temporal], dim=1))


@pytest.mark.parametrize(
    ("shape", "kwargs", "message"),
    [
        ((4, 3, 32, 32), {}, r"must have shape \(batch_size, num_frames, 3, 32, 32\), got \(4, 3, 32, 32\)"),
        ((2, 4, 1, 32, 32), {}, r"3 channels.*got \(2, 4, 1, 32, 32\)"),
        ((2, 4, 3, 48, 48), {}, r"48x48.*32x32.*interpolate_pos_encoding"),
        ((2, 4, 3, 40, 40), {"interpolate_pos_encoding": True}, "multiples of the patch size 16"),
        ((2, 3, 3, 32, 32), {}, r"3 frames.*segment length 4"),
        ((0, 4, 3, 32, 32), {}, r"no clips or clips of no frames \(shape \(0, 4, 3, 32, 32\)\)"),
        ((2, 0, 3, 32, 32), {}, r"no clips or clips of no frames \(shape \(2, 0, 3, 32, 32\)\)"),
    ],
)
@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_bad_input_gets_a_clear_error(tiny_config, shape, kwargs, message, implementation):
    model = eval_model(XViTModel, tiny_config(), attn_implementation=implementation)
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape), **kwargs)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool, torch.complex64])
def test_pixel_values_that_are_not_real_floats_are_refused(tiny_config, clip, dtype):
    model = eval_model(XViTModel, tiny_config())
    with pytest.raises(ValueError, match=rf"floating-point.*got {dtype}.*XViTVideoProcessor"):
        model(clip().to(dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_are_cast_to_the_weights(tiny_config, clip, dtype):
    model = eval_model(XViTModel, tiny_config())
    expected = model(clip()).pooler_output
    torch.testing.assert_close(model(clip().to(dtype)).pooler_output, expected, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_non_finite_scores_are_refused_in_inference(tiny_config, clip, bad_value):
    model = eval_model(XViTForVideoClassification, tiny_config())
    pixel_values = clip()
    pixel_values[1, 2, 0, 5, 7] = bad_value
    with pytest.raises(
        ValueError, match=r"scores \(logits\).*\(2, 4, 3, 32, 32\) are not finite.*holds 1 NaN or infinite"
    ):
        model(pixel_values)
    model.train()  # in training the loss shows it: no check, no synchronisation
    assert not torch.isfinite(model(pixel_values).logits).all()


def test_non_finite_weights_are_named_as_the_cause_of_non_finite_scores(tiny_config, clip):
    model = eval_model(XViTForVideoClassification, tiny_config())
    with torch.no_grad():
        model.classifier.out_proj.bias[0] = float("nan")
    with pytest.raises(ValueError, match="`pixel_values` are finite, so the weights hold non-finite values"):
        model(clip())


def test_from_pretrained_refuses_the_folder_of_another_model(tmp_path):
    ViTModel(
        ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64)
    ).save_pretrained(tmp_path / "vit")
    for model_class in (XViTForVideoClassification, XViTModel):
        with pytest.raises(
            ValueError, match=r"vit holds the config of a `vit` model, not an XViT model.*xvit-convert-vit"
        ):
            model_class.from_pretrained(tmp_path / "vit")


def test_frame_count_incompatible_with_the_temporal_embedding(tiny_config):
    model = eval_model(XViTModel, tiny_config(space_time_mixing_segment_length=2))
    with pytest.raises(ValueError, match=r"6 frames.*4 temporal embeddings"):
        model(torch.randn(1, 6, 3, 32, 32))


@pytest.mark.parametrize(
    ("num_labels", "labels", "problem_type"),
    [
        (3, torch.tensor([0, 2]), "single_label_classification"),
        (1, torch.tensor([0.5, -1.0]), "regression"),
        (3, torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), "multi_label_classification"),
    ],
)
def test_loss_follows_problem_type(tiny_config, clip, num_labels, labels, problem_type):
    model = eval_model(XViTForVideoClassification, tiny_config(num_labels=num_labels))
    outputs = model(clip(), labels=labels)
    assert model.config.problem_type == problem_type
    assert outputs.loss.ndim == 0 and torch.isfinite(outputs.loss)
    outputs.loss.backward()


def test_linear_classifier_and_mean_aggregation(tiny_config, clip):
    config = tiny_config(classifier_hidden_size=None, temporal_aggregation="mean")
    model = eval_model(XViTForVideoClassification, config)
    assert isinstance(model.classifier, torch.nn.Linear)
    outputs = model.xvit(clip())
    torch.testing.assert_close(outputs.pooler_output, outputs.frame_features.mean(1))
    assert not any(name.startswith("xvit.temporal_aggregation") for name, _ in model.named_parameters())


def test_initialisation_follows_vit_conventions(tiny_config):
    model = eval_model(XViTForVideoClassification, tiny_config())
    assert model.xvit.embeddings.temporal_embeddings.abs().sum() == 0
    assert 0 < model.xvit.embeddings.position_embeddings.std() < 0.03
    assert 0.015 < model.xvit.layers[0].attention.q_proj.weight.std() < 0.025
    assert model.xvit.layers[0].attention.q_proj.bias.abs().sum() == 0
    assert model.xvit.layernorm.weight.eq(1).all()


def count_flops(model: torch.nn.Module, pixel_values: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(pixel_values)
    return counter.get_total_flops()


def test_costs_what_a_per_frame_vit_costs(tiny_config, clip):
    """Counted FLOPs, not time: space-time mixing adds no matrix work, so XViT's backbone equals a per-frame ViT.
    Eager attention, because the counter does not see inside the CPU sdpa kernel."""
    base = dict(temporal_aggregation="mean", classifier_hidden_size=None, num_frames=8)
    config = tiny_config(**base)
    vit_config = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=32, patch_size=16
    )
    vit = ViTModel._from_config(vit_config, add_pooling_layer=False, attn_implementation="eager").eval()
    pixel_values = clip(batch_size=1, num_frames=8)
    xvit_flops = count_flops(eval_model(XViTModel, config, attn_implementation="eager"), pixel_values)
    assert xvit_flops == count_flops(vit, pixel_values.flatten(0, 1))

    # summary tokens in both layers add 8 keys per frame: 2 matmuls x 2 FLOPs x frames x tokens x keys x hidden
    with_summary = eval_model(XViTModel, tiny_config(**base, summary_token_layers=[0, 1]), attn_implementation="eager")
    extra = 2 * (2 * 2 * 8 * (config.num_patches + 1) * 8 * 32)
    assert count_flops(with_summary, pixel_values) == xvit_flops + extra


@pytest.mark.parametrize(("segment_length", "num_channels"), [(8, 4), (16, 8), (2, 16), (1, 3)])
def test_space_time_mixing_gradient_matches_autograd_through_the_reference(segment_length, num_channels):
    states = torch.randn(2, 16, 5, 32, dtype=torch.float64, requires_grad=True)
    grad_output = torch.randn(2, 16, 5, 32, dtype=torch.float64)
    (expected,) = torch.autograd.grad(
        reference_space_time_mixing(states, segment_length, num_channels), states, grad_output
    )
    before = states.detach().clone()
    (actual,) = torch.autograd.grad(space_time_mixing(states, segment_length, num_channels), states, grad_output)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    assert torch.equal(states, before)  # under autograd the input is left as it was
    small = torch.randn(1, 4, 2, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(space_time_mixing, (small, 2, 2))


class RandomClips(torch.utils.data.Dataset):
    """Eight random clips whose label is the clip's brightest frame, modulo the number of classes."""

    def __init__(self, num_frames: int = 4, num_labels: int = 3):
        generator = torch.Generator().manual_seed(0)
        self.clips = torch.randn(8, num_frames, 3, 32, 32, generator=generator)
        self.labels = self.clips.mean(dim=(2, 3, 4)).argmax(dim=1) % num_labels

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.clips[index], "labels": self.labels[index]}


def test_fine_tunes_and_resumes_with_trainer(tmp_path, tiny_config):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class StepsRun(TrainerCallback):
        def __init__(self):
            self.steps = []

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    def train(max_steps: int, resume: bool):
        args = TrainingArguments(
            output_dir=str(tmp_path),
            max_steps=max_steps,
            per_device_train_batch_size=4,
            learning_rate=1e-3,
            save_steps=2,
            logging_steps=1,
            report_to=[],
            use_cpu=True,
            seed=0,
        )
        model = eval_model(XViTForVideoClassification, tiny_config(), seed=0)
        steps_run = StepsRun()
        trainer = Trainer(model=model, args=args, train_dataset=RandomClips(), callbacks=[steps_run])
        return trainer.train(resume_from_checkpoint=resume), steps_run.steps

    result, steps = train(max_steps=2, resume=False)
    assert steps == [1, 2] and torch.isfinite(torch.tensor(result.training_loss))
    assert (tmp_path / "checkpoint-2" / "model.safetensors").exists()
    result, steps = train(max_steps=4, resume=True)
    assert steps == [3, 4]  # continued from checkpoint-2 rather than starting over
    assert result.global_step == 4
