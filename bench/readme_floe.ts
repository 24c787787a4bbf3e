/**
 * README blocks of the offload benchmark (`ferry floe bench --json`, written by `deno task bench:floe`):
 * the systems table per policy and the line that says where and how it was measured.
 * @module
 */
import type { PlanRow } from "../src/moe/plans.ts";
import type { BenchResults } from "./readme.ts";

/** One policy's object as `ferry floe bench --json` writes it (the fields the README shows). */
interface PolicyRow {
  policy: string;
  fits: boolean;
  decode_tokens_per_s: number;
  bytes_per_token: number;
  reloads_per_token: number;
  expert_hit_rate: number;
  syncs_per_token: number;
  sync_ms_per_token: number;
  peak_device_bytes: number;
  budget_bytes: number;
  device: string;
  date: string;
  upload_gbps: number;
  sparsity: number;
  prompt_tokens: number;
  tokens: number;
  projected_tokens_per_s_rtx3090?: number;
}

const MiB = 2 ** 20;

/** The systems table of one `floe bench` run, with the command that reproduces it. */
export function renderFloeBench(command: string): (results: BenchResults) => string {
  return ({ rows }) => {
    const policies = rows as unknown as PolicyRow[];
    const first = policies[0];
    const line = (r: PolicyRow) =>
      r.fits === false
        ? `| ${r.policy} | does not fit | | | | | | |`
        : `| ${r.policy} | ${r.decode_tokens_per_s.toFixed(2)} | ${(r.bytes_per_token / 1e6).toFixed(2)} | ${
          r.reloads_per_token.toFixed(2)
        } | ${r.expert_hit_rate.toFixed(3)} | ${r.syncs_per_token.toFixed(1)} | ${
          r.sync_ms_per_token.toFixed(1)
        } | ${(r.peak_device_bytes / MiB).toFixed(1)} |`;
    const by = (p: string) => policies.find((r) => r.policy === p && r.fits !== false);
    const [od, ca, fl] = [by("ondemand"), by("cached"), by("floe")];
    const ratio = od && fl
      ? ` floe moves ${(od.bytes_per_token / fl.bytes_per_token).toFixed(1)}× fewer bytes per token than ` +
        `ondemand and decodes ${(fl.decode_tokens_per_s / od.decode_tokens_per_s).toFixed(2)}× as fast` +
        (ca
          ? ` (${(fl.decode_tokens_per_s / ca.decode_tokens_per_s).toFixed(2)}× the cached policy's rate).`
          : ".")
      : "";
    return [
      "| policy | decode tok/s | MB/token | reloads/token | hit rate | syncs/token | sync ms/token | peak MiB |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
      ...policies.map(line),
      "",
      `Measured ${first.date.slice(0, 10)} on ${first.device} (measured upload ${
        first.upload_gbps.toFixed(2)
      } ` +
      `GB/s), budget ${(first.budget_bytes / MiB).toFixed(1)} MiB, ${first.prompt_tokens} prompt + ` +
      `${first.tokens} decoded tokens, s = ${first.sparsity}, by \`${command}\`.${ratio}`,
    ].join("\n");
  };
}

/** One policy's smallest budget as `ferry floe bench --plan --json` writes it. */
type PlanJsonRow = PlanRow & { budget_bytes: number | null; date: string };

/** The smallest budget per policy (`--plan`) against the run's budget, with the command. */
export function renderFloePlan(command: string): (results: BenchResults) => string {
  return ({ rows }) => {
    const plans = rows as unknown as PlanJsonRow[];
    const first = plans[0];
    const pct = (b: number) => `${(100 * b / first.expert_f16_bytes).toFixed(1)}%`;
    const mib = (b: number) => (b / MiB).toFixed(1);
    const fits = (r: PlanJsonRow) =>
      first.budget_bytes === null ? "" : r.minimum_bytes <= first.budget_bytes ? "yes" : "no";
    return [
      "| policy | minimum MiB | % of f16 experts | weights | KV cache | activations | upload staging | setup scratch | policy's own | fits |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
      ...plans.map((r) =>
        `| ${r.policy} | ${mib(r.minimum_bytes)} | ${pct(r.minimum_bytes)} | ${mib(r.held_bytes)} | ${
          mib(r.kv_bytes)
        } | ${mib(r.activation_bytes)} | ${mib(r.transfer_bytes)} | ${mib(r.setup_bytes)} | ${
          mib(r.policy_bytes)
        } | ${fits(r)} |`
      ),
      "",
      `Planned ${
        first.date.slice(0, 10)
      } with ${first.weights_dtype} weights on the device, against a budget of ${
        first.budget_bytes === null ? "none" : `${mib(first.budget_bytes)} MiB (${pct(first.budget_bytes)})`
      }, by \`${command}\`. The setup scratch (quantizing, staging the resident experts) is freed before the ` +
      "first forward and shares the room of the activations and a step's upload staging.",
    ].join("\n");
  };
}
