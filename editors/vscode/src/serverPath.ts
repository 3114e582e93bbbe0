// Finds the `tandem` executable: `tandem.serverPath`, else a PATH lookup (no spawning).
// Pure apart from the injected `isExecutable`; `defaultIsExecutable` is the real check.

import * as fs from "node:fs";
import * as path from "node:path";

export const INSTALL_COMMAND = "cargo install --path crates/tandem";

export interface ResolveInput {
  /** `tandem.serverPath`, when set. */
  configured?: string | null;
  /** The PATH environment variable. */
  envPath?: string;
  /** PATHEXT, for Windows. */
  pathExt?: string;
  platform: NodeJS.Platform;
  homeDir?: string;
  isExecutable: (file: string) => boolean;
}

export type ResolveResult = { ok: true; path: string } | { ok: false; message: string };

function pathApi(platform: NodeJS.Platform): path.PlatformPath {
  return platform === "win32" ? path.win32 : path.posix;
}

/** The names to try for `name` in one directory: on Windows, with each PATHEXT extension. */
function candidates(name: string, input: ResolveInput): string[] {
  if (input.platform !== "win32") return [name];
  const exts = (input.pathExt || ".COM;.EXE;.BAT;.CMD").split(";").filter((e) => e !== "");
  const hasExt = exts.some((e) => name.toLowerCase().endsWith(e.toLowerCase()));
  return hasExt ? [name] : [...exts.map((e) => name + e.toLowerCase()), name];
}

/** `name` looked up in each PATH directory, in order; undefined when none has it. */
export function findOnPath(name: string, input: ResolveInput): string | undefined {
  const p = pathApi(input.platform);
  const dirs = (input.envPath ?? "").split(p.delimiter).filter((d) => d !== "");
  for (const dir of dirs) {
    for (const file of candidates(name, input)) {
      const full = p.join(dir, file);
      if (input.isExecutable(full)) return full;
    }
  }
  return undefined;
}

function expandHome(file: string, input: ResolveInput): string {
  if (input.homeDir && (file === "~" || file.startsWith("~/") || file.startsWith("~\\"))) {
    return pathApi(input.platform).join(input.homeDir, file.slice(1));
  }
  return file;
}

export function resolveServerPath(input: ResolveInput): ResolveResult {
  const configured = (input.configured ?? "").trim();
  if (configured !== "") {
    const file = expandHome(configured, input);
    const p = pathApi(input.platform);
    const isBareName = !file.includes("/") && !(input.platform === "win32" && file.includes("\\"));
    if (isBareName) {
      const found = findOnPath(file, input);
      if (found) return { ok: true, path: found };
    } else if (p.isAbsolute(file)) {
      for (const f of candidates(file, input)) if (input.isExecutable(f)) return { ok: true, path: f };
    }
    const why = !isBareName && !p.isAbsolute(file) ? " (use an absolute path)" : "";
    return {
      ok: false,
      message:
        `Tandem: \`tandem.serverPath\` is "${configured}", but no executable is there${why}. ` +
        `Fix the setting, or clear it to use \`tandem\` from PATH (install it with \`${INSTALL_COMMAND}\` from a Tandem checkout).`,
    };
  }
  const found = findOnPath("tandem", input);
  if (found) return { ok: true, path: found };
  return {
    ok: false,
    message:
      `Tandem: the \`tandem\` server was not found on PATH and \`tandem.serverPath\` is not set. ` +
      `Install it with \`${INSTALL_COMMAND}\` (from a Tandem checkout), or set \`tandem.serverPath\`.`,
  };
}

/** A regular file that this process may execute (on Windows: a regular file). */
export function defaultIsExecutable(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    if (process.platform === "win32") return true;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
