/**
 * `ferry quantize`: quantizes one 2-D tensor of a safetensors file (RTN, HQQ or NF4) and writes the
 * dequantized weight as float32 tensor `dequant` of the same shape, with the stored bits per
 * parameter (metadata included) and the relative error in the file's metadata, so other
 * implementations can be checked against Ferry's.
 * @module
 */
import { writeSafetensors } from "../io/safetensors.ts";
import { relativeError } from "../compressors/analysis/errors.ts";
import { getQuantizer, listQuantizers, quantize, quantizedToHost } from "../compressors/quant/quantize.ts";
import { dequantizeRef } from "../ops/dequantize_ref.ts";
import { bitsPerParam, disposeQuantized, type QuantBits } from "../tensor/quantized_tensor.ts";
import { Tensor } from "../tensor/tensor.ts";
import {
  noPositionals,
  openDevice,
  parseBackend,
  parseChoice,
  parseFlags,
  parseInteger,
  required,
  str,
  UsageError,
} from "./_common.ts";
import { checkOut, makeOutFolder } from "./_out.ts";
import { readMatrix } from "./_matrix.ts";

export const QUANTIZE_USAGE =
  `  quantize             quantize one 2-D tensor; write its dequantized form as float32 "dequant"
      --method M           rtn | hqq | nf4
      --bits B             2 | 3 | 4 | 8 (nf4: 4, the default for it)
      --group-size G       elements per group (default 64; must divide the grouped dimension)
      --axis A             1: groups along a row (default), 0: along a column (nf4: 1 only)
      --double-quant       nf4: quantise the absmax values too (bitsandbytes' double quantisation)
      --in FILE            .safetensors file holding the tensor
      --tensor NAME        the tensor's name in FILE
      --out FILE           .safetensors to write ("dequant" F32; metadata bits_per_param, ...)
      --backend B          auto | webgpu | cpu (default auto)`;

const FLAGS = {
  method: { type: "string" },
  bits: { type: "string" },
  "group-size": { type: "string" },
  axis: { type: "string" },
  "double-quant": { type: "boolean" },
  in: { type: "string" },
  tensor: { type: "string" },
  out: { type: "string" },
  backend: { type: "string" },
} as const;

/** Runs `ferry quantize`. */
export async function quantizeCommand(args: string[]): Promise<number> {
  const cmd = "quantize";
  const { values, positionals } = parseFlags(cmd, args, FLAGS);
  if (values.help) {
    console.log(
      `usage: deno task ferry quantize --method M --bits B --in FILE --tensor NAME --out FILE\n\n${QUANTIZE_USAGE}`,
    );
    return 0;
  }
  noPositionals(cmd, positionals);
  const methods = listQuantizers(); // the registered quantizers
  const method = required(cmd, values, "method", methods.join("|"));
  if (!methods.includes(method)) {
    throw new UsageError(`${cmd}: --method must be one of ${methods.join(", ")}: received ${method}`);
  }
  const only = getQuantizer(method).bits; // a method of one width (nf4) needs no --bits
  const bitsText = str(values, "bits") ?? (only.length === 1 ? String(only[0]) : undefined);
  if (bitsText === undefined) throw new UsageError(`${cmd}: --bits B is required (2, 3, 4 or 8)`);
  const bits = Number(parseChoice(cmd, "bits", bitsText, ["2", "3", "4", "8"])) as QuantBits;
  const groupSize = parseInteger(cmd, "group-size", str(values, "group-size") ?? "64", 1);
  const axis = Number(parseChoice(cmd, "axis", str(values, "axis") ?? "1", ["0", "1"])) as 0 | 1;
  const doubleQuant = values["double-quant"] === true;
  if (doubleQuant && method !== "nf4") {
    throw new UsageError(`${cmd}: --double-quant applies to --method nf4 only`);
  }
  const input = required(cmd, values, "in", "FILE");
  const name = required(cmd, values, "tensor", "NAME");
  const out = required(cmd, values, "out", "FILE");
  const backend = parseBackend(cmd, values);
  await checkOut(cmd, out, "file", [{ flag: "--in", path: input }]);
  const w = await readMatrix(cmd, input, name);

  const device = await openDevice(backend);
  try {
    using t = Tensor.fromArray<"f32">(device, w.data, w.shape, { category: "weights" }); // [rows, cols]
    let q;
    try {
      q = await quantize(t, { method, bits, groupSize, axis, ...(doubleQuant ? { doubleQuant } : {}) });
    } catch (err) {
      if (err instanceof RangeError || err instanceof TypeError) {
        throw new UsageError(`${cmd}: ${err.message}`);
      }
      throw err;
    }
    try {
      const dequant = dequantizeRef(await quantizedToHost(q)); // [rows, cols]
      const bpp = bitsPerParam(q);
      const rel = relativeError(w.data, dequant);
      await makeOutFolder(out);
      await writeSafetensors(out, { dequant: { dtype: "F32", shape: w.shape, data: dequant } }, {
        format: "pt",
        source: `${input}:${name}`,
        method,
        bits: String(q.bits),
        group_size: String(groupSize),
        axis: String(axis),
        double_quant: String(doubleQuant),
        bits_per_param: String(bpp.total),
        bits_per_param_codes: String(bpp.codes),
        relative_error: String(rel),
        backend: device.info.backend,
      });
      console.log(
        `wrote ${out}: dequant F32 [${w.shape}] from ${method} ${q.bits}-bit g${groupSize} axis ${axis}` +
          `${doubleQuant ? " +double-quant" : ""}: ${bpp.total.toFixed(3)} bits/param with metadata ` +
          `(${bpp.codes.toFixed(3)} codes), relative error ${rel.toExponential(3)} (${device.info.backend})`,
      );
    } finally {
      disposeQuantized(q);
    }
  } finally {
    device.destroy();
  }
  return 0;
}
