/**
 * README blocks of the offload benchmark (`ferry floe bench --json`, written by `deno task bench:floe`):
 * the systems table per policy and the line that says where and how it was measured.
 * @module
 */
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
    const [od, fl] = [by("ondemand"), by("floe")];
    const ratio = od && fl
      ? ` floe moves ${(od.bytes_per_token / fl.bytes_per_token).toFixed(1)}× fewer bytes per token than ` +
        `ondemand and decodes ${(fl.decode_tokens_per_s / od.decode_tokens_per_s).toFixed(2)}× as fast.`
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
