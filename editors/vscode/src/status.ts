// `tandem/status` (docs/protocol.md) → what the status bar shows. Pure: no vscode import.

/** The params of the server's `tandem/status` notification. */
export interface ServerStatus {
  state: string;
  backend?: string;
  model?: string;
  message?: string;
}

/** States the client knows before or without a server. */
export type ClientState = "starting" | "stopped" | "notFound";

export interface StatusView {
  text: string;
  tooltip: string;
  /** Background: `warning` and `error` map to the theme's status bar colours. */
  severity: "normal" | "warning" | "error";
}

function backendLine(s: ServerStatus): string | undefined {
  if (!s.backend) return undefined;
  return s.model ? `Backend: ${s.backend} (${s.model})` : `Backend: ${s.backend}`;
}

function lines(...parts: (string | undefined)[]): string {
  return parts.filter((p): p is string => p !== undefined && p !== "").join("\n");
}

/** The status bar label and tooltip for a server status (or a client-side state). */
export function statusView(status: ServerStatus | ClientState): StatusView {
  if (typeof status === "string") {
    switch (status) {
      case "starting":
        return { text: "$(loading~spin) Tandem", tooltip: "Tandem: starting the server", severity: "normal" };
      case "stopped":
        return {
          text: "$(debug-disconnect) Tandem: stopped",
          tooltip: "Tandem: the server is not running. Click for the logs; `Tandem: Restart Server` starts it again.",
          severity: "error",
        };
      case "notFound":
        return {
          text: "$(error) Tandem: no server",
          tooltip: "Tandem: the `tandem` executable was not found. Set `tandem.serverPath` or install it with `cargo install --path crates/tandem`.",
          severity: "error",
        };
    }
  }
  const s = status;
  const click = s.state === "disabled" ? "Click to enable completions" : "Click to disable completions";
  switch (s.state) {
    case "ready":
      return { text: "$(sparkle) Tandem", tooltip: lines("Tandem: ready", backendLine(s), click), severity: "normal" };
    case "busy":
      return {
        text: "$(loading~spin) Tandem: thinking",
        tooltip: lines("Tandem: computing a completion", backendLine(s), click),
        severity: "normal",
      };
    case "down":
      return {
        text: "$(warning) Tandem: backend down",
        tooltip: lines(s.message ?? "Tandem: the backend's last request failed", backendLine(s), click),
        severity: "warning",
      };
    case "disabled":
      return {
        text: "$(circle-slash) Tandem: off",
        tooltip: lines("Tandem: completions are disabled (`tandem.completion.enabled`)", backendLine(s), click),
        severity: "normal",
      };
    default:
      return { text: `Tandem: ${s.state}`, tooltip: lines(`Tandem: ${s.state}`, s.message, backendLine(s), click), severity: "normal" };
  }
}

/** Whether `params` looks like a `tandem/status` payload (anything else is ignored). */
export function isServerStatus(params: unknown): params is ServerStatus {
  return typeof params === "object" && params !== null && typeof (params as { state?: unknown }).state === "string";
}

/**
 * The value `tandem.completion.enabled` gets when the user clicks the status bar item: the
 * server's own state decides (completions may be off through the config file while the VS Code
 * setting is still `true`), the setting only when no status arrived yet.
 */
export function toggledEnabled(last: ServerStatus | undefined, settingEnabled: boolean): boolean {
  if (last === undefined) return !settingEnabled;
  return last.state === "disabled";
}
