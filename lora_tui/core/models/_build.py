"""Build a model's module inventory on the meta device (no weights, no download): modules.py's heavy half.

Run as `python -m lora_tui.core.models._build CONFIG_JSON [MODEL_ID]`: reads a transformers config.json,
lets transformers build the model class a text fine-tune would load (`AutoModelForCausalLM.from_config`) under
`torch.device("meta")`, and prints the inventory as one JSON object on stdout. `lora_tui.core.models.modules` calls
this in a subprocess so the core library never imports torch or transformers; tests and the preset script call
`build_inventory_dict` in-process.

What is recorded, so that LoRA arithmetic from it equals what PEFT reports after `get_peft_model`:
- every `nn.Linear` and transformers `Conv1D` (what PEFT's `target_modules` and `all-linear` can adapt),
- every `nn.Embedding` (PEFT can adapt those too when named explicitly; `all-linear` never includes them),
- every 3-D parameter (fused mixture-of-experts weights in transformers 5, e.g. `experts.gate_up_proj`), which
  `target_modules` never matches and PEFT adapts only through `target_parameters`,
grouped by module path (layer indices replaced by `*`), shape and type, with counts; and the total parameter
count as `model.parameters()` gives it, so tied weights count once.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

_DIGITS = re.compile(r"^\d+$")
_ATTN_LEAVES = {"q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "c_attn", "query_key_value", "out_proj",
                "query", "key", "value", "Wqkv", "wq", "wk", "wv", "wo", "dense"}
_VISION_MARKERS = ("vision", "visual", "multi_modal_projector", "image", "mm_projector")


def template(path: str) -> str:
    """A module path with its numeric components (layer and expert indices) replaced by `*`."""
    return ".".join("*" if _DIGITS.match(part) else part for part in path.split("."))


def classify(path: str, is_output: bool, layer_type: str) -> str:
    """Group of a module: output, embedding, vision, experts, attention, mlp or other."""
    lowered = path.lower()
    parts = lowered.split(".")
    if is_output:
        return "output"
    if any(marker in lowered for marker in _VISION_MARKERS):
        return "vision"
    if layer_type == "embedding":
        return "embedding"
    if layer_type == "parameter" or "experts" in parts:
        return "experts"
    parent = ".".join(parts[:-1])
    if "attn" in parent or "attention" in parent or path.split(".")[-1] in _ATTN_LEAVES:
        return "attention"
    if any(word in parent for word in ("mlp", "ffn", "feed_forward", "moe")):
        return "mlp"
    return "other"


def _record(kinds: dict[tuple, dict[str, Any]], path: str, entry: dict[str, Any]) -> None:
    """Add one module (or fused parameter) to its kind, creating the kind on first sight."""
    key = (template(path), entry["in_features"], entry["out_features"], entry["bias"], entry["layer_type"],
           entry["experts"])
    kind = kinds.setdefault(key, {**entry, "path": key[0], "count": 0})
    kind["count"] += 1


def _walk(model: Any) -> list[dict[str, Any]]:
    """Every adaptable module kind of a built model, in module order."""
    import torch
    from transformers.pytorch_utils import Conv1D

    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    kinds: dict[tuple, dict[str, Any]] = {}
    for path, module in model.named_modules():
        leaf = path.rsplit(".", 1)[-1]
        entry: dict[str, Any] | None = None
        if isinstance(module, torch.nn.Linear):
            entry = {"in_features": module.in_features, "out_features": module.out_features,
                     "bias": module.bias is not None, "layer_type": "linear"}
        elif isinstance(module, Conv1D):
            nx, nf = module.weight.shape
            entry = {"in_features": int(nx), "out_features": int(nf), "bias": module.bias is not None,
                     "layer_type": "conv1d"}
        elif isinstance(module, torch.nn.Embedding):
            entry = {"in_features": module.num_embeddings, "out_features": module.embedding_dim,
                     "bias": False, "layer_type": "embedding"}
        if entry is not None and path:
            entry.update(name=leaf, experts=1, group=classify(path, module is output, entry["layer_type"]))
            _record(kinds, path, entry)
        if entry is not None:
            continue
        for pname, param in module.named_parameters(recurse=False):
            if param.ndim == 2:  # e.g. an MoE router's weight: PEFT's ParamWrapper reads (out, in)
                n_exp, fout, fin = 1, int(param.shape[0]), int(param.shape[1])
            elif param.ndim == 3:  # fused experts: (experts, out, in) unless the module says it is transposed
                n_exp, a, b = (int(x) for x in param.shape)
                fin, fout = (a, b) if getattr(module, "is_transposed", False) else (b, a)
            else:
                continue
            full = f"{path}.{pname}" if path else pname
            _record(kinds, full, {"name": pname, "in_features": fin, "out_features": fout, "bias": False,
                                  "layer_type": "parameter", "experts": n_exp,
                                  "group": classify(full, False, "parameter")})
    return list(kinds.values())


def build_model(config_dict: dict[str, Any]) -> Any:
    """The model class a text fine-tune loads, built from a config on the meta device."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = dict(config_dict)
    model_type = cfg.pop("model_type")
    config = AutoConfig.for_model(model_type, **cfg)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def _cfg_int(cfg: Any, *names: str) -> int | None:
    """First integer attribute of a config among `names`."""
    for name in names:
        value = getattr(cfg, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def inventory_from_model(model: Any, model_id: str) -> dict[str, Any]:
    """The inventory of an already built model, as the JSON-ready dict `ModelInventory.from_dict` reads."""
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = _cfg_int(text, "hidden_size", "n_embd", "d_model") or 0
    heads = _cfg_int(text, "num_attention_heads", "n_head") or 1
    kv_heads = _cfg_int(text, "num_key_value_heads", "multi_query_group_num") or heads
    head_dim = _cfg_int(text, "head_dim") or (hidden // heads if heads else 0)
    experts = _cfg_int(text, "num_experts", "num_local_experts", "n_routed_experts")
    return {
        "model_id": model_id,
        "model_type": str(getattr(text, "model_type", config.model_type)),
        "architecture": type(model).__name__,
        "num_layers": _cfg_int(text, "num_hidden_layers", "n_layer", "num_layers") or 0,
        "hidden_size": hidden,
        "vocab_size": _cfg_int(text, "vocab_size") or 0,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "intermediate_size": _cfg_int(text, "moe_intermediate_size", "intermediate_size", "n_inner",
                                      "ffn_dim"),
        "total_params": sum(p.numel() for p in model.parameters()),
        "tie_word_embeddings": bool(getattr(text, "tie_word_embeddings", False)),
        "max_position_embeddings": _cfg_int(text, "max_position_embeddings", "n_positions"),
        "num_experts": experts,
        "experts_per_token": _cfg_int(text, "num_experts_per_tok", "experts_per_token", "moe_topk") if experts
        else None,
        "linears": _walk(model),
        "moe_conversion": moe_conversion(model),
    }


def moe_conversion(model: Any) -> dict[str, Any] | None:
    """PEFT's transformers-v5 MoE target remapping for this model class, if it applies.

    PEFT (0.18+) rewrites v4-style expert names in `target_modules` (`gate_proj`/`up_proj`/`down_proj`, `w1`/`w3`/
    `w2`, the router `gate`) into `target_parameters` on the fused v5 weights, doubling r and alpha where two
    projections were fused into one. Returns its two tables for this model type, or None.
    """
    try:
        from peft.utils import transformers_weight_conversion as conv
        from transformers.conversion_mapping import get_checkpoint_conversion_mapping
    except ImportError:
        return None
    model_type = getattr(model.config, "model_type", None)
    if get_checkpoint_conversion_mapping(model_type) is None:
        return None
    base = conv._MODEL_TO_CONVERSION_PATTERN.get(str(model_type))
    mapping = conv._MOE_TARGET_MODULE_MAPPING.get(base or "")
    fused = conv._MOE_FUSED_TARGETS.get(base or "")
    if not mapping or not fused:
        return None
    return {"target_module_mapping": dict(mapping), "fused_targets": {k: list(v) for k, v in fused.items()}}


def build_inventory_dict(config_dict: dict[str, Any], model_id: str) -> dict[str, Any]:
    """Build the model on the meta device from a config dict and return its inventory dict."""
    return inventory_from_model(build_model(config_dict), model_id)


def main(argv: list[str] | None = None) -> int:
    """CLI: `CONFIG_JSON [MODEL_ID]`; prints the inventory JSON, or a one-line error on stderr (exit 2)."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m lora_tui.core.models._build CONFIG_JSON [MODEL_ID]", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as fh:
        config_dict = json.load(fh)
    model_id = args[1] if len(args) > 1 else args[0]
    try:
        inv = build_inventory_dict(config_dict, model_id)
    except (ValueError, KeyError, TypeError, ImportError, AttributeError) as exc:
        print(f"{type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    json.dump(inv, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
