/**
 * Ferry: run and adapt language models bigger than the accelerator's memory, on WebGPU
 * (with a plain-TypeScript CPU reference backend).
 *
 * This module is the public surface that notebooks, examples and user code import.
 *
 * @example A tour
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice, matmul, MetricLog, rmsNorm, Tensor } from "./mod.ts";
 * const device = await createDevice({ backend: "cpu", budgetBytes: 16 << 20 });
 * const x = Tensor.fromArray(device, new Float32Array(2 * 4).fill(1), [2, 4]); // [T, C]
 * const w = Tensor.fromArray(device, new Float32Array(3 * 4).fill(0.5), [3, 4], { category: "weights" }); // [out, in]
 * const g = Tensor.fromArray(device, new Float32Array(4).fill(1), [4]);
 * const y = matmul(rmsNorm(x, g, 1e-6), w, { transB: true }); // [T, C] x [out, C]ᵀ -> [T, out]
 * assert.ok(Math.abs((await y.toArray())[0] - 2) < 1e-5);
 * const log = new MetricLog({ runId: "tour" }).log({ step: 0, mem_peak_bytes: device.ledger.peak() });
 * assert.ok(log.table().numRows === 1);
 * ```
 * @module
 */

// The host runtime (files, process, terminal on Deno and Bun alike), namespaced
export * as runtime from "./host/runtime.ts";

// Errors and configs
export * from "./errors.ts";
export * from "./config.ts";

// Devices and memory
export {
  createDevice,
  type CreateDeviceOptions,
  hasWebGpu,
  OPTIONAL_FEATURES,
} from "./device/create_device.ts";
export type {
  AllocOptions,
  BackendKind,
  Device,
  DeviceInfo,
  Storage,
  TransferStats,
} from "./device/device.ts";
export { CpuDevice } from "./device/cpu_device.ts";
export { type DispatchArgs, WebGpuDevice } from "./device/webgpu_device.ts";
export type { KernelConstants, KernelSpec } from "./device/pipelines.ts";
export * from "./device/ledger.ts";

// Tensors
export * from "./tensor/dtype.ts";
export { checkShape, type Shape, shapeSize, Tensor, type TensorOptions } from "./tensor/tensor.ts";
export * from "./tensor/random.ts";
export * from "./tensor/quantized_tensor.ts";
export * from "./tensor/codebooks.ts";

// Ops (each with its TypeScript reference)
export * from "./ops/elementwise.ts";
export * from "./ops/matmul.ts";
export * from "./ops/gemv.ts";
export * from "./ops/rmsnorm.ts";
export * from "./ops/softmax.ts";
export * from "./ops/rope.ts";
export * from "./ops/embedding.ts";
export * from "./ops/cast.ts";
export * from "./ops/reduce.ts";
export * from "./ops/attention.ts";
export * from "./ops/kv_cache.ts";
export * from "./ops/topk.ts";
export * from "./ops/gather.ts";
export * from "./ops/gather_matmul.ts";
export * from "./ops/transpose.ts";
export * from "./ops/cross_entropy.ts";
export * from "./ops/rmsnorm_backward.ts";
export * from "./ops/softmax_backward.ts";
export * from "./ops/rope_backward.ts";
export * from "./ops/attention_backward.ts";
export { permute3 } from "./ops/permute.ts";
export * from "./ops/adamw.ts";
export * from "./ops/slice.ts";
export * from "./ops/dequantize_ref.ts";
export * from "./ops/dequantize.ts";
export * from "./ops/qgemv.ts";
export * from "./ops/qmatmul.ts";
export * from "./ops/sparse_expert.ts";
export * from "./ops/smooth_l1.ts";
// The kernel API for WGSL kernels outside src/ops/ (compressors, a researcher's own)
export {
  dispatchKernel,
  F16_WGSL,
  grid1d,
  type KernelLaunch,
  MAX_GROUPS,
  type ParamField,
  params,
} from "./ops/kernel.ts";

// Training: autograd (namespaced: its functions share names with the ops), optimisation, LoRA
export * as autograd from "./autograd/mod.ts";
export * from "./optim/mod.ts";
export * from "./lora/lora_config.ts";
export * from "./lora/targets.ts";
export * from "./lora/peft_io.ts";
export * from "./lora/train_task.ts";
export * from "./lora/trainer_config.ts";
export * from "./lora/trainer.ts";
export * from "./lora/accumulate_gradients.ts";
export * from "./lora/evaluate.ts";
export * from "./lora/data_order.ts";
export * from "./lora/checkpoint.ts";
export * from "./lora/causal_lm_task.ts";
export * from "./lora/lora_init.ts";
export * from "./lora/hf_names.ts";
export * from "./lora/lora_model.ts";
export * from "./lora/merge.ts";
export * from "./lora/adapter_io.ts";

// LoRAM: train small, infer large
export * from "./loram/mod.ts";

// Formats
export {
  DTYPE_BYTES as SAFETENSORS_DTYPE_BYTES,
  layoutSafetensors,
  type ParsedSafetensors,
  parseSafetensors,
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
  SafetensorsFile,
  type SafetensorsTensor,
  serializeSafetensors,
  type TensorData,
  type TensorInfo,
  type TensorInput,
  type TensorsInput,
  tensorToF32,
  writeSafetensors,
} from "./io/safetensors.ts";
export * from "./io/sharded.ts";
export * from "./io/atomic.ts";
export * from "./io/dtype_convert.ts";

// Metrics and plots
export * from "./metrics/mod.ts";
export * from "./plot/mod.ts";

// Tokenizers and data
export { type DecodeOptions, type EncodeOptions, Tokenizer } from "./io/tokenizer.ts";
export * from "./data/mod.ts";

// Models
export * from "./nn/module.ts";
export * from "./nn/linear.ts";
export * from "./nn/linear_like.ts";
export * from "./nn/quantized_linear.ts";
export * from "./nn/embedding.ts";
export * from "./nn/rms_norm.ts";
export * from "./nn/attention.ts";
export * from "./nn/swiglu.ts";
export * from "./nn/experts.ts";
export * from "./nn/sparse_moe.ts";
export * from "./nn/load_balancing.ts";
export * from "./nn/decoder_layer.ts";
export * from "./models/config.ts";
export * from "./models/weights.ts";
export * from "./models/model_cache.ts";
export * from "./models/causal_lm.ts";
export * from "./models/load.ts";
export * from "./models/save.ts";
export * from "./models/generate.ts";
export * from "./models/perplexity.ts";
export * from "./models/random.ts";
export * from "./models/embedded.ts";

// Compressors: quantizers, pruners, low-rank, sweeps
export * from "./compressors/mod.ts";

// FloE: compressed sparse experts, calibration
export * from "./floe/mod.ts";
export * from "./predictors/mod.ts";

// Offloading: the FloE runtime and its baselines under a device budget
export * from "./moe/mod.ts";
