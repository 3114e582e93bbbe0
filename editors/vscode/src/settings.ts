// VS Code settings → the server's configuration object (`initializationOptions` and
// `workspace/didChangeConfiguration`'s `settings.tandem`). Pure: no vscode import.
//
// Only values the user actually set are sent, never the defaults: the editor's settings are a
// higher layer than the user's `~/.config/tandem/config.toml`, and sending defaults would
// override it (docs/configuration.md, "Where configuration comes from").

/** Categories of `contributes.configuration` generated from the server's schema. */
export const SERVER_CATEGORY_PREFIX = "tandem.server";

/** Settings the extension itself reads; never sent to the server. */
export const EXTENSION_ONLY_KEYS = ["serverPath", "trace.server"] as const;

export interface SettingKey {
  /** Dotted key below `tandem.`, e.g. `backend.kind`. */
  key: string;
  /** `machine`-scoped: only the user's own (global) settings count, never the workspace's. */
  machine: boolean;
}

interface Category {
  id?: string;
  properties?: Record<string, { scope?: string }>;
}

/** The server's setting keys, read from the extension's package.json. */
export function serverSettingKeys(packageJson: unknown): SettingKey[] {
  const contributes = (packageJson as { contributes?: { configuration?: Category | Category[] } }).contributes;
  const raw = contributes?.configuration ?? [];
  const categories = Array.isArray(raw) ? raw : [raw];
  const keys: SettingKey[] = [];
  for (const c of categories) {
    if (!String(c.id ?? "").startsWith(SERVER_CATEGORY_PREFIX)) continue;
    for (const [full, schema] of Object.entries(c.properties ?? {})) {
      if (!full.startsWith("tandem.")) continue;
      const key = full.slice("tandem.".length);
      if ((EXTENSION_ONLY_KEYS as readonly string[]).includes(key)) continue;
      keys.push({ key, machine: schema.scope === "machine" || schema.scope === "application" });
    }
  }
  return keys;
}

/** The parts of `WorkspaceConfiguration.inspect()` used here. */
export interface Inspected {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/**
 * The value the user set, or undefined when only the default applies. Machine-scoped keys come
 * from the user's settings only: a workspace's `.vscode/settings.json` arrives with cloned code
 * and must not redirect it (the same rule the server applies to `tandem.toml`).
 */
export function explicitValue(inspected: Inspected | undefined, machine: boolean): unknown {
  if (inspected === undefined) return undefined;
  if (machine) return inspected.globalValue;
  if (inspected.workspaceFolderValue !== undefined) return inspected.workspaceFolderValue;
  if (inspected.workspaceValue !== undefined) return inspected.workspaceValue;
  return inspected.globalValue;
}

/** The nested configuration object for the server, from the values the user set. */
export function serverSettings(
  keys: readonly SettingKey[],
  inspect: (key: string) => Inspected | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, machine } of keys) {
    const value = explicitValue(inspect(key), machine);
    if (value === undefined) continue;
    const parts = key.split(".");
    let node = out;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      if (typeof next !== "object" || next === null || Array.isArray(next)) node[part] = {};
      node = node[part] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = value;
  }
  return out;
}

/** `workspace/didChangeConfiguration` params for the same object. */
export function didChangeConfigurationParams(settings: Record<string, unknown>): { settings: { tandem: Record<string, unknown> } } {
  return { settings: { tandem: settings } };
}

/** Where to write `tandem.completion.enabled`: where the effective value comes from. */
export function enabledTarget(inspected: Inspected | undefined): "global" | "workspace" | "workspaceFolder" {
  if (inspected?.workspaceFolderValue !== undefined) return "workspaceFolder";
  if (inspected?.workspaceValue !== undefined) return "workspace";
  return "global";
}

/** The keys the user set (those `serverSettings` sends). */
export function setKeys(keys: readonly SettingKey[], inspect: (key: string) => Inspected | undefined): string[] {
  return keys.filter(({ key, machine }) => explicitValue(inspect(key), machine) !== undefined).map((k) => k.key);
}

/**
 * Keys sent in `initializationOptions` that the user has since unset. The server keeps the
 * `initializationOptions` layer for its whole life (a `didChangeConfiguration` replaces only the
 * layer above it), so taking such a key back needs a restart.
 */
export function unsetSinceStart(sentAtStart: readonly string[], setNow: readonly string[]): string[] {
  return sentAtStart.filter((k) => !setNow.includes(k));
}
