#!/usr/bin/python3
"""PyTorch side of `deno task bench:peers`: the same models, shapes and thread count as Ferry's CPU
backend, measured in plain torch (float32, eager), so bench/peers.ts can put both in one table.

Run (from the repository root, with Debian's python3-torch 1.13; bench/peers.ts does this for you):
  OPENBLAS_NUM_THREADS=N /usr/bin/python3 bench/peers_torch.py --model examples/models/brown-dense \
      --model examples/models/brown-moe --threads N --json /tmp/peers_torch.json [--quick]

torch's intra-op threads are 1 (elementwise work single-threaded, like Ferry's JavaScript); the BLAS
(libblas.so.3 -> OpenBLAS) uses OPENBLAS_NUM_THREADS = N threads, like Ferry's. Per model folder
(Llama or Mixtral layout: config.json + model.safetensors) it measures, warm-up first, then repeats
reported as median / min / max tokens/s:
  prefill  one forward over P = 128 prompt ids (inference mode), filling a KV cache
  decode   32 greedy one-token forwards with that cache, after the prefill
  train    T = 128, batch 2, next-token cross-entropy, AdamW (lr 1e-4, weight_decay 0): full
           fine-tuning and LoRA (r 8, alpha 16 on q,k,v,o,gate,up,down and Mixtral's w1,w2,w3;
           A kaiming-uniform as in PEFT, B zero); TRAIN_WARMUP (4) warm-up steps then 8 timed (3 with --quick);
           each timed step is one repeat. MoE models are trained only without --quick.
For a cross-check it writes the logits row of the last prompt position and the greedy ids: the
token picked from the prefill, then one per decode step (33 ids, what Ferry's
`generate(model, prompt, { maxNewTokens: 33 })` returns). The forward follows
test/fixtures/make_model_golden.py (rms_norm, rope, GQA attention, SwiGLU, Mixtral
softmax -> top-k -> renormalise routing, tied embeddings); safetensors are read with struct + json.
"""
import argparse
import json
import math
import os
import re
import statistics
import struct
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ModuleNotFoundError:  # a python3 on PATH without torch (pyenv): use Debian's, which has it
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
    raise SystemExit("peers_torch.py: torch is not importable: install python3-torch (Debian) or PyTorch")

P, DECODE, T_TRAIN, BATCH = 128, 32, 128, 2
WARMUP = 3  # inference warm-ups, as bench/peers.ts (a JIT needs a few runs to settle)
TRAIN_WARMUP = 4  # training warm-up steps, as bench/peers.ts
LORA_R, LORA_ALPHA = 8, 16
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "w1", "w2", "w3")


