"""Hand-built module inventories from published configs, for the memory tests (no preset files needed)."""

from __future__ import annotations

from lora_tui.core.models.modules import LinearKind, ModelInventory


def decoder(model_id: str, model_type: str, *, layers: int, hidden: int, heads: int, kv_heads: int, head_dim: int,
            intermediate: int, vocab: int, tied: bool, qkv_bias: bool = False, norms: int = 2,
            qk_norm: bool = False) -> ModelInventory:
    """A Llama-style decoder: q/k/v/o and gate/up/down per layer, plus the LM head."""
    q, kv = heads * head_dim, kv_heads * head_dim
    linears = (
        LinearKind("q_proj", hidden, q, layers, qkv_bias, "attention"),
        LinearKind("k_proj", hidden, kv, layers, qkv_bias, "attention"),
        LinearKind("v_proj", hidden, kv, layers, qkv_bias, "attention"),
        LinearKind("o_proj", q, hidden, layers, False, "attention"),
        LinearKind("gate_proj", hidden, intermediate, layers, False, "mlp"),
        LinearKind("up_proj", hidden, intermediate, layers, False, "mlp"),
        LinearKind("down_proj", intermediate, hidden, layers, False, "mlp"),
        LinearKind("lm_head", hidden, vocab, 1, False, "output"),
    )
    per_layer_norms = norms * hidden + (2 * head_dim if qk_norm else 0)
    total = (sum(k.original_params for k in linears if k.group != "output") + vocab * hidden
             + (0 if tied else vocab * hidden) + layers * per_layer_norms + hidden)
    return ModelInventory(model_id, model_type, layers, hidden, vocab, heads, kv_heads, head_dim, intermediate,
                          total, linears, tie_word_embeddings=tied)


LLAMA_32_1B = decoder("Llama-3.2-1B", "llama", layers=16, hidden=2048, heads=32, kv_heads=8, head_dim=64,
                      intermediate=8192, vocab=128256, tied=True)
GEMMA_3_1B = decoder("gemma-3-1b-it", "gemma3_text", layers=26, hidden=1152, heads=4, kv_heads=1, head_dim=256,
                     intermediate=6912, vocab=262144, tied=True, norms=4, qk_norm=True)
QWEN25_05B = decoder("Qwen2.5-0.5B", "qwen2", layers=24, hidden=896, heads=14, kv_heads=2, head_dim=64,
                     intermediate=4864, vocab=151936, tied=True, qkv_bias=True)
LLAMA_31_8B = decoder("Llama-3.1-8B", "llama", layers=32, hidden=4096, heads=32, kv_heads=8, head_dim=128,
                      intermediate=14336, vocab=128256, tied=False)


def qwen1(model_id: str, *, layers: int, hidden: int, heads: int, ff: int, vocab: int = 151936) -> ModelInventory:
    """First-generation Qwen (trust_remote_code): fused c_attn with bias, c_proj, w1/w2 -> c_proj MLP, untied."""
    linears = (
        LinearKind("c_attn", hidden, 3 * hidden, layers, True, "attention"),
        LinearKind("c_proj", hidden, hidden, layers, False, "attention"),
        LinearKind("w1", hidden, ff, layers, False, "mlp"),
        LinearKind("w2", hidden, ff, layers, False, "mlp"),
        LinearKind("c_proj", ff, hidden, layers, False, "mlp"),
        LinearKind("lm_head", hidden, vocab, 1, False, "output"),
    )
    total = (sum(k.original_params for k in linears if k.group != "output") + 2 * vocab * hidden
             + layers * 2 * hidden + hidden)
    return ModelInventory(model_id, "qwen", layers, hidden, vocab, heads, heads, hidden // heads, ff, total,
                          linears, tie_word_embeddings=False)


QWEN_7B = qwen1("Qwen-7B", layers=32, hidden=4096, heads=32, ff=11008)
QWEN_1_8B = qwen1("Qwen-1.8B", layers=24, hidden=2048, heads=16, ff=5504)
