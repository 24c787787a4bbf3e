/**
 * Compiled-pipeline cache for WGSL kernels, keyed by kernel name, entry point and
 * `override` constants. Compilation errors are captured with an error scope and
 * surface as {@link KernelCompileError} at the next flush or readback.
 * @module
 */
import { KernelCompileError } from "../errors.ts";

/** A WGSL kernel: its source and the entry point to run. */
export interface KernelSpec {
  /** Name for caches, labels and errors, e.g. `"matmul"`. */
  readonly name: string;
  /** WGSL source (imported from `kernels/NAME.wgsl`). */
  readonly code: string;
  /** Entry point; defaults to `"main"`. */
  readonly entryPoint?: string;
}

/** `override` constants for one pipeline, e.g. `{ WG: 64 }`. */
export type KernelConstants = Readonly<Record<string, number>>;

/** Caches shader modules and compute pipelines for one `GPUDevice`. */
export class PipelineCache {
  #device: GPUDevice;
  #modules = new Map<string, GPUShaderModule>();
  #pipelines = new Map<string, GPUComputePipeline>();
  #pending: Promise<KernelCompileError | null>[] = [];

  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** Number of compiled pipelines. */
  get size(): number {
    return this.#pipelines.size;
  }

  /** Returns the pipeline for `spec` with `constants`, compiling it on first use. */
  get(spec: KernelSpec, constants: KernelConstants = {}): GPUComputePipeline {
    const entryPoint = spec.entryPoint ?? "main";
    const key = `${spec.name}:${entryPoint}:${JSON.stringify(constants)}`;
    let pipeline = this.#pipelines.get(key);
    if (pipeline) return pipeline;
    this.#device.pushErrorScope("validation");
    let module = this.#modules.get(spec.name);
    if (!module) {
      module = this.#device.createShaderModule({ label: spec.name, code: spec.code });
      this.#modules.set(spec.name, module);
    }
    pipeline = this.#device.createComputePipeline({
      label: `${spec.name}.${entryPoint}`,
      layout: "auto",
      compute: { module, entryPoint, constants: constants as Record<string, number> },
    });
    this.#pending.push(
      this.#device.popErrorScope().then((err) =>
        err
          ? new KernelCompileError(
            spec.name,
            `Cannot compile kernel "${spec.name}" (entry point "${entryPoint}", constants ${
              JSON.stringify(constants)
            }): ${err.message}`,
          )
          : null
      ),
    );
    this.#pipelines.set(key, pipeline);
    return pipeline;
  }

  /** Resolves the error scopes of pipelines compiled since the last check; throws the first failure. */
  async check(): Promise<void> {
    if (this.#pending.length === 0) return;
    const pending = this.#pending;
    this.#pending = [];
    const errors = (await Promise.all(pending)).filter((e) => e !== null);
    if (errors.length > 0) {
      // Drop the broken pipelines so a fixed kernel can be retried under the same name.
      for (const e of errors) {
        for (const key of [...this.#pipelines.keys()]) {
          if (key.startsWith(`${e!.kernel}:`)) this.#pipelines.delete(key);
        }
        this.#modules.delete(e!.kernel);
      }
      throw errors[0];
    }
  }
}
