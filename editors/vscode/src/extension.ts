// The VS Code side of Tandem: starts the server, lets vscode-languageclient wire
// `textDocument/inlineCompletion` (LSP 3.18, built into vscode-languageclient 10) and the
// server's code actions (light bulb, Ctrl+.), asks for Refine's instruction with an input box,
// shows `tandem/status` in the status bar and passes the `tandem.*` settings.

import * as os from "node:os";
import * as readline from "node:readline";
import type { Readable } from "node:stream";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";
import { OpenDocuments } from "./documentSync";
import { REFINE_COMMAND, REFINE_PLACEHOLDER, REFINE_PROMPT, refineArguments } from "./refine";
import { serverLogLine } from "./serverLog";
import { defaultIsExecutable, INSTALL_COMMAND, resolveServerPath } from "./serverPath";
import {
  didChangeConfigurationParams,
  enabledTarget,
  serverSettings,
  serverSettingKeys,
  setKeys,
  SettingKey,
  unsetSinceStart,
} from "./settings";
import { ClientState, isServerStatus, ServerStatus, statusView, toggledEnabled } from "./status";

let client: LanguageClient | undefined;
let lastStatus: ServerStatus | undefined;
let sentAtStart: string[] = [];
let keys: SettingKey[] = [];
let output: vscode.LogOutputChannel;
let statusItem: vscode.StatusBarItem;

function inspect(key: string) {
  return vscode.workspace.getConfiguration("tandem").inspect(key);
}

function currentSettings(): Record<string, unknown> {
  return serverSettings(keys, inspect);
}

/** Writes each line of `input` to the output channel at the level the server logged it. */
function pipeServerLog(input: Readable, channel: vscode.LogOutputChannel): void {
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false }).on("line", (line) => {
    const { level, text } = serverLogLine(line);
    channel[level](text);
  });
}

function showStatus(status: ServerStatus | ClientState): void {
  const view = statusView(status);
  statusItem.text = view.text;
  statusItem.tooltip = view.tooltip;
  statusItem.backgroundColor =
    view.severity === "normal" ? undefined : new vscode.ThemeColor(`statusBarItem.${view.severity}Background`);
  statusItem.command = typeof status === "string" ? "tandem.showLogs" : "tandem.toggle";
  statusItem.show();
}

async function start(): Promise<void> {
  const resolved = resolveServerPath({
    configured: vscode.workspace.getConfiguration("tandem").get<string | null>("serverPath"),
    envPath: process.env.PATH ?? process.env.Path,
    pathExt: process.env.PATHEXT,
    platform: process.platform,
    homeDir: os.homedir(),
    isExecutable: defaultIsExecutable,
  });
  if (!resolved.ok) {
    output.error(resolved.message);
    showStatus("notFound");
    void vscode.window.showErrorMessage(resolved.message, "Open Settings", "Copy Install Command").then((choice) => {
      if (choice === "Open Settings") void vscode.commands.executeCommand("workbench.action.openSettings", "tandem.serverPath");
      if (choice === "Copy Install Command") void vscode.env.clipboard.writeText(INSTALL_COMMAND);
    });
    return;
  }
  output.appendLine(`Tandem: starting ${resolved.path}`);
  const serverOptions: ServerOptions = {
    command: resolved.path,
    args: [],
    transport: TransportKind.stdio,
    // Its stderr is not a terminal: no colour codes in the output channel.
    options: { env: { ...process.env, NO_COLOR: "1" } },
  };
  sentAtStart = setKeys(keys, inspect);
  const openDocuments = new OpenDocuments();
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    initializationOptions: currentSettings(),
    outputChannel: output,
    stdioOptions: { stdout: pipeServerLog, stderr: pipeServerLog },
    middleware: {
      // The server also answers `textDocument/completion` for clients without inline completion;
      // VS Code shows the inline (ghost text) completions, so the list would only repeat them
      // and double the model requests.
      provideCompletionItem: () => undefined,
      // didOpen / didChange / didSave / didClose only for documents the server was told are open.
      ...openDocuments.middleware<vscode.TextDocument, vscode.TextDocumentChangeEvent>(),
      // Code actions come through as the server lists and resolves them. Refine's follow-up
      // (a code action whose command is `tandem.refine`) takes free text: ask for it here and
      // pass it to the server's workspace/executeCommand; cancelled, nothing is sent.
      executeCommand: async (command, args, next) => {
        if (command !== REFINE_COMMAND) return next(command, args);
        const instruction = await vscode.window.showInputBox({
          title: "Tandem: Refine",
          prompt: REFINE_PROMPT,
          placeHolder: REFINE_PLACEHOLDER,
          ignoreFocusOut: true,
        });
        const withInstruction = refineArguments(args, instruction);
        if (!withInstruction) return undefined;
        return next(command, withInstruction);
      },
    },
  };
  const c = new LanguageClient("tandem", "Tandem", serverOptions, clientOptions);
  client = c;
  lastStatus = undefined;
  showStatus("starting");
  c.onDidChangeState((e) => {
    if (e.newState === State.Stopped && client === c) showStatus("stopped");
  });
  c.onNotification("tandem/status", (params: unknown) => {
    if (client !== c || !isServerStatus(params)) return;
    lastStatus = params;
    showStatus(params);
  });
  try {
    await c.start();
  } catch (err) {
    output.error(`Tandem: the server failed to start: ${String(err)}`);
    if (client === c) showStatus("stopped");
  }
}

