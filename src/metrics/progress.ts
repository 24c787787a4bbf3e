/**
 * {@linkcode ProgressBar}: a training progress line, step/total, loss, lr, tokens/s and ETA, shown
 * the way the output allows:
 *
 * - `"tty"`: one line redrawn in place with `\r` (throttled to `intervalMs`), on stderr;
 * - `"lines"`: a plain line every `every` steps, for logs and CI where `\r` makes a mess;
 * - `"jupyter"`: an HTML `<progress>` bar in the cell, updated in place through Deno's
 *   `Deno.jupyter.display(bundle, { raw: true, display_id, update })`;
 * - `"off"`: nothing (tests, batch jobs).
 *
 * `"auto"` (the default) picks `"jupyter"` inside Deno's kernel, `"tty"` when stderr is a
 * terminal, else `"lines"`.
 *
 * @example Plain lines into a string
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProgressBar } from "./progress.ts";
 * let out = "";
 * let t = 0;
 * const bar = new ProgressBar({ total: 4, mode: "lines", every: 2, write: (s) => out += s, now: () => t });
 * bar.start();
 * for (let step = 1; step <= 4; step++) {
 *   t += 500; // half a second per step
 *   bar.update(step, { loss: 3 / step, lr: 1e-3, tokensPerS: 2048 });
 * }
 * bar.finish();
 * assert.match(out, /^train 2\/4 .*loss 1\.5000 .*lr 1\.00e-3 .*2\.0k tok\/s .*eta 0:01$/m);
 * assert.equal(out.trim().split("\n").length, 2); // steps 2 and 4
 * ```
 * @module
 */
import { isTerminal as stderrIsTerminal, writeAllSync } from "../host/runtime.ts";

/** Where a {@linkcode ProgressBar} draws; see the module doc. */
export type ProgressMode = "auto" | "tty" | "lines" | "jupyter" | "off";

/** The numbers one update shows; all optional. */
export interface ProgressFields {
  loss?: number;
  lr?: number;
  tokensPerS?: number;
  /** More `key value` pairs, shown after the standard fields. */
  extra?: Record<string, number | string>;
}

/** `Deno.jupyter.display`'s shape (raw mime bundles). */
export type JupyterDisplayFn = (
  bundle: Record<string, string>,
  options: { raw: true; display_id?: string; update?: boolean },
) => unknown;

/** Options of {@linkcode ProgressBar}. */
export interface ProgressBarOptions {
  /** The step count at completion. */
  total: number;
  /** Shown first (default `"train"`). */
  label?: string;
  /** Default `"auto"`. */
  mode?: ProgressMode;
  /** `"lines"`: print every this many steps (and the last one). Default `max(1, total / 20)`. */
  every?: number;
  /** `"tty"` / `"jupyter"`: least time between redraws in ms. Default 100 / 500. */
  intervalMs?: number;
  /** Where text goes. Default: stderr (stdout in Jupyter, for `message`). */
  write?: (text: string) => void;
  /** `"jupyter"`: the display function. Default `Deno.jupyter.display`. */
  display?: JupyterDisplayFn;
  /** Clock in milliseconds (default `performance.now`). */
  now?: () => number;
}

/** A progress line for a loop of `total` steps; see the module doc. */
export class ProgressBar {
  /** The resolved mode (never `"auto"`). */
  readonly mode: Exclude<ProgressMode, "auto">;
  readonly total: number;
  readonly label: string;
  #every: number;
  #interval: number;
  #write: (text: string) => void;
  #display: JupyterDisplayFn | undefined;
  #now: () => number;
  #displayId = `ferry-progress-${crypto.randomUUID().slice(0, 8)}`;
  #shown = false;
  #startStep = 0;
  #startTime = 0;
  #lastDraw = -Infinity;
  #step = 0;
  #fields: ProgressFields = {};

  /** @throws {RangeError} When `total` is not a non-negative integer. */
  constructor(options: ProgressBarOptions) {
    if (!Number.isInteger(options.total) || options.total < 0) {
      throw new RangeError(
        `Cannot create ProgressBar: total must be a non-negative integer: received ${options.total}`,
      );
    }
    this.total = options.total;
    this.label = options.label ?? "train";
    const display = options.display ?? jupyterDisplay();
    const requested = options.mode ?? "auto";
    this.mode = requested !== "auto" ? requested : display ? "jupyter" : isTerminal() ? "tty" : "lines";
    this.#display = display;
    if (this.mode === "jupyter" && !display) this.mode = "lines"; // not in a kernel: fall back
    this.#every = Math.max(1, Math.floor(options.every ?? this.total / 20));
    this.#interval = options.intervalMs ?? (this.mode === "jupyter" ? 500 : 100);
    this.#write = options.write ??
      (this.mode === "jupyter" ? (s) => console.log(s.replace(/\n$/, "")) : writeStderr);
    this.#now = options.now ?? (() => performance.now());
  }

