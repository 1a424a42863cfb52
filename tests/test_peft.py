"""LoRA fine-tuning with PEFT, as the docs show it.

Which modules: XViT's attention projections are named `q_proj`, `k_proj`, `v_proj`, `o_proj` in the backbone
(`xvit.layers.N.attention.*`) AND in the temporal-attention head (`xvit.temporal_aggregation.layers.N.attention.*`),
so `target_modules=["q_proj", "v_proj"]` adapts both: 2 x (backbone layers + head layers) modules, 26 for the
released models (12 + 1 layers). To adapt the backbone's only, give PEFT a regular expression, which it matches
against the whole module name:

    LoraConfig(target_modules=r"xvit\\.layers\\.\\d+\\.attention\\.(q_proj|v_proj)", modules_to_save=["classifier"])

`modules_to_save=["classifier"]` trains and saves the new classification head in full (a fine-tuned model has a new
head of its own classes). The adapter folder (`model.save_pretrained(adapter_dir)`) holds only the adapter's weights
and the new head; load it onto the same base model with `PeftModel.from_pretrained(base, adapter_dir)`, where `base` is
`AutoModelForVideoClassification.from_pretrained(base_folder, num_labels=..., trust_remote_code=True)` (the base
folder is XViT remote code). `AutoPeftModel` would load the base with `AutoModel` (the backbone, without the
classifier), and remote code only with `import_allowlist=["transformers_modules"]`: use `PeftModel` as above.
`merge_and_unload()` gives a plain XViT classifier to save as a model folder.
"""

import pytest
import torch

from modeling_xvit import XViTForVideoClassification

peft = pytest.importorskip("peft")

BACKBONE_QUERY_VALUE = r"xvit\.layers\.\d+\.attention\.(q_proj|v_proj)"


@pytest.fixture
def base_folder(tiny_config, tmp_path) -> str:
    torch.manual_seed(0)
    XViTForVideoClassification(tiny_config(num_hidden_layers=3)).save_pretrained(tmp_path / "base")
    return str(tmp_path / "base")


def adapted_modules(model) -> list[str]:
    return sorted(name for name, module in model.named_modules() if isinstance(module, peft.tuners.lora.LoraLayer))


def test_module_names_alone_adapt_the_temporal_head_too(base_folder):
    model = XViTForVideoClassification.from_pretrained(base_folder)
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    names = adapted_modules(lora)
    assert len(names) == 2 * (3 + 1)  # 3 backbone layers and the head's 1
    assert sum("temporal_aggregation" in name for name in names) == 2


def test_a_regular_expression_adapts_the_backbone_only(base_folder):
    model = XViTForVideoClassification.from_pretrained(base_folder)
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=BACKBONE_QUERY_VALUE))
    names = adapted_modules(lora)
    assert len(names) == 2 * 3
    assert all(name.startswith("base_model.model.xvit.layers.") for name in names)


def test_fine_tune_save_load_and_merge_an_adapter(base_folder, clip, tmp_path):
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=BACKBONE_QUERY_VALUE, modules_to_save=["classifier"])
    lora = peft.get_peft_model(XViTForVideoClassification.from_pretrained(base_folder), config)
    trainable = {name for name, parameter in lora.named_parameters() if parameter.requires_grad}
    assert trainable and all("lora_" in name or "classifier" in name for name in trainable)
    optimizer = torch.optim.AdamW((p for p in lora.parameters() if p.requires_grad), lr=1e-2)
    lora.train()
    for _ in range(3):
        optimizer.zero_grad()
        lora(clip(), labels=torch.tensor([0, 2])).loss.backward()
        optimizer.step()
    lora.eval()
    with torch.no_grad():
        expected = lora(clip()).logits
        base_logits = XViTForVideoClassification.from_pretrained(base_folder).eval()(clip()).logits
    assert (expected - base_logits).abs().max() > 1e-3  # the adapter changed the model
    lora.save_pretrained(tmp_path / "adapter")
    assert not (tmp_path / "adapter" / "model.safetensors").exists()  # the adapter and the new head only

    reloaded = peft.PeftModel.from_pretrained(
        XViTForVideoClassification.from_pretrained(base_folder), tmp_path / "adapter"
    )
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(clip()).logits, expected, rtol=0, atol=0)
        merged = reloaded.merge_and_unload().eval()
        assert type(merged) is XViTForVideoClassification and not adapted_modules(merged)
        torch.testing.assert_close(merged(clip()).logits, expected, rtol=0, atol=1e-5)