# --- safetensors, by hand --------------------------------------------------------------------------
def read_safetensors(path):
    """float32 tensors of a safetensors file (F32, F16 or BF16 stored), parsed with struct + json."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dt = info["dtype"]
        if dt == "F32":
            t = torch.frombuffer(data, dtype=torch.float32, offset=a, count=(b - a) // 4)
        elif dt == "F16":
            t = torch.frombuffer(data, dtype=torch.float16, offset=a, count=(b - a) // 2).float()
        elif dt == "BF16":  # bf16 is the high half of an f32
            raw = torch.frombuffer(data, dtype=torch.int16, offset=a, count=(b - a) // 2).to(torch.int32)
            t = ((raw & 0xFFFF) << 16).view(torch.float32)
        else:
            raise SystemExit(f"{path}: tensor {name} has dtype {dt}; only F32, F16 and BF16 are read")
        out[name] = t.clone().reshape(info["shape"])
    return out


# --- the model (float32, batched [B, T]) -----------------------------------------------------------
def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Model:
    """A Llama / Mixtral decoder over a dict of weights, with optional LoRA adapters and a KV cache."""

    def __init__(self, cfg, weights):
        self.cfg, self.W, self.lora = cfg, weights, {}
        self.fam = cfg["model_type"]
        if self.fam not in ("llama", "mixtral"):
            raise SystemExit(f"model_type {self.fam!r} is not supported here: use a llama or mixtral folder")
        self.H, self.KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.D = cfg.get("head_dim") or cfg["hidden_size"] // self.H
        self.eps, self.L = cfg["rms_norm_eps"], cfg["num_hidden_layers"]
        self.head = "model.embed_tokens.weight" if cfg.get("tie_word_embeddings") else "lm_head.weight"
        n = max(cfg.get("max_position_embeddings", 0), P + DECODE + 1, T_TRAIN)
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, self.D, 2, dtype=torch.int64).float() / self.D))
        freqs = torch.outer(torch.arange(n, dtype=torch.int64).float(), inv)  # [n, D/2]
        emb = torch.cat((freqs, freqs), dim=-1)  # [n, D]
        self.cos, self.sin = emb.cos(), emb.sin()

    def add_lora(self, gen):
        """Freezes the base and adds A [r, in] (kaiming-uniform, a = sqrt 5) and B [out, r] (zeros)."""
        for w in self.W.values():
            w.requires_grad_(False)
        for name, w in self.W.items():
            if name.endswith(".weight") and name.split(".")[-2] in LORA_TARGETS:
                A = torch.empty(LORA_R, w.shape[1])
                bound = 1.0 / math.sqrt(w.shape[1])  # kaiming_uniform_(a=sqrt(5)) on [r, in]
                A.uniform_(-bound, bound, generator=gen)
                B = torch.zeros(w.shape[0], LORA_R)
                self.lora[name[: -len(".weight")]] = (A.requires_grad_(), B.requires_grad_())
        return [t for ab in self.lora.values() for t in ab]

    def linear(self, x, name):
        y = F.linear(x, self.W[name + ".weight"])
        if name in self.lora:
            A, B = self.lora[name]
            y = y + F.linear(F.linear(x, A), B) * (LORA_ALPHA / LORA_R)
        return y

    def swiglu(self, x, p, names):
        g, u, d = names
        return self.linear(F.silu(self.linear(x, p + g)) * self.linear(x, p + u), p + d)

    def attention(self, h, p, cache, i, pos0):
        B, T, _ = h.shape
        q = self.linear(h, p + "q_proj").view(B, T, self.H, self.D).transpose(1, 2)  # [B, H, T, D]
        k = self.linear(h, p + "k_proj").view(B, T, self.KV, self.D).transpose(1, 2)  # [B, KV, T, D]
        v = self.linear(h, p + "v_proj").view(B, T, self.KV, self.D).transpose(1, 2)  # [B, KV, T, D]
        cos, sin = self.cos[pos0:pos0 + T], self.sin[pos0:pos0 + T]  # [T, D]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        n = pos0 + T
        if cache is not None:  # preallocated [B, KV, max, D] buffers
            cache["k"][i][:, :, pos0:n] = k
            cache["v"][i][:, :, pos0:n] = v
            k, v = cache["k"][i][:, :, :n], cache["v"][i][:, :, :n]  # [B, KV, n, D]
        rep = self.H // self.KV
        q = q.reshape(B, self.KV, rep * T, self.D)  # query heads grouped by their kv head
        scores = torch.matmul(q, k.transpose(2, 3)) * self.D ** -0.5  # [B, KV, rep*T, n]
        if T > 1:  # causal: query row r (position pos0 + r) sees keys 0..pos0 + r
            mask = torch.full((T, n), torch.finfo(torch.float32).min).triu(pos0 + 1)  # [T, n]
            scores = scores.view(B, self.KV, rep, T, n) + mask
        probs = F.softmax(scores, dim=-1).view(B, self.KV, rep * T, n)
        out = torch.matmul(probs, v).view(B, self.H, T, self.D).transpose(1, 2).reshape(B, T, self.H * self.D)
        return self.linear(out, p + "o_proj")

    def sparse_moe(self, h, p):
        cfg = self.cfg
        shape = h.shape
        h = h.reshape(-1, shape[-1])  # [N, C]
        E, K = cfg["num_local_experts"], cfg["num_experts_per_tok"]
        routing = F.softmax(self.linear(h, p + "gate"), dim=1)  # [N, E]
        routing, selected = torch.topk(routing, K, dim=-1)  # [N, K]
        routing = routing / routing.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(h)
        expert_mask = F.one_hot(selected, num_classes=E).permute(2, 1, 0)  # [E, K, N]
        for e in range(E):
            slot, tok = torch.where(expert_mask[e])
            if tok.numel() == 0:
                continue
            y = self.swiglu(h[tok], f"{p}experts.{e}.", ("w1", "w3", "w2"))  # w1 gate, w3 up, w2 down
            out = out.index_add(0, tok, y * routing[tok, slot, None])
        return out.view(shape)

    def forward(self, ids, cache=None):
        """ids [B, T] -> logits [B, T, V]; appends to `cache` (from new_cache) when given."""
        pos0 = cache["n"] if cache is not None else 0
        x = self.W["model.embed_tokens.weight"][ids]  # [B, T, C]
        for i in range(self.L):
            p = f"model.layers.{i}."
            h = rms_norm(x, self.W[p + "input_layernorm.weight"], self.eps)
            x = x + self.attention(h, p + "self_attn.", cache, i, pos0)
            h = rms_norm(x, self.W[p + "post_attention_layernorm.weight"], self.eps)
            if self.fam == "mixtral":
                x = x + self.sparse_moe(h, p + "block_sparse_moe.")
            else:
                x = x + self.swiglu(h, p + "mlp.", ("gate_proj", "up_proj", "down_proj"))
        if cache is not None:
            cache["n"] = pos0 + ids.shape[1]
        return F.linear(rms_norm(x, self.W["model.norm.weight"], self.eps), self.W[self.head])

    def new_cache(self, batch, length):
        z = lambda: torch.zeros(batch, self.KV, length, self.D)  # noqa: E731
        return {"n": 0, "k": [z() for _ in range(self.L)], "v": [z() for _ in range(self.L)]}


def load(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    path = os.path.join(folder, "model.safetensors")
    if not os.path.exists(path):
        raise SystemExit(f"{folder}: no model.safetensors (sharded checkpoints are not read here)")
    return cfg, read_safetensors(path)


# --- measurements ------------------------------------------------------------------------------------
def stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "repeats": len(values)}


def infer(model, vocab, repeats):
    prompt = torch.tensor([[(i * 7919 + 17) % vocab for i in range(P)]])  # [1, P]
    prefill, decode = [], []
    with torch.inference_mode():
        for r in range(repeats + WARMUP):  # the first WARMUP runs are warm-ups
            cache = model.new_cache(1, P + DECODE)
            t0 = time.perf_counter()
            logits = model.forward(prompt, cache)  # [1, P, V]
            t1 = time.perf_counter()
            ids = [int(torch.argmax(logits[0, -1]))]
            t2 = time.perf_counter()
            for _ in range(DECODE):
                step = model.forward(torch.tensor([[ids[-1]]]), cache)  # [1, 1, V]
                ids.append(int(torch.argmax(step[0, -1])))
            t3 = time.perf_counter()
            if r >= WARMUP:
                prefill.append(P / (t1 - t0))
                decode.append(DECODE / (t3 - t2))
    return stats(prefill), stats(decode), logits[0, -1].tolist(), ids


def train(cfg, weights, vocab, lora, steps):
    W = {n: w.clone().requires_grad_(not lora) for n, w in weights.items()}
    model = Model(cfg, W)
    params = model.add_lora(torch.Generator().manual_seed(0)) if lora else list(W.values())
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    rates, losses = [], []
    for s in range(TRAIN_WARMUP + steps):  # warm-up steps first
        ids = torch.tensor([[((s * BATCH + b) * 131 + i * 7919) % vocab for i in range(T_TRAIN + 1)]
                            for b in range(BATCH)])  # [B, T + 1]
        t0 = time.perf_counter()
        logits = model.forward(ids[:, :-1])  # [B, T, V]
        loss = F.cross_entropy(logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        losses.append(loss.item())
        if s >= TRAIN_WARMUP:
            rates.append(BATCH * T_TRAIN / dt)
    out = stats(rates)
    out["overall"] = len(rates) * BATCH * T_TRAIN / sum(BATCH * T_TRAIN / r for r in rates)
    out["losses"] = losses
    return out


def env_info(threads):
    blas = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.lower() and "/" in line})
    shown = torch.__config__.show()
    return {
        "version": torch.__version__,
        "blas_config": [m for m in re.findall(r"[A-Z_]*(?:BLAS|LAPACK)[A-Za-z_]*=[^,\s]*", shown)] +
                       [ln.strip() for ln in shown.splitlines() if "LAPACK is" in ln or "BLAS is" in ln],
        "torch_threads": torch.get_num_threads(),
        "requested_threads": threads,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "blas_libraries_mapped": [os.path.realpath(p) for p in blas],
    }


def fmt(s):
    return f"{s['median']:9.1f} ({s['min']:.1f}-{s['max']:.1f})" if s else "        -"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True, help="HF checkpoint folder (repeatable)")
    ap.add_argument("--threads", type=int, required=True, help="BLAS threads (must equal OPENBLAS_NUM_THREADS)")
    ap.add_argument("--json", required=True, help="where to write the results")
    ap.add_argument("--quick", action="store_true", help="3 timed training steps, fewer repeats, no MoE training")
    args = ap.parse_args()
    env = os.environ.get("OPENBLAS_NUM_THREADS")
    if env != str(args.threads):
        raise SystemExit(f"OPENBLAS_NUM_THREADS is {env!r} but --threads is {args.threads}: "
                         f"run with OPENBLAS_NUM_THREADS={args.threads} set, so the BLAS uses that many threads")
    torch.set_num_threads(1)
    info = env_info(args.threads)
    print(f"torch {info['version']}, torch threads {info['torch_threads']}, OPENBLAS_NUM_THREADS={env}, "
          f"BLAS mapped: {', '.join(info['blas_libraries_mapped']) or 'none found'}")
    repeats, steps = (3, 3) if args.quick else (5, 8)
    results = {}
    for folder in args.model:
        name = os.path.basename(os.path.normpath(folder))
        cfg, weights = load(folder)
        vocab = cfg["vocab_size"]
        model = Model(cfg, weights)
        pre, dec, last, ids = infer(model, vocab, repeats)
        r = {"model_type": cfg["model_type"], "prefill_tokens_per_s": pre, "decode_tokens_per_s": dec,
             "train_full_tokens_per_s": None, "train_lora_tokens_per_s": None,
             "prompt_length": P, "decode_steps": DECODE, "train_tokens": T_TRAIN, "train_batch": BATCH,
             "last_logits": last, "greedy_ids": ids}
        if cfg["model_type"] != "mixtral" or not args.quick:
            r["train_full_tokens_per_s"] = train(cfg, weights, vocab, lora=False, steps=steps)
            r["train_lora_tokens_per_s"] = train(cfg, weights, vocab, lora=True, steps=steps)
        results[name] = r
    out = {"torch": info, "quick": args.quick, "models": results}
    tmp = args.json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f)
    os.replace(tmp, args.json)
    print(f"\n{'model':16s} {'prefill tok/s':>24s} {'decode tok/s':>24s} {'train full tok/s':>24s} "
          f"{'train LoRA tok/s':>24s}   (median (min-max))")
    for name, r in results.items():
        print(f"{name:16s} {fmt(r['prefill_tokens_per_s']):>24s} {fmt(r['decode_tokens_per_s']):>24s} "
              f"{fmt(r['train_full_tokens_per_s']):>24s} {fmt(r['train_lora_tokens_per_s']):>24s}")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
