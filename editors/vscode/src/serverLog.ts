// The server's stderr → the output channel's log levels. Tandem logs with tracing's format
// (`2026-11-24T00:36:19.529650Z  INFO tandem_server::handlers::initialize: initialized …`);
// vscode-languageclient would log every stderr line as an error. Pure: no vscode import.

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";

export interface LogLine {
  level: LogLevel;
  /** The line without the server's timestamp and level (the channel adds its own) and colours. */
  text: string;
}

const ANSI = /\x1b\[[0-9;]*m/g;
const TRACING = /^\S+\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s+(.*)$/;

/** One line of the server's stderr. Lines not in tracing's format (a panic) are errors. */
export function serverLogLine(line: string): LogLine {
  const plain = line.replace(ANSI, "");
  const m = TRACING.exec(plain);
  if (!m) return { level: "error", text: plain };
  return { level: m[1].toLowerCase() as LogLevel, text: m[2] };
}
