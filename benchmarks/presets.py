"""Benchmark sizes. Every model in a run shares one preset: same width, depth, heads, MLP, patch, frames and pixels."""

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Preset:
    name: str
    batch_size: int
    num_frames: int
    image_size: int
    patch_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    # Frame counts of the scaling sweep (inference only, every model family rebuilt at each count).
    scaling_frames: tuple[int, ...] = (8, 16, 32)
    warmup: int = 3
    repeats: int = 20
    scaling_repeats: int = 10
    # torch.compile rows for XViT and ViT; slow to compile on a small CPU, so presets may leave them out.
    compile: bool = True
    # Intra-op threads on CPU (None: PyTorch's default). On cores shared with other work, several OpenMP threads
    # wait at every barrier for a descheduled peer, and single calls were up to 50x slower at random; one thread
    # only ever loses its share of the time.
    cpu_threads: int | None = None
    # Sized for a GPU: on a CPU the run takes hours, and the harness says so before it starts.
    meant_for_gpu: bool = False
    description: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# The released XViT-B/16 shape: run on a GPU (bf16).
FULL = Preset(
    name="full",
    batch_size=8,
    num_frames=16,
    image_size=224,
    patch_size=16,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    scaling_frames=(8, 16, 32),
    warmup=5,
    repeats=30,
    scaling_repeats=15,
    compile=True,
    meant_for_gpu=True,
    description="ViT-B/16, 8 clips of 16 x 224 x 224 (GPU, bf16)",
)

PRESETS = {
    # Harness smoke test only: numbers are meaningless, it checks that every stage runs and reports.
    "micro": Preset(
        name="micro",
        batch_size=1,
        num_frames=2,
        image_size=32,
        patch_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        scaling_frames=(2, 4),
        warmup=1,
        repeats=2,
        scaling_repeats=2,
        compile=False,
        cpu_threads=1,
        description="tiny models for the test suite",
    ),
    # ViT-Ti (DeiT-Ti) on short, small clips: under 5 minutes on a 2-core CPU. All 12 layers are kept so that the
    # one-layer temporal-attention head weighs what it weighs in the released 12-layer model.
    "small": Preset(
        name="small",
        batch_size=2,
        num_frames=8,
        image_size=112,
        patch_size=16,
        hidden_size=192,
        num_hidden_layers=12,
        num_attention_heads=3,
        intermediate_size=768,
        scaling_frames=(8, 16, 32),
        warmup=3,
        repeats=32,
        scaling_repeats=8,
        compile=True,
        cpu_threads=1,
        description="ViT-Ti, 2 clips of 8 x 112 x 112 (CPU, one thread)",
    ),
    "full": FULL,
    # The released XViT-B/16 on one clip: for `--memory-only` on a CPU, where timing it would take too long.
    "b16-clip": replace(
        FULL,
        name="b16-clip",
        batch_size=1,
        compile=False,
        meant_for_gpu=False,
        description="ViT-B/16, 1 clip of 16 x 224 x 224 (memory only on CPU)",
    ),
}