  /** Starts the clock at `step` (a resumed run starts past 0; ETA counts this session's rate). */
  start(step = 0): void {
    this.#startStep = step;
    this.#step = step;
    this.#startTime = this.#now();
  }

  /** Records progress; draws when the mode's cadence says so. */
  update(step: number, fields: ProgressFields = {}): void {
    this.#step = step;
    this.#fields = fields;
    const now = this.#now();
    const last = step >= this.total;
    switch (this.mode) {
      case "off":
        return;
      case "lines":
        if (step % this.#every === 0 || last) this.#write(`${this.text()}\n`);
        return;
      case "tty":
        if (last || now - this.#lastDraw >= this.#interval) {
          this.#lastDraw = now;
          this.#write(`\r${this.text()}\x1b[K`);
        }
        return;
      case "jupyter":
        if (last || now - this.#lastDraw >= this.#interval) {
          this.#lastDraw = now;
          this.#show();
        }
    }
  }

  /** Prints a line of its own (an evaluation result) without breaking the bar. */
  message(text: string): void {
    if (this.mode === "off") return;
    if (this.mode === "tty") this.#write(`\r\x1b[K${text}\n${this.text()}\x1b[K`);
    else this.#write(`${text}\n`);
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    if (this.mode === "tty") this.#write(`\r${this.text()}\x1b[K\n`);
    else if (this.mode === "jupyter") this.#show();
  }

  /** The current status text, e.g. `train 120/1000 [##····] loss 2.3412 lr 3.00e-4 1.2k tok/s 0:15 eta 1:50`. */
  text(): string {
    const { loss, lr, tokensPerS, extra } = this.#fields;
    const parts = [`${this.label} ${this.#step}/${this.total}`];
    if (this.mode === "tty") parts.push(bar(this.#step / Math.max(1, this.total), 20));
    if (loss !== undefined) parts.push(`loss ${loss.toFixed(4)}`);
    if (lr !== undefined) parts.push(`lr ${lr.toExponential(2)}`);
    if (tokensPerS !== undefined) parts.push(`${compact(tokensPerS)} tok/s`);
    for (const [k, v] of Object.entries(extra ?? {})) {
      parts.push(`${k} ${typeof v === "number" ? +v.toPrecision(5) : v}`);
    }
    const elapsed = (this.#now() - this.#startTime) / 1000;
    const done = this.#step - this.#startStep;
    parts.push(clock(elapsed));
    if (done > 0 && this.#step < this.total) {
      parts.push(`eta ${clock((this.total - this.#step) * elapsed / done)}`);
    }
    return parts.join(" ");
  }

  #show(): void {
    const pct = (100 * this.#step / Math.max(1, this.total)).toFixed(1);
    const text = this.text();
    const html = `<div style="font-family:monospace;white-space:pre">` +
      `<progress value="${this.#step}" max="${this.total}" style="width:18em;vertical-align:middle"></progress> ` +
      `${pct}% ${escapeHtml(text)}</div>`;
    const options = {
      raw: true as const,
      display_id: this.#displayId,
      ...(this.#shown ? { update: true } : {}),
    };
    this.#shown = true;
    try {
      Promise.resolve(this.#display!({ "text/plain": text, "text/html": html }, options)).catch(() => {});
    } catch {
      // a display failure must never stop training
    }
  }
}

/** `Deno.jupyter.display` inside Deno's kernel, else undefined (reading `Deno.jupyter` outside it throws). */
function jupyterDisplay(): JupyterDisplayFn | undefined {
  try {
    const j = (Deno as unknown as { jupyter?: { display?: JupyterDisplayFn } }).jupyter;
    return typeof j?.display === "function" ? j.display.bind(j) : undefined;
  } catch {
    return undefined;
  }
}

function isTerminal(): boolean {
  try {
    return stderrIsTerminal("stderr");
  } catch {
    return false;
  }
}

function writeStderr(text: string): void {
  writeAllSync("stderr", new TextEncoder().encode(text));
}

function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${"#".repeat(filled)}${"·".repeat(width - filled)}]`;
}

/** 1234 → `1.2k`, 2.5e6 → `2.5M`. */
function compact(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x >= 1e6) return `${(x / 1e6).toFixed(1)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(x >= 100 ? 0 : 1);
}

/** Seconds as `m:ss` or `h:mm:ss`. */
function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