async function stop(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) {
    try {
      await c.stop();
    } catch (err) {
      output.appendLine(`Tandem: stopping the server: ${String(err)}`);
    }
    await c.dispose().catch(() => undefined);
  }
}

async function restart(): Promise<void> {
  await stop();
  await start();
}

async function setEnabled(enabled: boolean): Promise<void> {
  const target = enabledTarget(inspect("completion.enabled"));
  const t =
    target === "global"
      ? vscode.ConfigurationTarget.Global
      : target === "workspace"
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.WorkspaceFolder;
  await vscode.workspace.getConfiguration("tandem").update("completion.enabled", enabled, t);
}

async function onConfigurationChanged(e: vscode.ConfigurationChangeEvent): Promise<void> {
  if (!e.affectsConfiguration("tandem")) return;
  if (e.affectsConfiguration("tandem.serverPath")) {
    await restart();
    return;
  }
  if (!client) return;
  const unset = unsetSinceStart(sentAtStart, setKeys(keys, inspect));
  if (unset.length > 0) {
    output.appendLine(`Tandem: ${unset.join(", ")} unset; restarting the server so its defaults apply`);
    await restart();
    return;
  }
  if (client.isRunning()) {
    await client.sendNotification(DidChangeConfigurationNotification.type, didChangeConfigurationParams(currentSettings()));
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  keys = serverSettingKeys(context.extension.packageJSON);
  output = vscode.window.createOutputChannel("Tandem", { log: true });
  statusItem = vscode.window.createStatusBarItem("tandem.status", vscode.StatusBarAlignment.Right, 100);
  statusItem.name = "Tandem";
  context.subscriptions.push(
    output,
    statusItem,
    vscode.commands.registerCommand("tandem.enable", () => setEnabled(true)),
    vscode.commands.registerCommand("tandem.disable", () => setEnabled(false)),
    vscode.commands.registerCommand("tandem.toggle", () =>
      setEnabled(toggledEnabled(lastStatus, vscode.workspace.getConfiguration("tandem").get("completion.enabled", true))),
    ),
    vscode.commands.registerCommand("tandem.restart", restart),
    vscode.commands.registerCommand("tandem.showLogs", () => output.show(true)),
    vscode.workspace.onDidChangeConfiguration((e) => void onConfigurationChanged(e)),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  await stop();
}
